/* The islow DCT passes and quantisation, written once for any arithmetic type.
 *
 * Not include-guarded on purpose: hz_block.h includes it with HZ_T = int32_t
 * (scalar C and CUDA), the CPU kernels again with an 8-lane GCC vector type,
 * so every backend runs this one statement of the math. Only +, -, *, &, ^,
 * and arithmetic shifts are used, which C gives for both kinds of type.
 *
 * Before including, define: HZ_T (the type), HZ_QUAL (function qualifiers),
 * HZ_FDCT_1D, HZ_IDCT_1D, HZ_QUANTIZE (the names to define). Optionally
 * define HZ_MUL16(a, c): the product a * c of a value a and a constant c that
 * both lie in [-32768, 32767] (a SIMD build maps it to a 16-bit multiply-add).
 * It is used only where that bound holds for every input: pass 1 of both
 * DCTs (samples 0..255 or -128..127 in, dequantised values |v| <= 2176 in, so
 * every multiplicand is a sum of at most four such values) and the
 * reciprocal multiply of the quantiser (y < 2^12, recip < 2^13). A SIMD
 * build may also define HZ_QT, the type of the quantiser's divisor arguments
 * (default int32_t; a vector type there lets every lane use its own divisor
 * and avoids scalar-to-vector moves), with HZ_MULQ(y, recip) its multiply
 * and HZ_SHRQ(v, shift) its arithmetic right shift.
 */

#ifndef HZ_MUL16
#define HZ_MUL16(a, c) ((a) * (c))
#endif
#ifndef HZ_QT
#define HZ_QT int32_t
#endif
#ifndef HZ_MULQ
#define HZ_MULQ(a, b) HZ_MUL16(a, b)
#endif
#ifndef HZ_SHRQ
#define HZ_SHRQ(a, s) ((a) >> (s))
#endif
/* Pass 1 of a DCT multiplies values known to fit 16 bits; pass 2 may not. */
#define HZ_MULP(a, c) (final ? (a) * (c) : HZ_MUL16(a, c))

/* jfdctint.c: one 1-D pass over x[0], x[s], ..., x[7s], in place. Pass 1
 * (final = 0) keeps PASS1_BITS of extra precision; pass 2 (final = 1)
 * removes it. The 2-D result is 8x the orthonormal DCT. */
HZ_QUAL void HZ_FDCT_1D(HZ_T *x, int s, int final)
{
    const int shift = final ? HZ_CONST_BITS + HZ_PASS1_BITS : HZ_CONST_BITS - HZ_PASS1_BITS;
    const int32_t round = 1 << (shift - 1);
    HZ_T tmp0 = x[0] + x[7 * s], tmp7 = x[0] - x[7 * s];
    HZ_T tmp1 = x[s] + x[6 * s], tmp6 = x[s] - x[6 * s];
    HZ_T tmp2 = x[2 * s] + x[5 * s], tmp5 = x[2 * s] - x[5 * s];
    HZ_T tmp3 = x[3 * s] + x[4 * s], tmp4 = x[3 * s] - x[4 * s];
    HZ_T tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3;
    HZ_T tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
    HZ_T z1, z2, z3, z4, z5;

    if (final) {
        x[0] = (tmp10 + tmp11 + (1 << (HZ_PASS1_BITS - 1))) >> HZ_PASS1_BITS;
        x[4 * s] = (tmp10 - tmp11 + (1 << (HZ_PASS1_BITS - 1))) >> HZ_PASS1_BITS;
    } else {
        x[0] = (tmp10 + tmp11) * (1 << HZ_PASS1_BITS);
        x[4 * s] = (tmp10 - tmp11) * (1 << HZ_PASS1_BITS);
    }
    z1 = HZ_MULP(tmp12 + tmp13, HZ_F_0_541196100);
    x[2 * s] = (z1 + HZ_MULP(tmp13, HZ_F_0_765366865) + round) >> shift;
    x[6 * s] = (z1 - HZ_MULP(tmp12, HZ_F_1_847759065) + round) >> shift;

    z1 = tmp4 + tmp7;
    z2 = tmp5 + tmp6;
    z3 = tmp4 + tmp6;
    z4 = tmp5 + tmp7;
    z5 = HZ_MULP(z3 + z4, HZ_F_1_175875602);
    tmp4 = HZ_MULP(tmp4, HZ_F_0_298631336);
    tmp5 = HZ_MULP(tmp5, HZ_F_2_053119869);
    tmp6 = HZ_MULP(tmp6, HZ_F_3_072711026);
    tmp7 = HZ_MULP(tmp7, HZ_F_1_501321110);
    z1 = HZ_MULP(z1, -HZ_F_0_899976223);
    z2 = HZ_MULP(z2, -HZ_F_2_562915447);
    z3 = HZ_MULP(z3, -HZ_F_1_961570560) + z5;
    z4 = HZ_MULP(z4, -HZ_F_0_390180644) + z5;
    x[7 * s] = (tmp4 + z1 + z3 + round) >> shift;
    x[5 * s] = (tmp5 + z2 + z4 + round) >> shift;
    x[3 * s] = (tmp6 + z2 + z3 + round) >> shift;
    x[s] = (tmp7 + z1 + z4 + round) >> shift;
}

/* jidctint.c: one 1-D pass over dequantised values x[0], x[s], ..., x[7s],
 * in place. Pass 1 (final = 0) runs down the columns; pass 2 (final = 1)
 * along the rows and leaves the sample minus 128, before range limiting. */
HZ_QUAL void HZ_IDCT_1D(HZ_T *x, int s, int final)
{
    const int shift = final ? HZ_CONST_BITS + HZ_PASS1_BITS + 3 : HZ_CONST_BITS - HZ_PASS1_BITS;
    const int32_t round = 1 << (shift - 1);
    HZ_T z1, z2, z3, z4, z5, tmp0, tmp1, tmp2, tmp3, tmp10, tmp11, tmp12, tmp13;

    z2 = x[2 * s];
    z3 = x[6 * s];
    z1 = HZ_MULP(z2 + z3, HZ_F_0_541196100);
    tmp2 = z1 - HZ_MULP(z3, HZ_F_1_847759065);
    tmp3 = z1 + HZ_MULP(z2, HZ_F_0_765366865);
    /* the rounding constant rides along with the DC term, as it does in any order */
    tmp0 = (x[0] + x[4 * s]) * (1 << HZ_CONST_BITS) + round;
    tmp1 = (x[0] - x[4 * s]) * (1 << HZ_CONST_BITS) + round;
    tmp10 = tmp0 + tmp3;
    tmp13 = tmp0 - tmp3;
    tmp11 = tmp1 + tmp2;
    tmp12 = tmp1 - tmp2;

    tmp0 = x[7 * s];
    tmp1 = x[5 * s];
    tmp2 = x[3 * s];
    tmp3 = x[s];
    z1 = tmp0 + tmp3;
    z2 = tmp1 + tmp2;
    z3 = tmp0 + tmp2;
    z4 = tmp1 + tmp3;
    z5 = HZ_MULP(z3 + z4, HZ_F_1_175875602);
    tmp0 = HZ_MULP(tmp0, HZ_F_0_298631336);
    tmp1 = HZ_MULP(tmp1, HZ_F_2_053119869);
    tmp2 = HZ_MULP(tmp2, HZ_F_3_072711026);
    tmp3 = HZ_MULP(tmp3, HZ_F_1_501321110);
    z1 = HZ_MULP(z1, -HZ_F_0_899976223);
    z2 = HZ_MULP(z2, -HZ_F_2_562915447);
    z3 = HZ_MULP(z3, -HZ_F_1_961570560) + z5;
    z4 = HZ_MULP(z4, -HZ_F_0_390180644) + z5;
    tmp0 = tmp0 + z1 + z3;
    tmp1 = tmp1 + z2 + z4;
    tmp2 = tmp2 + z2 + z3;
    tmp3 = tmp3 + z1 + z4;

    x[0] = (tmp10 + tmp3) >> shift;
    x[7 * s] = (tmp10 - tmp3) >> shift;
    x[s] = (tmp11 + tmp2) >> shift;
    x[6 * s] = (tmp11 - tmp2) >> shift;
    x[2 * s] = (tmp12 + tmp1) >> shift;
    x[5 * s] = (tmp12 - tmp1) >> shift;
    x[3 * s] = (tmp13 + tmp0) >> shift;
    x[4 * s] = (tmp13 - tmp0) >> shift;
}

/* jcdctmgr.c quantize: sign(c) * floor((|c| + 4Q) / 8Q), with the division
 * by Q done exactly by hz_make_divisor's reciprocal (|c| < 2^15 for 8-bit
 * samples, so y < 2^12 and y * recip < 2^26). Branch-free for SIMD. */
/* floor((a + 4Q) / 8Q) of a magnitude a = |c|: floor((a + 4Q) / 8), then the
 * exact division by Q. */
#define HZ_QMAG(a, qval, recip, shift) HZ_SHRQ(HZ_MULQ(((a) + 4 * (qval)) >> 3, recip), shift)

HZ_QUAL HZ_T HZ_QUANTIZE(HZ_T c, HZ_QT qval, HZ_QT recip, HZ_QT shift)
{
    HZ_T sign = c >> 31;              /* 0 or -1 */
    HZ_T a = (c ^ sign) - sign;       /* |c| */
    HZ_T m = HZ_QMAG(a, qval, recip, shift);
    return (m ^ sign) - sign;
}

/* The magnitude alone (the bit count needs no signs), when the includer names it. */
#ifdef HZ_QUANTIZE_MAG
HZ_QUAL HZ_T HZ_QUANTIZE_MAG(HZ_T a, HZ_QT qval, HZ_QT recip, HZ_QT shift) { return HZ_QMAG(a, qval, recip, shift); }
#undef HZ_QUANTIZE_MAG
#endif
#undef HZ_QMAG

#undef HZ_MULP
#undef HZ_MUL16
#undef HZ_MULQ
#undef HZ_SHRQ
#undef HZ_QT
#undef HZ_T
#undef HZ_QUAL
#undef HZ_FDCT_1D
#undef HZ_IDCT_1D
#undef HZ_QUANTIZE
