# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Cython boundary of the C core (csrc/): thin wrappers, GIL released.

Arrays arrive validated and C-contiguous from helmholtz._codec.lossy; this module
only checks what the C code relies on, calls it ``with nogil`` and turns
its status code into an exception in one place (``_check``).
"""

import numpy as np

from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_ND, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport strcmp

from ..errors import BackendUnavailable
from . import reference as ref

cdef extern from "hz_codec.h":
    ctypedef struct hz_job:
        int n
        const uint8_t **src
        const int32_t *dims
        int h_samp, v_samp, nq
        const int32_t *qualities
        uint8_t **pixels
        int16_t **coefs
        int64_t *bits
        int optimize

    int hz_run(const hz_job *job, int num_threads) nogil
    int hz_reconstruct(const int16_t **coefs, const uint16_t *tables, int n, int height, int width,
                       int channels, int h_samp, int v_samp, uint8_t *pixels, int num_threads) nogil
    unsigned hz_kernels_supported()
    const char *hz_kernels_set_name(int k)
    const char *hz_kernels_active()
    int hz_kernels_select(const char *name)
    const char *hz_kernels_request_error()
    int hz_stage_ticks(const uint8_t *images, int n, int height, int width, int h_samp, int v_samp,
                       int quality, int repeats, uint64_t *out) nogil
    double hz_cycles_per_tick() nogil
    enum:
        HZ_NSTAGES

cdef extern from "hz_entropy.h":
    int hz_encode_ragged(const int16_t **comps, const int32_t *dims, int64_t n, int h_samp, int v_samp,
                         int gray_h_samp, int gray_v_samp, const uint16_t *qtables, int optimize, uint8_t *out, const int64_t *offsets,
                         int64_t *out_sizes, int num_threads) nogil

cdef extern from "hz_pool.h":
    size_t HZ_POOL_MIN_BYTES
    void *hz_pool_take(size_t nbytes) nogil
    void hz_pool_give(void *buffer, size_t nbytes) nogil
    size_t hz_pool_set_cap(size_t nbytes)
    void hz_pool_clear()

__all__ = ["CpuBackend", "RaggedBatch", "kernel_name", "supported_kernels", "use_kernels", "stage_ticks",
           "cycles_per_tick", "STAGES"]

_FACTORS = {"4:4:4": (1, 1), "4:2:2": (2, 1), "4:2:0": (2, 2)}

STAGES = ("colour", "downsample", "dct", "quantise", "idct", "upsample", "colour back", "count")

_WANT_PIXELS, _WANT_COEFS, _WANT_BITS = 1, 2, 4


def _kernel_sets():
    names = []
    cdef int k = 0
    while hz_kernels_set_name(k) != NULL:
        names.append(hz_kernels_set_name(k).decode())
        k += 1
    return names


def supported_kernels():
    """The kernel sets compiled in that this CPU runs, slowest first (e.g. ``['portable', 'avx2', 'avx512']``)."""
    cdef unsigned mask = hz_kernels_supported()
    return [name for k, name in enumerate(_kernel_sets()) if mask & (1u << k)]


cdef str _kernels_message():
    cdef const char *want = hz_kernels_request_error()
    asked = want.decode(errors="replace") if want != NULL else "?"
    if asked in _kernel_sets():
        return (f"HELMHOLTZ_KERNELS={asked} asks for a kernel set this CPU cannot run; it runs "
                f"{', '.join(supported_kernels())} (unset HELMHOLTZ_KERNELS to use the best one)")
    return (f"HELMHOLTZ_KERNELS={asked!r} is not a kernel set; use one of {', '.join(_kernel_sets())} "
            f"(or leave it unset for the best this CPU runs)")


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
    if status == 6:
        raise BackendUnavailable(_kernels_message())  # a RuntimeError, as before
    raise RuntimeError(f"helmholtz C core: unknown status {status}")


def kernel_name():
    """The kernel set in use: ``'portable'``, ``'avx2'`` or ``'avx512'``.

    The best set this CPU runs unless the environment variable
    ``HELMHOLTZ_KERNELS`` (read once, at the first codec call) or
    :func:`use_kernels` chose another.
    """
    cdef const char *name = hz_kernels_active()
    if name == NULL:
        _check(6)
    return name.decode()


def use_kernels(str name):
    """Make kernel set ``name`` the active one for every later codec call.

    Raises ValueError for an unknown name and RuntimeError when this CPU
    cannot run the set. Meant for tests and benchmarks: do not switch while
    other threads are inside the codec.
    """
    cdef bytes raw = name.encode()
    cdef int st = hz_kernels_select(raw)
    if st == 2:
        raise ValueError(f"unknown kernel set {name!r}; use one of {', '.join(_kernel_sets())}")
    if st == 6:
        raise RuntimeError(f"this CPU cannot run the {name!r} kernels; it runs {', '.join(supported_kernels())}")


def cycles_per_tick():
    """Core clock cycles per time-stamp-counter tick (0.0 where there is none), measured now."""
    cdef double r
    with nogil:
        r = hz_cycles_per_tick()
    return r


def stage_ticks(images, int quality, str subsampling, int repeats):
    """Time-stamp-counter ticks of each pipeline stage over a batch of RGB images.

    ``images`` is uint8 (N, H, W, 3); returns a dict from the names in
    :data:`STAGES` to the smallest total of ``repeats`` passes over the batch.
    """
    cdef const uint8_t[:, :, :, ::1] img = images
    if img.shape[3] != 3:
        raise ValueError(f"images must be RGB (N, H, W, 3); got shape {tuple(images.shape)}")
    cdef uint64_t out[HZ_NSTAGES]
    cdef int hs, vs, st
    hs, vs = _FACTORS[subsampling]
    with nogil:
        st = hz_stage_ticks(&img[0, 0, 0, 0], <int>img.shape[0], <int>img.shape[1], <int>img.shape[2], hs, vs,
                            quality, repeats, out)
    _check(st)
    return {name: int(out[k]) for k, name in enumerate(STAGES)}


# ---- output buffers --------------------------------------------------------------

cdef class _PooledBuffer:
    """Memory from the C core's cache of large buffers (csrc/hz_pool.h), handed
    back to it when the last array viewing it goes away."""

    cdef void *ptr
    cdef size_t nbytes
    cdef Py_ssize_t shape[1]
    cdef Py_ssize_t strides[1]

    def __cinit__(self, size_t nbytes):
        self.ptr = hz_pool_take(nbytes)
        if self.ptr == NULL:
            raise MemoryError("helmholtz C core: out of memory")
        self.nbytes = nbytes
        self.shape[0] = <Py_ssize_t>nbytes
        self.strides[0] = 1

    def __getbuffer__(self, Py_buffer *buffer, int flags):
        buffer.buf = self.ptr
        buffer.obj = self
        buffer.len = <Py_ssize_t>self.nbytes
        buffer.readonly = 0
        buffer.itemsize = 1
        buffer.format = "B"
        buffer.ndim = 1
        buffer.shape = self.shape
        buffer.strides = self.strides
        buffer.suboffsets = NULL
        buffer.internal = NULL

    def __releasebuffer__(self, Py_buffer *buffer):
        pass

    def __dealloc__(self):
        if self.ptr != NULL:
            hz_pool_give(self.ptr, self.nbytes)


def empty(shape, dtype):
    """An uninitialised C-contiguous array; large ones reuse the C core's cached buffers."""
    dt = np.dtype(dtype)
    count = 1
    for s in shape:
        count *= int(s)
    nbytes = count * dt.itemsize
    if nbytes < HZ_POOL_MIN_BYTES:
        return np.empty(shape, dt)
    return np.frombuffer(_PooledBuffer(nbytes), dtype=dt, count=count).reshape(shape)


def set_buffer_cache(size_t nbytes):
    """Cap the bytes of freed output buffers kept for reuse (0: keep none); returns the old cap."""
    return hz_pool_set_cap(nbytes)


# ---- jobs ------------------------------------------------------------------------

cdef void _free_job(hz_job *job) noexcept:
    free(<void *>job.src)
    free(<void *>job.dims)
    free(<void *>job.pixels)
    free(<void *>job.coefs)
    job.src = NULL
    job.dims = NULL
    job.pixels = NULL
    job.coefs = NULL


cdef int _init_job(hz_job *job, int n, int nq, const int32_t *qualities, str subsampling) except -1:
    job.n = n
    job.nq = nq
    job.qualities = qualities
    job.h_samp, job.v_samp = _FACTORS[subsampling]
    job.src = <const uint8_t **>calloc(n, sizeof(uint8_t *))
    job.dims = <const int32_t *>malloc(3 * n * sizeof(int32_t))
    job.pixels = NULL
    job.coefs = NULL
    job.bits = NULL
    job.optimize = 0
    if job.src == NULL or job.dims == NULL:
        _free_job(job)
        raise MemoryError("helmholtz C core: out of memory")
    return 0


# The job's arrays are const to the C core; these write them before the call.
cdef inline const uint8_t **_src_of(hz_job *job) noexcept:
    return <const uint8_t **>job.src


cdef inline uint8_t **_new_pixel_slots(hz_job *job) except NULL:
    cdef uint8_t **slots = <uint8_t **>calloc(job.nq * job.n, sizeof(uint8_t *))
    if slots == NULL:
        raise MemoryError("helmholtz C core: out of memory")
    job.pixels = slots
    return slots


cdef inline int16_t **_new_coef_slots(hz_job *job) except NULL:
    cdef int16_t **slots = <int16_t **>calloc(3 * job.nq * job.n, sizeof(int16_t *))
    if slots == NULL:
        raise MemoryError("helmholtz C core: out of memory")
    job.coefs = slots
    return slots


cdef int _uniform_sources(hz_job *job, const uint8_t *base, int h, int w, int c) except -1:
    cdef int i
    cdef int32_t *dims = <int32_t *>job.dims
    cdef const uint8_t **src = _src_of(job)
    cdef int64_t image_bytes = <int64_t>h * w * c
    for i in range(job.n):
        src[i] = base + i * image_bytes
        dims[3 * i] = h
        dims[3 * i + 1] = w
        dims[3 * i + 2] = c
    return 0


cdef int _run(hz_job *job, int num_threads) except -1:
    cdef int st
    with nogil:
        st = hz_run(job, num_threads)
    _check(st)
    return 0


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
        cdef int n = img.shape[0], nq = q.shape[0], i, k
        out = empty((nq,) + tuple(images.shape), np.uint8)
        cdef uint8_t[:, :, :, :, ::1] o = out
        cdef int64_t image_bytes = <int64_t>img.shape[1] * img.shape[2] * img.shape[3]
        cdef uint8_t **slots
        cdef hz_job job
        _init_job(&job, n, nq, &q[0, 0], subsampling)
        try:
            _uniform_sources(&job, &img[0, 0, 0, 0], img.shape[1], img.shape[2], img.shape[3])
            slots = _new_pixel_slots(&job)
            for k in range(nq * n):
                slots[k] = &o[0, 0, 0, 0, 0] + k * image_bytes
            _run(&job, num_threads)
        finally:
            _free_job(&job)
        return out

    def forward(self, images, qualities, str subsampling, int num_threads, out=None):
        """Coefficients per quality and component; ``out`` (same nesting) reuses arrays."""
        cdef const uint8_t[:, :, :, ::1] img = images
        cdef const int32_t[:, ::1] q = np.ascontiguousarray(qualities, dtype=np.int32)
        cdef int n = img.shape[0], nq = q.shape[0], i, k, c
        geoms = ref.component_geometry(img.shape[1], img.shape[2], img.shape[3], subsampling)
        cdef int ncomp = len(geoms)
        if out is None:
            grids = [empty((nq, n, g.blocks_high, g.blocks_wide, 8, 8), np.int16) for g in geoms]
            result = [[grid[k] for grid in grids] for k in range(nq)]
        else:
            result = out
            if len(result) != nq or any(len(row) != ncomp for row in result):
                raise ValueError("out must hold one list of component arrays per quality")
            for row in result:
                for arr, g in zip(row, geoms):
                    if arr.shape != (n, g.blocks_high, g.blocks_wide, 8, 8) or arr.dtype != np.int16 or not arr.flags.c_contiguous:
                        raise ValueError(f"out arrays must be C-contiguous int16 {(n, g.blocks_high, g.blocks_wide, 8, 8)}")
        cdef int16_t[:, :, :, :, ::1] view
        cdef int16_t *base
        cdef int16_t **cslots
        cdef int64_t per_image
        cdef hz_job job
        _init_job(&job, n, nq, &q[0, 0], subsampling)
        try:
            _uniform_sources(&job, &img[0, 0, 0, 0], img.shape[1], img.shape[2], img.shape[3])
            cslots = _new_coef_slots(&job)
            for k in range(nq):
                for c in range(ncomp):
                    view = result[k][c]
                    base = &view[0, 0, 0, 0, 0]
                    per_image = <int64_t>view.shape[1] * view.shape[2] * 64
                    for i in range(n):
                        cslots[3 * (k * n + i) + c] = base + i * per_image
            _run(&job, num_threads)
        finally:
            _free_job(&job)
        return result

    def bits(self, images, qualities, str subsampling, bint optimize, int num_threads):
        """int64 (Q, N): entropy-coded bits per quality row, quantised and counted in one pass."""
        cdef const uint8_t[:, :, :, ::1] img = images
        cdef const int32_t[:, ::1] q = np.ascontiguousarray(qualities, dtype=np.int32)
        cdef int n = img.shape[0], nq = q.shape[0]
        out = np.empty((nq, n), dtype=np.int64)
        cdef int64_t[:, ::1] o = out
        cdef hz_job job
        _init_job(&job, n, nq, &q[0, 0], subsampling)
        try:
            _uniform_sources(&job, &img[0, 0, 0, 0], img.shape[1], img.shape[2], img.shape[3])
            job.bits = &o[0, 0]
            job.optimize = optimize
            _run(&job, num_threads)
        finally:
            _free_job(&job)
        return out

    def reconstruct(self, components, tables, int height, int width, str subsampling, int num_threads):
        cdef int ncomp = len(components)
        comps = [np.ascontiguousarray(c, dtype=np.int16) for c in components]
        cdef const uint16_t[:, :, :, ::1] t = np.ascontiguousarray(tables, dtype=np.uint16)
        cdef int n = comps[0].shape[0]
        cdef int channels = 1 if ncomp == 1 else 3
        out = empty((n, height, width, channels), np.uint8)
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


# ---- ragged batches --------------------------------------------------------------

cdef class RaggedBatch:
    """A list of images of any sizes (and channel counts) as the C core sees it.

    Each item must be one uint8 image of shape (H, W) or (H, W, C), C in (1, 3),
    exposing the buffer protocol (NumPy arrays do); non-contiguous items are
    copied. Errors name the item (``images[i]``).
    """

    cdef const uint8_t **src
    cdef int32_t *dims
    cdef readonly int n
    cdef readonly list shapes
    cdef list _keep

    def __cinit__(self, list images, str name="images"):
        self.n = len(images)
        self.src = NULL
        self.dims = NULL
        if self.n == 0:
            raise ValueError(f"{name} is an empty list; pass at least one image")
        self.src = <const uint8_t **>calloc(self.n, sizeof(uint8_t *))
        self.dims = <int32_t *>malloc(3 * self.n * sizeof(int32_t))
        if self.src == NULL or self.dims == NULL:
            raise MemoryError("helmholtz C core: out of memory")
        self.shapes = []
        self._keep = []
        cdef Py_buffer view
        cdef int i, flags = PyBUF_ND | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS
        cdef Py_ssize_t h, w, c
        for i in range(self.n):
            item = images[i]
            try:
                PyObject_GetBuffer(item, &view, flags)
            except (BufferError, ValueError):  # strided: copy
                item = np.ascontiguousarray(item)
                PyObject_GetBuffer(item, &view, flags)
            except TypeError:
                raise TypeError(f"{name}[{i}] must be a uint8 image array (NumPy or another buffer); "
                                f"got {type(images[i]).__name__}") from None
            try:
                if view.format == NULL or strcmp(view.format, "B") != 0 or view.itemsize != 1:
                    fmt = view.format.decode() if view.format != NULL else "?"
                    dtype = getattr(images[i], "dtype", fmt)
                    raise TypeError(f"{name}[{i}] must have dtype uint8; got {dtype}")
                shape = tuple(view.shape[k] for k in range(view.ndim))
                if view.ndim == 2:
                    h, w, c = view.shape[0], view.shape[1], 1
                elif view.ndim == 3:
                    h, w, c = view.shape[0], view.shape[1], view.shape[2]
                else:
                    raise ValueError(f"{name}[{i}] must be one image of shape (H, W) or (H, W, C); got shape {shape}")
                if c != 1 and c != 3:
                    raise ValueError(f"{name}[{i}] must have 1 (grayscale) or 3 (RGB) channels in the last axis; "
                                     f"got shape {shape}")
                if h == 0 or w == 0:
                    raise ValueError(f"{name}[{i}] is a zero-size image (shape {shape}); height and width must be >= 1")
                if h > 65500 or w > 65500:
                    raise ValueError(f"{name}[{i}]: JPEG images are at most 65500 pixels on a side; got shape {shape}")
                self.src[i] = <const uint8_t *>view.buf
                self.dims[3 * i] = <int32_t>h
                self.dims[3 * i + 1] = <int32_t>w
                self.dims[3 * i + 2] = <int32_t>c
                self.shapes.append(shape)
            finally:
                PyBuffer_Release(&view)
            self._keep.append(item)  # the data stays where the pointer says

    def __dealloc__(self):
        free(<void *>self.src)
        free(self.dims)

    def channels(self, int i):
        return self.dims[3 * i + 2]

    cdef list _alloc_coefs(self, hz_job *job, int nq, str subsampling):
        """Point job.coefs into one new buffer; returns per image the list of
        component arrays (Q, blocks_high, blocks_wide, 8, 8) viewing it."""
        cdef int n = self.n, i, k, c
        cdef int64_t total = 0, at = 0, per
        geoms = [ref.component_geometry(self.dims[3 * i], self.dims[3 * i + 1], self.dims[3 * i + 2], subsampling)
                 for i in range(n)]
        for i in range(n):
            for g in geoms[i]:
                total += <int64_t>nq * g.blocks_high * g.blocks_wide * 64
        flat = empty((total,), np.int16)
        cdef int16_t[::1] view = flat
        cdef int16_t *base = &view[0]
        cdef int16_t **slots = _new_coef_slots(job)
        out = []
        for i in range(n):
            per_image = []
            for c, g in enumerate(geoms[i]):
                per = <int64_t>g.blocks_high * g.blocks_wide * 64
                for k in range(nq):
                    slots[3 * (k * n + i) + c] = base + at + k * per
                per_image.append(flat[at:at + nq * per].reshape((nq, g.blocks_high, g.blocks_wide, 8, 8)))
                at += nq * per
            out.append(per_image)
        return out

    cdef int _init(self, hz_job *job, const int32_t[:, ::1] q, str subsampling) except -1:
        if q.shape[1] != self.n:
            raise ValueError(f"qualities must have shape (Q, {self.n})")
        _init_job(job, self.n, q.shape[0], &q[0, 0], subsampling)
        cdef int i
        cdef const uint8_t **src = _src_of(job)
        for i in range(self.n):
            src[i] = self.src[i]
        for i in range(3 * self.n):
            (<int32_t *>job.dims)[i] = self.dims[i]
        return 0

    def run(self, qualities, str subsampling, bint pixels, bint coefs, bint bits, bint optimize, int num_threads):
        """One C call over every image.

        ``qualities`` is int32 (Q, N). Returns ``(pixels, coefs, bits)``:
        pixels a list over images of uint8 (Q,) + shape arrays, coefs a list over
        images of lists of int16 (Q, blocks_high, blocks_wide, 8, 8) per component,
        bits int64 (Q, N); each None unless asked for.
        """
        cdef const int32_t[:, ::1] q = np.ascontiguousarray(qualities, dtype=np.int32)
        cdef int n = self.n, nq = q.shape[0], i, k
        cdef hz_job job
        self._init(&job, q, subsampling)
        out_pixels = out_coefs = out_bits = None
        cdef int64_t total = 0, at = 0, nbytes
        cdef uint8_t[::1] pflat
        cdef uint8_t *pbase
        cdef uint8_t **slots
        cdef int64_t[:, ::1] bview
        try:
            if pixels:  # one buffer: image i's Q results back to back
                for i in range(n):
                    total += <int64_t>nq * self.dims[3 * i] * self.dims[3 * i + 1] * self.dims[3 * i + 2]
                flat = empty((total,), np.uint8)
                pflat = flat
                pbase = &pflat[0]
                slots = _new_pixel_slots(&job)
                out_pixels = []
                for i in range(n):
                    nbytes = <int64_t>self.dims[3 * i] * self.dims[3 * i + 1] * self.dims[3 * i + 2]
                    for k in range(nq):
                        slots[k * n + i] = pbase + at + k * nbytes
                    out_pixels.append(flat[at:at + nq * nbytes].reshape((nq,) + self.shapes[i]))
                    at += nq * nbytes
            if coefs:
                out_coefs = self._alloc_coefs(&job, nq, subsampling)
            if bits:
                out_bits = np.empty((nq, n), dtype=np.int64)
                bview = out_bits
                job.bits = &bview[0, 0]
                job.optimize = optimize
            _run(&job, num_threads)
        finally:
            _free_job(&job)
        return out_pixels, out_coefs, out_bits

    def encode(self, qualities, tables, str subsampling, bint optimize, int num_threads, str gray_subsampling=None):
        """Baseline JFIF files (bytes), one per image: quantised in one C call and coded in two more.

        ``qualities`` int32 (N,), ``tables`` uint16 (N, 2, 8, 8) their quantisation tables.
        The SOF of grayscale images names the luma factors of ``gray_subsampling``
        (default: ``subsampling``, as Pillow given that argument).
        """
        cdef int ghs, gvs
        ghs, gvs = _FACTORS[subsampling if gray_subsampling is None else gray_subsampling]
        cdef const int32_t[:, ::1] q = np.ascontiguousarray(np.reshape(qualities, (1, -1)), dtype=np.int32)
        cdef const uint16_t[:, :, :, ::1] qt = np.ascontiguousarray(tables, dtype=np.uint16)
        cdef int n = self.n, st, i
        if qt.shape[0] != n:
            raise ValueError(f"tables must have shape ({n}, 2, 8, 8)")
        cdef hz_job job
        self._init(&job, q, subsampling)
        sizes = np.empty(n, dtype=np.int64)
        offsets = np.zeros(n + 1, dtype=np.int64)
        cdef int64_t[::1] sz = sizes
        cdef int64_t[::1] off = offsets
        cdef uint8_t[::1] buf
        cdef const uint8_t *base
        try:
            grids = self._alloc_coefs(&job, 1, subsampling)  # keeps the coefficient buffer alive
            _run(&job, num_threads)
            with nogil:  # upper bounds, then the files
                st = hz_encode_ragged(<const int16_t **>job.coefs, job.dims, n, job.h_samp, job.v_samp, ghs, gvs,
                                      &qt[0, 0, 0, 0], optimize, NULL, NULL, &sz[0], num_threads)
            _check(st)
            np.cumsum(sizes, out=offsets[1:])
            out = np.empty(int(offsets[n]), dtype=np.uint8)
            buf = out
            with nogil:
                st = hz_encode_ragged(<const int16_t **>job.coefs, job.dims, n, job.h_samp, job.v_samp, ghs, gvs,
                                      &qt[0, 0, 0, 0], optimize, &buf[0], &off[0], &sz[0], num_threads)
            _check(st)
        finally:
            _free_job(&job)
        base = &buf[0]
        return [(<char *>base)[off[i]:off[i] + sz[i]] for i in range(n)]


# Entropy coding (bit counts, JFIF writer): csrc/hz_entropy.c
include "entropy_native.pxi"
