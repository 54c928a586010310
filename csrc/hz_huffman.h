/* Baseline JPEG Huffman coding of one 8x8 block, as libjpeg-turbo's jchuff.c.
 *
 * Shared by the C core (hz_entropy.c) and CUDA kernels: NVRTC-safe, so it
 * includes nothing but hz_common.h, and every function is HZ_HD.
 *
 * Blocks are int16[64] in natural (row-major) order, as in the coefficient
 * arrays; the coding order is zigzag. Huffman tables are addressed by slot:
 * 0 = DC luma, 1 = AC luma, 2 = DC chroma, 3 = AC chroma, and described by
 * per-symbol code lengths (uint8[256], 0 = no code) and codes (uint16[256]).
 *
 * Bits of a block = sum over its symbols of (code length + extra bits):
 *   DC:  symbol = category(diff), diff = DC - previous DC of the component;
 *   AC:  in zigzag order, per nonzero v after r zeros: ZRL (0xF0) for every
 *        16 zeros, then symbol (r << 4) | category(v); EOB (0x00) when the
 *        block ends in zeros.  category(v) = bit length of |v|; the extra bits
 *        are the category low bits of v (v >= 0) or v - 1 (v < 0).
 */
#ifndef HZ_HUFFMAN_H
#define HZ_HUFFMAN_H

#include "hz_common.h"

/* ---- bit tricks ---------------------------------------------------------- */
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define HZ_CLZ32(x) __clz((int)(x))
#define HZ_CTZ64(x) (__ffsll((long long)(x)) - 1)
#elif defined(__GNUC__) || defined(__clang__)
#define HZ_CLZ32(x) __builtin_clz(x)
#define HZ_CTZ64(x) __builtin_ctzll(x)
#else
HZ_HD int hz_clz32_portable(uint32_t x) { int n = 0; while (!(x & 0x80000000u)) { x <<= 1; n++; } return n; }
HZ_HD int hz_ctz64_portable(uint64_t x) { int n = 0; while (!(x & 1u)) { x >>= 1; n++; } return n; }
#define HZ_CLZ32(x) hz_clz32_portable(x)
#define HZ_CTZ64(x) hz_ctz64_portable(x)
#endif

/* Largest categories baseline JPEG allows for 8-bit samples (MAX_COEF_BITS = 10). */
#define HZ_MAX_AC_NBITS 10
#define HZ_MAX_DC_NBITS 11

/* HZ_ZIGZAG[k] = natural index of zigzag position k; HZ_UNZIGZAG its inverse. */
HZ_CONST uint8_t HZ_ZIGZAG[64] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};
HZ_CONST uint8_t HZ_UNZIGZAG[64] = {
    0,  1,  5,  6,  14, 15, 27, 28, 2,  4,  7,  13, 16, 26, 29, 42,
    3,  8,  12, 17, 25, 30, 41, 43, 9,  11, 18, 24, 31, 40, 44, 53,
    10, 19, 23, 32, 39, 45, 52, 54, 20, 22, 33, 38, 46, 51, 55, 60,
    21, 34, 37, 47, 50, 56, 59, 61, 35, 36, 48, 49, 57, 58, 62, 63};

/* ITU T.81 Annex K.3 tables (libjpeg's std_huff_tables), by slot. */
HZ_CONST uint8_t HZ_STD_BITS[4][16] = {
    {0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
    {0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d},
    {0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
    {0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77}};
HZ_CONST uint8_t HZ_STD_DC_VALS[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
HZ_CONST uint8_t HZ_STD_AC_LUMA_VALS[162] = {
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
    0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa};
HZ_CONST uint8_t HZ_STD_AC_CHROMA_VALS[162] = {
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
    0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
    0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
    0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa};

/* The symbol list of standard table `slot`. */
HZ_HD const uint8_t *hz_std_huffval(int slot)
{
    return slot == 1 ? HZ_STD_AC_LUMA_VALS : slot == 3 ? HZ_STD_AC_CHROMA_VALS : HZ_STD_DC_VALS;
}

/* Category (nbits) of a magnitude a >= 0: its bit length, 0 for 0. */
HZ_HD int hz_nbits(uint32_t a)
{
    return a ? 32 - HZ_CLZ32(a) : 0;
}

/* Category of a nonzero magnitude a > 0 (no zero test). */
HZ_HD int hz_nbits_nz(uint32_t a)
{
    return 32 - HZ_CLZ32(a);
}

/* Canonical codes from a DHT description (jpeg_make_c_derived_tbl):
 * bits[16] counts per length 1..16, huffval the symbols; fills len[256]
 * (0 = absent) and code[256]. Returns the number of symbols. */
HZ_HD int hz_derive_table(const uint8_t *bits, const uint8_t *huffval, uint8_t *len, uint16_t *code)
{
    int k = 0, l, i;
    uint32_t c = 0;
    for (i = 0; i < 256; i++) { len[i] = 0; code[i] = 0; }
    for (l = 1; l <= 16; l++) {
        for (i = 0; i < bits[l - 1]; i++, k++) {
            len[huffval[k]] = (uint8_t)l;
            code[huffval[k]] = (uint16_t)c++;
        }
        c <<= 1;
    }
    return k;
}

/* Bit mask of the nonzero AC coefficients of a natural-order block, in zigzag
 * positions (bit k = zigzag position k, k = 1..63). `natural` is the nonzero
 * mask in natural order (bit i = block[i] != 0); only its set bits are visited. */
HZ_HD uint64_t hz_zigzag_mask(uint64_t natural)
{
    uint64_t zz = 0;
    natural &= ~(uint64_t)1;
    while (natural) {
        int i = HZ_CTZ64(natural);
        natural &= natural - 1;
        zz |= (uint64_t)1 << HZ_UNZIGZAG[i];
    }
    return zz;
}

/* Portable nonzero mask of a natural-order block (bit i = block[i] != 0). */
HZ_HD uint64_t hz_nonzero_mask_portable(const int16_t *block)
{
    uint64_t m = 0;
    int i;
    for (i = 0; i < 64; i++) m |= (uint64_t)(block[i] != 0) << i;
    return m;
}

/* Bits of one block under code lengths dc_len / ac_len (uint8[256] each).
 * zzmask: hz_zigzag_mask of the block; diff: DC minus previous DC.
 * *bad is set to 1 when a value lies outside the baseline range. */
HZ_HD int64_t hz_block_bits(const int16_t *block, uint64_t zzmask, int diff, const uint8_t *dc_len,
                            const uint8_t *ac_len, int *bad)
{
    uint32_t a = (uint32_t)(diff < 0 ? -diff : diff);
    int nb = hz_nbits(a), last = 0;
    int64_t bits = dc_len[nb] + nb;
    int worst = nb > HZ_MAX_DC_NBITS;
    while (zzmask) {
        int k = HZ_CTZ64(zzmask), run, v;
        zzmask &= zzmask - 1;
        run = k - last - 1;
        while (run > 15) { bits += ac_len[0xF0]; run -= 16; }
        v = block[HZ_ZIGZAG[k]];
        nb = hz_nbits_nz((uint32_t)(v < 0 ? -v : v)); /* v != 0: its mask bit is set */
        worst |= nb > HZ_MAX_AC_NBITS;
        bits += ac_len[(run << 4) | nb] + nb;
        last = k;
    }
    if (last != 63) bits += ac_len[0x00];
    *bad |= worst;
    return bits;
}

/* Count the symbols of one block into dc_freq / ac_freq (int64[256] each, for
 * optimal tables, as jchuff.c htest_one_block); returns its extra bits. */
HZ_HD int64_t hz_block_gather(const int16_t *block, uint64_t zzmask, int diff, int64_t *dc_freq, int64_t *ac_freq,
                              int *bad)
{
    uint32_t a = (uint32_t)(diff < 0 ? -diff : diff);
    int nb = hz_nbits(a), last = 0;
    int64_t extra = nb;
    int worst = nb > HZ_MAX_DC_NBITS;
    dc_freq[nb]++;
    while (zzmask) {
        int k = HZ_CTZ64(zzmask), run, v;
        zzmask &= zzmask - 1;
        run = k - last - 1;
        while (run > 15) { ac_freq[0xF0]++; run -= 16; }
        v = block[HZ_ZIGZAG[k]];
        nb = hz_nbits_nz((uint32_t)(v < 0 ? -v : v)); /* v != 0: its mask bit is set */
        worst |= nb > HZ_MAX_AC_NBITS;
        ac_freq[(run << 4) | nb]++;
        extra += nb;
        last = k;
    }
    if (last != 63) ac_freq[0x00]++;
    *bad |= worst;
    return extra;
}

/* ---- bit writer with 0xFF byte stuffing ---------------------------------- */
typedef struct {
    uint8_t *buf;     /* output bytes */
    int64_t pos, cap; /* bytes written, capacity */
    uint64_t acc;     /* pending bits in the low `nacc` bits */
    int nacc;
    int overflow;     /* set when the output did not fit */
} hz_bitwriter;

HZ_HD void hz_bw_init(hz_bitwriter *w, uint8_t *buf, int64_t pos, int64_t cap)
{
    w->buf = buf; w->pos = pos; w->cap = cap; w->acc = 0; w->nacc = 0; w->overflow = 0;
}

HZ_HD void hz_bw_byte(hz_bitwriter *w, uint8_t b)
{
    if (w->pos < w->cap) w->buf[w->pos] = b; else w->overflow = 1;
    w->pos++;
}

/* Append the low `n` bits of `value` (n <= 32), stuffing a 0x00 after each 0xFF. */
HZ_HD void hz_bw_put(hz_bitwriter *w, uint32_t value, int n)
{
    w->acc = (w->acc << n) | (value & (((uint64_t)1 << n) - 1));
    w->nacc += n;
    while (w->nacc >= 8) {
        uint8_t b;
        w->nacc -= 8;
        b = (uint8_t)(w->acc >> w->nacc);
        hz_bw_byte(w, b);
        if (b == 0xFF) hz_bw_byte(w, 0);
    }
}

/* Pad the last byte with 1-bits (jchuff.c flush_bits). */
HZ_HD void hz_bw_flush(hz_bitwriter *w)
{
    if (w->nacc > 0) hz_bw_put(w, 0x7F, 8 - w->nacc);
}

/* Huffman-code one block (jchuff.c encode_one_block). *bad is set to 1 when
 * a value lies outside the baseline range (the output is then meaningless). */
HZ_HD void hz_block_encode(hz_bitwriter *w, const int16_t *block, uint64_t zzmask, int diff, const uint8_t *dc_len,
                           const uint16_t *dc_code, const uint8_t *ac_len, const uint16_t *ac_code, int *bad)
{
    uint32_t a = (uint32_t)(diff < 0 ? -diff : diff);
    int nb = hz_nbits(a), last = 0, worst;
    worst = nb > HZ_MAX_DC_NBITS;
    hz_bw_put(w, dc_code[nb], dc_len[nb]);
    if (nb) hz_bw_put(w, (uint32_t)(diff < 0 ? diff - 1 : diff), nb);
    while (zzmask) {
        int k = HZ_CTZ64(zzmask), run, v, sym;
        zzmask &= zzmask - 1;
        run = k - last - 1;
        while (run > 15) { hz_bw_put(w, ac_code[0xF0], ac_len[0xF0]); run -= 16; }
        v = block[HZ_ZIGZAG[k]];
        nb = hz_nbits_nz((uint32_t)(v < 0 ? -v : v)); /* v != 0: its mask bit is set */
        worst |= nb > HZ_MAX_AC_NBITS;
        sym = (run << 4) | nb;
        /* code (<= 16 bits) and extra bits (<= 10) in one put */
        hz_bw_put(w, ((uint32_t)ac_code[sym] << nb) | ((uint32_t)(v < 0 ? v - 1 : v) & ((1u << nb) - 1)),
                  ac_len[sym] + nb);
        last = k;
    }
    if (last != 63) hz_bw_put(w, ac_code[0x00], ac_len[0x00]);
    *bad |= worst;
}

#endif /* HZ_HUFFMAN_H */
