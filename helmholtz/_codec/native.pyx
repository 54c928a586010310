# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Cython boundary of the C core (csrc/): thin wrappers, GIL released.

Arrays arrive validated and C-contiguous from helmholtz._codec.lossy; this module
only checks what the C code relies on, calls it ``with nogil`` and turns
its status code into an exception in one place (``_check``).
"""

import numpy as np

from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t
from libc.stdlib cimport free, malloc

from . import reference as ref

cdef extern from "hz_codec.h":
    ctypedef struct hz_job:
        const uint8_t *images
        int n, height, width, channels, h_samp, v_samp, nq
        const int32_t *qualities
        int16_t **coefs
        uint8_t *pixels

    int hz_run(const hz_job *job, int num_threads) nogil
    int hz_reconstruct(const int16_t **coefs, const uint16_t *tables, int n, int height, int width,
                       int channels, int h_samp, int v_samp, uint8_t *pixels, int num_threads) nogil
    const char *hz_kernel_name()

__all__ = ["CpuBackend", "kernel_name"]

_FACTORS = {"4:4:4": (1, 1), "4:2:2": (2, 1), "4:2:0": (2, 2)}


cdef int _check(int status) except -1:
    """Turn an hz_status code from the C core into a Python exception."""
    if status == 0:
        return 0
    if status == 1:
        raise MemoryError("helmholtz C core: out of memory")
    if status == 2:
        raise ValueError("helmholtz C core: an argument is out of range (size, channels, subsampling or quality)")
    if status == 3:
        raise RuntimeError("helmholtz C core: could not start a worker thread")
    if status == 4:
        raise OverflowError("helmholtz C core: an output buffer was too small")
    if status == 5:
        raise ValueError(
            "coefficients are outside the range a baseline JPEG encoder produces from 8-bit samples "
            "(|coefficient * table entry| <= 2176)"
        )
    raise RuntimeError(f"helmholtz C core: unknown status {status}")


def kernel_name():
    """The instruction set of the kernels in use: 'avx2' or 'generic'."""
    return hz_kernel_name().decode()


cdef class CpuBackend:
    """The C core: images spread over threads, each image cache-resident."""

    cdef public str name
    cdef public str device

    def __init__(self):
        self.name = "cpu"
        self.device = "cpu"

    def roundtrip(self, images, qualities, str subsampling, int num_threads):
        cdef const uint8_t[:, :, :, ::1] img = images
        cdef const int32_t[:, ::1] q = np.ascontiguousarray(qualities, dtype=np.int32)
        out = np.empty((q.shape[0],) + tuple(images.shape), dtype=np.uint8)
        cdef uint8_t[:, :, :, :, ::1] o = out
        cdef hz_job job
        job.images = &img[0, 0, 0, 0]
        job.n, job.height, job.width, job.channels = img.shape[0], img.shape[1], img.shape[2], img.shape[3]
        job.h_samp, job.v_samp = _FACTORS[subsampling]
        job.nq = q.shape[0]
        job.qualities = &q[0, 0]
        job.coefs = NULL
        job.pixels = &o[0, 0, 0, 0, 0]
        cdef int status
        with nogil:
            status = hz_run(&job, num_threads)
        _check(status)
        return out

    def forward(self, images, qualities, str subsampling, int num_threads, out=None):
        """Coefficients per quality and component; ``out`` (same nesting) reuses arrays."""
        cdef const uint8_t[:, :, :, ::1] img = images
        cdef const int32_t[:, ::1] q = np.ascontiguousarray(qualities, dtype=np.int32)
        cdef int n = img.shape[0], nq = q.shape[0]
        geoms = ref.component_geometry(img.shape[1], img.shape[2], img.shape[3], subsampling)
        cdef int ncomp = len(geoms)
        if out is None:
            # Reusing buffers across calls (out=) avoids the page faults of fresh arrays.
            result = [[np.empty((n, g.blocks_high, g.blocks_wide, 8, 8), dtype=np.int16) for g in geoms] for _ in range(nq)]
        else:
            result = out
            if len(result) != nq or any(len(row) != ncomp for row in result):
                raise ValueError("out must hold one list of component arrays per quality")
            for row in result:
                for arr, g in zip(row, geoms):
                    if arr.shape != (n, g.blocks_high, g.blocks_wide, 8, 8) or arr.dtype != np.int16 or not arr.flags.c_contiguous:
                        raise ValueError(f"out arrays must be C-contiguous int16 {(n, g.blocks_high, g.blocks_wide, 8, 8)}")
        cdef int16_t **ptrs = <int16_t **>malloc(nq * ncomp * sizeof(int16_t *))
        if ptrs == NULL:
            raise MemoryError("helmholtz C core: out of memory")
        cdef int16_t[:, :, :, :, ::1] view
        cdef hz_job job
        cdef int status
        try:
            for k in range(nq):
                for c in range(ncomp):
                    view = result[k][c]
                    ptrs[k * ncomp + c] = &view[0, 0, 0, 0, 0]
            job.images = &img[0, 0, 0, 0]
            job.n, job.height, job.width, job.channels = n, img.shape[1], img.shape[2], img.shape[3]
            job.h_samp, job.v_samp = _FACTORS[subsampling]
            job.nq = nq
            job.qualities = &q[0, 0]
            job.coefs = ptrs
            job.pixels = NULL
            with nogil:
                status = hz_run(&job, num_threads)
            _check(status)
        finally:
            free(ptrs)
        return result

    def reconstruct(self, components, tables, int height, int width, str subsampling, int num_threads):
        cdef int ncomp = len(components)
        comps = [np.ascontiguousarray(c, dtype=np.int16) for c in components]
        cdef const uint16_t[:, :, :, ::1] t = np.ascontiguousarray(tables, dtype=np.uint16)
        cdef int n = comps[0].shape[0]
        cdef int channels = 1 if ncomp == 1 else 3
        out = np.empty((n, height, width, channels), dtype=np.uint8)
        cdef uint8_t[:, :, :, ::1] o = out
        cdef const int16_t **ptrs = <const int16_t **>malloc(ncomp * sizeof(int16_t *))
        if ptrs == NULL:
            raise MemoryError("helmholtz C core: out of memory")
        cdef const int16_t[:, :, :, :, ::1] view
        cdef int hs, vs, status
        hs, vs = _FACTORS[subsampling]
        try:
            for c in range(ncomp):
                view = comps[c]
                ptrs[c] = &view[0, 0, 0, 0, 0]
            with nogil:
                status = hz_reconstruct(ptrs, &t[0, 0, 0, 0], n, height, width, channels, hs, vs,
                                        &o[0, 0, 0, 0], num_threads)
            _check(status)
        finally:
            free(ptrs)
        return out


# Entropy coding (bit counts, JFIF writer): csrc/hz_entropy.c
include "entropy_native.pxi"
