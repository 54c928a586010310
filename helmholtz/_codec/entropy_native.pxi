# Entropy coding (csrc/hz_entropy.c), included by helmholtz/_native.pyx.
#
# Expects the including module to define ``cdef int _check(int status) except -1``
# (hz_status -> exception). Arrays come in as typed memoryviews; results are
# NumPy arrays / bytes. Every C call runs with the GIL released.

from libc.stdint cimport int16_t, int64_t, uint8_t, uint16_t

import numpy as _ent_np

cdef extern from "hz_entropy.h" nogil:
    int HZ_MAX_HEADER_BYTES
    int hz_bits(const int16_t *const comps[3], int ncomp, int64_t n, const int *blocks_high,
                const int *blocks_wide, int h_samp, int v_samp, int optimize, int64_t *out_bits,
                int num_threads)
    int hz_frequencies(const int16_t *const comps[3], int ncomp, int64_t n, const int *blocks_high,
                       const int *blocks_wide, int h_samp, int v_samp, int64_t *out_freq,
                       int64_t *out_extra, int num_threads)
    int hz_encode_bounds(const int16_t *const comps[3], int ncomp, int64_t n, const int *blocks_high,
                         const int *blocks_wide, int h_samp, int v_samp, int optimize,
                         int64_t *out_bounds, int num_threads)
    int hz_encode(const int16_t *const comps[3], int ncomp, int64_t n, const int *blocks_high,
                  const int *blocks_wide, int h_samp, int v_samp, int height, int width,
                  const uint16_t *qtables, int optimize, uint8_t *out, const int64_t *offsets,
                  int64_t *out_sizes, int num_threads)
    int hz_optimal_table(const int64_t *freq, uint8_t *bits, uint8_t *huffval, int *nsymbols)

cdef enum:
    _ENT_ERR_ARG = 2

_ENT_RANGE_MSG = ("coefficients lie outside the baseline JPEG range (|AC| <= 1023, DC differences "
                  "of at most 11 bits); they cannot come from 8-bit images")


cdef int _ent_layout(tuple comps, const int16_t *ptrs[3], int *bh, int *bw, int64_t *n) except -1:
    """Fill pointers and block counts from a tuple of int16 (N, bh, bw, 8, 8) arrays."""
    cdef const int16_t[:, :, :, :, ::1] view
    cdef int c, ncomp = len(comps)
    if ncomp != 1 and ncomp != 3:
        raise ValueError(f"components must hold 1 or 3 arrays; got {ncomp}")
    for c in range(3):
        ptrs[c] = NULL
    for c in range(ncomp):
        view = comps[c]
        if view.shape[3] != 8 or view.shape[4] != 8:
            raise ValueError(f"component {c} must have shape (N, blocks_high, blocks_wide, 8, 8)")
        if c == 0:
            n[0] = view.shape[0]
        elif view.shape[0] != n[0]:
            raise ValueError("components disagree on the number of images")
        if view.shape[0] == 0 or view.shape[1] == 0 or view.shape[2] == 0:
            raise ValueError(f"component {c} is empty (shape {comps[c].shape})")
        bh[c] = <int>view.shape[1]
        bw[c] = <int>view.shape[2]
        ptrs[c] = &view[0, 0, 0, 0, 0]
    return ncomp


cdef int _ent_status(int status) except -1:
    if status == _ENT_ERR_ARG:
        raise ValueError(_ENT_RANGE_MSG)
    return _check(status)


def entropy_bits(tuple comps, int h_samp, int v_samp, bint optimize, int num_threads):
    """int64 (N,): entropy-coded bits of each image (see hz_bits)."""
    cdef const int16_t *ptrs[3]
    cdef int bh[3]
    cdef int bw[3]
    cdef int64_t n = 0
    cdef int ncomp = _ent_layout(comps, ptrs, bh, bw, &n)
    out = _ent_np.empty(n, dtype=_ent_np.int64)
    cdef int64_t[::1] o = out
    cdef int st
    with nogil:
        st = hz_bits(ptrs, ncomp, n, bh, bw, h_samp, v_samp, optimize, &o[0], num_threads)
    _ent_status(st)
    return out


def entropy_frequencies(tuple comps, int h_samp, int v_samp, int num_threads):
    """Symbol counts int64 (N, 4, 256) and extra bits int64 (N,) of each image's scan."""
    cdef const int16_t *ptrs[3]
    cdef int bh[3]
    cdef int bw[3]
    cdef int64_t n = 0
    cdef int ncomp = _ent_layout(comps, ptrs, bh, bw, &n)
    freq = _ent_np.empty((n, 4, 256), dtype=_ent_np.int64)
    extra = _ent_np.empty(n, dtype=_ent_np.int64)
    cdef int64_t[:, :, ::1] f = freq
    cdef int64_t[::1] e = extra
    cdef int st
    with nogil:
        st = hz_frequencies(ptrs, ncomp, n, bh, bw, h_samp, v_samp, &f[0, 0, 0], &e[0], num_threads)
    _ent_status(st)
    if ncomp == 1:
        freq[:, 2:] = 0
    return freq, extra


def entropy_encode(tuple comps, int h_samp, int v_samp, int height, int width, tables,
                   bint optimize, int num_threads):
    """A list of complete JFIF files (bytes), one per image (see hz_encode).

    ``tables`` is uint16 (N, 2, 8, 8), natural order, entries 1..255.
    """
    cdef const int16_t *ptrs[3]
    cdef int bh[3]
    cdef int bw[3]
    cdef int64_t n = 0
    cdef int ncomp = _ent_layout(comps, ptrs, bh, bw, &n)
    cdef const uint16_t[:, :, :, ::1] qt = tables
    if qt.shape[0] != n or qt.shape[1] != 2 or qt.shape[2] != 8 or qt.shape[3] != 8:
        raise ValueError(f"tables must have shape ({n}, 2, 8, 8); got {tables.shape}")
    bounds = _ent_np.empty(n, dtype=_ent_np.int64)
    cdef int64_t[::1] b = bounds
    cdef int st
    with nogil:
        st = hz_encode_bounds(ptrs, ncomp, n, bh, bw, h_samp, v_samp, optimize, &b[0], num_threads)
    _ent_status(st)
    offsets = _ent_np.zeros(n + 1, dtype=_ent_np.int64)
    _ent_np.cumsum(bounds, out=offsets[1:])
    buf = _ent_np.empty(int(offsets[n]), dtype=_ent_np.uint8)
    sizes = _ent_np.empty(n, dtype=_ent_np.int64)
    cdef int64_t[::1] off = offsets
    cdef int64_t[::1] sz = sizes
    cdef uint8_t[::1] out = buf
    with nogil:
        st = hz_encode(ptrs, ncomp, n, bh, bw, h_samp, v_samp, height, width, &qt[0, 0, 0, 0], optimize,
                       &out[0], &off[0], &sz[0], num_threads)
    if st == _ENT_ERR_ARG:
        raise ValueError("bad encoder arguments: quantisation tables must hold 1..255 and the image size "
                         "must be 1..65535; or " + _ENT_RANGE_MSG)
    _check(st)
    cdef const uint8_t *base = &out[0]
    cdef int64_t i
    return [(<char *>base)[off[i]:off[i] + sz[i]] for i in range(n)]


def optimal_table(freq):
    """libjpeg's jpeg_gen_optimal_table: 256 symbol counts -> (bits[16], huffval) as bytes."""
    cdef const int64_t[::1] f = _ent_np.ascontiguousarray(freq, dtype=_ent_np.int64)
    if f.shape[0] != 256:
        raise ValueError(f"freq must have 256 entries; got {f.shape[0]}")
    cdef uint8_t bits[16]
    cdef uint8_t vals[256]
    cdef int nsym = 0
    cdef int st
    with nogil:
        st = hz_optimal_table(&f[0], bits, vals, &nsym)
    if st == _ENT_ERR_ARG:
        raise ValueError("freq must be non-negative counts")
    _check(st)
    return bytes((<char *>bits)[:16]), bytes((<char *>vals)[:nsym])
