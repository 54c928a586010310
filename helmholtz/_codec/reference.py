"""Pure-NumPy reference of the JPEG lossy path, written to be read.

This module is the specification that every fast backend is tested against.
It reproduces, integer for integer, what libjpeg-turbo computes when Pillow
saves an image with ``save(fp, "JPEG", quality=q, subsampling=s)`` and opens
it again:

encoder (jccolor.c, jcsample.c, jcprepct.c, jfdctint.c, jcdctmgr.c)
    fixed-point RGB -> YCbCr, edge replication, 2x1 / 2x2 averaging with
    alternating bias, the islow forward DCT and rounding division by 8*Q;
decoder (jidctint.c, jdsample.c, jdmainct.c, jdcolor.c)
    dequantisation, the islow inverse DCT with libjpeg's range-limit table,
    "fancy" triangular chroma upsampling and the YCbCr -> RGB tables.

Everything works on one image at a time and favours clarity over speed.
Arrays hold int64 so that no intermediate value can overflow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ANNEX_K_LUMA",
    "ANNEX_K_CHROMA",
    "ZIGZAG",
    "MAX_DEQUANTIZED",
    "SUBSAMPLING_FACTORS",
    "ComponentGeometry",
    "component_geometry",
    "quant_table",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
    "fdct_islow",
    "idct_islow",
    "quantize",
    "forward_component",
    "inverse_component",
    "upsample",
    "encode_planes",
    "decode_planes",
    "roundtrip_image",
]

# ITU T.81 Annex K, tables K.1 and K.2, row-major (natural) order.
ANNEX_K_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int64,
)
ANNEX_K_CHROMA = np.full((8, 8), 99, dtype=np.int64)
ANNEX_K_CHROMA[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]

# ZIGZAG[k] is the natural (row-major) index of the k-th coefficient in zigzag order.
ZIGZAG = np.array(
    [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
     12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
     35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
     58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63],
    dtype=np.int64,
)  # fmt: skip

# |quantised coefficient * Q| never exceeds this for 8-bit samples: the islow DCT
# is 8x the orthonormal one, at most 16384 in magnitude, so |v Q| <= 2048 + Q / 2.
MAX_DEQUANTIZED = 2176

# Luma (horizontal, vertical) sampling factors; chroma components are always 1x1.
SUBSAMPLING_FACTORS = {"4:4:4": (1, 1), "4:2:2": (2, 1), "4:2:0": (2, 2)}

# Fixed-point arithmetic of jccolor.c / jdcolor.c: SCALEBITS = 16.
_SCALEBITS = 16
_ONE_HALF = 1 << (_SCALEBITS - 1)
_CBCR_OFFSET = 128 << _SCALEBITS


def _fix16(x: float) -> int:
    return int(x * (1 << _SCALEBITS) + 0.5)


# islow DCT constants (jfdctint.c / jidctint.c): CONST_BITS = 13, PASS1_BITS = 2.
_CONST_BITS = 13
_PASS1_BITS = 2


def _fix13(x: float) -> int:
    return int(x * (1 << _CONST_BITS) + 0.5)


F_0_298631336 = _fix13(0.298631336)
F_0_390180644 = _fix13(0.390180644)
F_0_541196100 = _fix13(0.541196100)
F_0_765366865 = _fix13(0.765366865)
F_0_899976223 = _fix13(0.899976223)
F_1_175875602 = _fix13(1.175875602)
F_1_501321110 = _fix13(1.501321110)
F_1_847759065 = _fix13(1.847759065)
F_1_961570560 = _fix13(1.961570560)
F_2_053119869 = _fix13(2.053119869)
F_2_562915447 = _fix13(2.562915447)
F_3_072711026 = _fix13(3.072711026)


def _descale(x, n: int):
    """Round-half-up right shift, libjpeg's DESCALE."""
    return (x + (1 << (n - 1))) >> n


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# --------------------------------------------------------------------------
# Quantisation tables
# --------------------------------------------------------------------------


def quant_table(base: np.ndarray, quality: int, baseline: bool = True) -> np.ndarray:
    """Scale an Annex K table the way IJG's ``jpeg_set_quality`` does.

    Parameters
    ----------
    base : ndarray
        An 8x8 Annex K table.
    quality : int
        JPEG quality; values outside 1..100 are clamped as libjpeg does.
    baseline : bool
        Clamp entries to 255 (``force_baseline``); otherwise to 32767.

    Returns
    -------
    ndarray
        int64 8x8 table in natural order.
    """
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    table = (base * scale + 50) // 100
    return np.clip(table, 1, 255 if baseline else 32767)


# --------------------------------------------------------------------------
# Geometry: how libjpeg lays an image out in components and blocks
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ComponentGeometry:
    """Layout of one JPEG component.

    Attributes
    ----------
    h_samp, v_samp : int
        Sampling factors of the component.
    width, height : int
        ``downsampled_width`` / ``downsampled_height`` in libjpeg's terms:
        the number of real samples of the component.
    blocks_wide, blocks_high : int
        ``width_in_blocks`` / ``height_in_blocks``: the blocks that hold
        real samples (what ``jpeg_read_coefficients`` returns).
    """

    h_samp: int
    v_samp: int
    width: int
    height: int
    blocks_wide: int
    blocks_high: int


def component_geometry(height: int, width: int, channels: int, subsampling: str) -> list[ComponentGeometry]:
    """Return the libjpeg component layout of an image.

    Grayscale images (``channels == 1``) have a single component with 1x1
    sampling whatever ``subsampling`` says, as in libjpeg.
    """
    if channels == 1:
        factors = [(1, 1)]
    else:
        factors = [SUBSAMPLING_FACTORS[subsampling], (1, 1), (1, 1)]
    max_h = max(h for h, _ in factors)
    max_v = max(v for _, v in factors)
    out = []
    for h_samp, v_samp in factors:
        w = _ceil_div(width * h_samp, max_h)
        h = _ceil_div(height * v_samp, max_v)
        out.append(ComponentGeometry(h_samp, v_samp, w, h, _ceil_div(w, 8), _ceil_div(h, 8)))
    return out


# --------------------------------------------------------------------------
# Colour conversion
# --------------------------------------------------------------------------


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """jccolor.c ``rgb_ycc_convert``: uint8 (..., 3) RGB -> int64 (..., 3) YCbCr."""
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    y = (_fix16(0.29900) * r + _fix16(0.58700) * g + _fix16(0.11400) * b + _ONE_HALF) >> _SCALEBITS
    # The fudge factor ONE_HALF - 1 keeps the maximum at 255 (jccolor.c).
    cb = (-_fix16(0.16874) * r - _fix16(0.33126) * g + _fix16(0.5) * b + _CBCR_OFFSET + _ONE_HALF - 1) >> _SCALEBITS
    cr = (_fix16(0.5) * r - _fix16(0.41869) * g - _fix16(0.08131) * b + _CBCR_OFFSET + _ONE_HALF - 1) >> _SCALEBITS
    return np.stack([y, cb, cr], axis=-1)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """jdcolor.c ``ycc_rgb_convert``: int (..., 3) YCbCr -> uint8 (..., 3) RGB."""
    y, cb, cr = (ycc[..., i].astype(np.int64) for i in range(3))
    x_cb = cb - 128
    x_cr = cr - 128
    r = y + ((_fix16(1.40200) * x_cr + _ONE_HALF) >> _SCALEBITS)
    g = y + ((-_fix16(0.34414) * x_cb + _ONE_HALF - _fix16(0.71414) * x_cr) >> _SCALEBITS)
    b = y + ((_fix16(1.77200) * x_cb + _ONE_HALF) >> _SCALEBITS)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------
# islow DCT (Loeffler-Ligtenberg-Moschytz, 13-bit constants)
# --------------------------------------------------------------------------


def _fdct_1d(x: list, final: bool) -> list:
    """One 1-D pass of jfdctint.c over a list of 8 arrays (samples along the pass)."""
    shift = _CONST_BITS + _PASS1_BITS if final else _CONST_BITS - _PASS1_BITS
    tmp0, tmp7 = x[0] + x[7], x[0] - x[7]
    tmp1, tmp6 = x[1] + x[6], x[1] - x[6]
    tmp2, tmp5 = x[2] + x[5], x[2] - x[5]
    tmp3, tmp4 = x[3] + x[4], x[3] - x[4]
    tmp10, tmp13 = tmp0 + tmp3, tmp0 - tmp3
    tmp11, tmp12 = tmp1 + tmp2, tmp1 - tmp2
    out = [None] * 8
    if final:
        out[0] = _descale(tmp10 + tmp11, _PASS1_BITS)
        out[4] = _descale(tmp10 - tmp11, _PASS1_BITS)
    else:
        out[0] = (tmp10 + tmp11) << _PASS1_BITS
        out[4] = (tmp10 - tmp11) << _PASS1_BITS
    z1 = (tmp12 + tmp13) * F_0_541196100
    out[2] = _descale(z1 + tmp13 * F_0_765366865, shift)
    out[6] = _descale(z1 - tmp12 * F_1_847759065, shift)
    z1, z2, z3, z4 = tmp4 + tmp7, tmp5 + tmp6, tmp4 + tmp6, tmp5 + tmp7
    z5 = (z3 + z4) * F_1_175875602
    tmp4 = tmp4 * F_0_298631336
    tmp5 = tmp5 * F_2_053119869
    tmp6 = tmp6 * F_3_072711026
    tmp7 = tmp7 * F_1_501321110
    z1 = z1 * -F_0_899976223
    z2 = z2 * -F_2_562915447
    z3 = z3 * -F_1_961570560 + z5
    z4 = z4 * -F_0_390180644 + z5
    out[7] = _descale(tmp4 + z1 + z3, shift)
    out[5] = _descale(tmp5 + z2 + z4, shift)
    out[3] = _descale(tmp6 + z2 + z3, shift)
    out[1] = _descale(tmp7 + z1 + z4, shift)
    return out


def fdct_islow(blocks: np.ndarray) -> np.ndarray:
    """Forward islow DCT of level-shifted blocks (..., 8, 8); output is 8x the orthonormal DCT."""
    x = blocks.astype(np.int64)
    rows = _fdct_1d([x[..., :, k] for k in range(8)], final=False)  # pass 1 along each row
    x = np.stack(rows, axis=-1)
    cols = _fdct_1d([x[..., k, :] for k in range(8)], final=True)  # pass 2 along each column
    return np.stack(cols, axis=-2)


def _idct_1d(x: list, final: bool) -> list:
    """One 1-D pass of jidctint.c over 8 arrays of (dequantised) coefficients."""
    shift = _CONST_BITS + _PASS1_BITS + 3 if final else _CONST_BITS - _PASS1_BITS
    z2, z3 = x[2], x[6]
    z1 = (z2 + z3) * F_0_541196100
    tmp2 = z1 - z3 * F_1_847759065
    tmp3 = z1 + z2 * F_0_765366865
    tmp0 = (x[0] + x[4]) << _CONST_BITS
    tmp1 = (x[0] - x[4]) << _CONST_BITS
    tmp10, tmp13 = tmp0 + tmp3, tmp0 - tmp3
    tmp11, tmp12 = tmp1 + tmp2, tmp1 - tmp2
    tmp0, tmp1, tmp2, tmp3 = x[7], x[5], x[3], x[1]
    z1, z2, z3, z4 = tmp0 + tmp3, tmp1 + tmp2, tmp0 + tmp2, tmp1 + tmp3
    z5 = (z3 + z4) * F_1_175875602
    tmp0 = tmp0 * F_0_298631336
    tmp1 = tmp1 * F_2_053119869
    tmp2 = tmp2 * F_3_072711026
    tmp3 = tmp3 * F_1_501321110
    z1 = z1 * -F_0_899976223
    z2 = z2 * -F_2_562915447
    z3 = z3 * -F_1_961570560 + z5
    z4 = z4 * -F_0_390180644 + z5
    tmp0 = tmp0 + z1 + z3
    tmp1 = tmp1 + z2 + z4
    tmp2 = tmp2 + z2 + z3
    tmp3 = tmp3 + z1 + z4
    return [
        _descale(tmp10 + tmp3, shift),
        _descale(tmp11 + tmp2, shift),
        _descale(tmp12 + tmp1, shift),
        _descale(tmp13 + tmp0, shift),
        _descale(tmp13 - tmp0, shift),
        _descale(tmp12 - tmp1, shift),
        _descale(tmp11 - tmp2, shift),
        _descale(tmp10 - tmp3, shift),
    ]


def _range_limit(x: np.ndarray) -> np.ndarray:
    """libjpeg's post-IDCT range-limit table: mask to 10 bits, sign-extend, add 128, clamp."""
    x = x & 1023
    x = np.where(x >= 512, x - 1024, x)
    return np.clip(x + 128, 0, 255)


def idct_islow(coefficients: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Dequantise and inverse-DCT quantised blocks (..., 8, 8) to uint8 samples."""
    x = coefficients.astype(np.int64) * table.astype(np.int64)
    cols = _idct_1d([x[..., k, :] for k in range(8)], final=False)  # pass 1 along each column
    x = np.stack(cols, axis=-2)
    rows = _idct_1d([x[..., :, k] for k in range(8)], final=True)  # pass 2 along each row
    return _range_limit(np.stack(rows, axis=-1)).astype(np.uint8)


def quantize(coefficients: np.ndarray, table: np.ndarray) -> np.ndarray:
    """jcdctmgr.c ``quantize``: round |c| / (8 Q) half up, keep the sign; int16 out."""
    divisor = 8 * table.astype(np.int64)
    magnitude = (np.abs(coefficients) + divisor // 2) // divisor
    return (np.sign(coefficients) * magnitude).astype(np.int16)


# --------------------------------------------------------------------------
# Encoder side: edge replication, downsampling, blocks
# --------------------------------------------------------------------------


def _extend(plane: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Replicate the last row and column of a plane up to ``rows`` x ``cols``."""
    return np.pad(plane, ((0, rows - plane.shape[0]), (0, cols - plane.shape[1])), mode="edge")


def _downsample(plane: np.ndarray, fh: int, fv: int) -> np.ndarray:
    """jcsample.c: fullsize copy, h2v1 (bias 0,1,...) or h2v2 (bias 1,2,...) averaging."""
    if fh == 1 and fv == 1:
        return plane
    cols = plane.shape[1] // 2
    bias = np.arange(cols) % 2  # 0,1,0,1,... along each output row
    if fv == 1:
        return (plane[:, 0::2] + plane[:, 1::2] + bias) >> 1
    total = plane[0::2, 0::2] + plane[0::2, 1::2] + plane[1::2, 0::2] + plane[1::2, 1::2]
    return (total + 1 + bias) >> 2


def forward_component(plane: np.ndarray, geom: ComponentGeometry, max_h: int, max_v: int, table: np.ndarray) -> np.ndarray:
    """Full-resolution component plane (H, W) -> quantised blocks (bh, bw, 8, 8) int16."""
    fh, fv = max_h // geom.h_samp, max_v // geom.v_samp
    height, width = plane.shape
    # jcsample.c expand_right_edge: replicate columns to the block-padded width.
    # jcprepct.c: replicate the last row up to a whole row group (max_v rows).
    full = _extend(plane.astype(np.int64), _ceil_div(height, max_v) * max_v, geom.blocks_wide * 8 * fh)
    small = _downsample(full, fh, fv)
    # jcprepct.c expand_bottom_edge: replicate the last *downsampled* row to whole blocks.
    small = _extend(small, geom.blocks_high * 8, small.shape[1])
    blocks = small.reshape(geom.blocks_high, 8, geom.blocks_wide, 8).swapaxes(1, 2) - 128
    return quantize(fdct_islow(blocks), table)


def encode_planes(image: np.ndarray, subsampling: str, quality: int) -> list[np.ndarray]:
    """One uint8 image (H, W, C), C in {1, 3} -> quantised blocks per component."""
    height, width, channels = image.shape
    geoms = component_geometry(height, width, channels, subsampling)
    if channels == 1:
        planes = [image[..., 0].astype(np.int64)]
    else:
        ycc = rgb_to_ycbcr(image)
        planes = [ycc[..., i] for i in range(3)]
    max_h = max(g.h_samp for g in geoms)
    max_v = max(g.v_samp for g in geoms)
    tables = [quant_table(ANNEX_K_LUMA, quality), quant_table(ANNEX_K_CHROMA, quality)]
    return [forward_component(p, g, max_h, max_v, tables[min(i, 1)]) for i, (p, g) in enumerate(zip(planes, geoms))]


# --------------------------------------------------------------------------
# Decoder side: samples, upsampling, colour
# --------------------------------------------------------------------------


def inverse_component(blocks: np.ndarray, geom: ComponentGeometry, table: np.ndarray) -> np.ndarray:
    """Quantised blocks (bh, bw, 8, 8) -> the component's real samples (height, width) as int64."""
    samples = idct_islow(blocks, table).swapaxes(1, 2).reshape(geom.blocks_high * 8, geom.blocks_wide * 8)
    return samples[: geom.height, : geom.width].astype(np.int64)


def _fancy_h2v1(rows: np.ndarray) -> np.ndarray:
    """jdsample.c h2v1_fancy_upsample: 3/4 nearer + 1/4 further sample, biases 1 and 2."""
    n = rows.shape[1]
    left = np.concatenate([rows[:, :1], rows[:, :-1]], axis=1)
    right = np.concatenate([rows[:, 1:], rows[:, -1:]], axis=1)
    out = np.empty((rows.shape[0], 2 * n), dtype=np.int64)
    out[:, 0::2] = (3 * rows + left + 1) >> 2
    out[:, 1::2] = (3 * rows + right + 2) >> 2
    # The outermost outputs copy the edge sample exactly.
    out[:, 0] = rows[:, 0]
    out[:, -1] = rows[:, -1]
    return out


def _fancy_h2v2(plane: np.ndarray) -> np.ndarray:
    """jdsample.c h2v2_fancy_upsample with jdmainct.c's replicated context rows."""
    above = np.concatenate([plane[:1], plane[:-1]], axis=0)
    below = np.concatenate([plane[1:], plane[-1:]], axis=0)
    height, n = plane.shape
    out = np.empty((2 * height, 2 * n), dtype=np.int64)
    for parity, neighbour in ((0, above), (1, below)):
        colsum = 3 * plane + neighbour
        left = np.concatenate([colsum[:, :1], colsum[:, :-1]], axis=1)
        right = np.concatenate([colsum[:, 1:], colsum[:, -1:]], axis=1)
        even = (3 * colsum + left + 8) >> 4
        odd = (3 * colsum + right + 7) >> 4
        # First and last columns: thiscolsum * 4 + 8 >> 4 and thiscolsum * 4 + 7 >> 4.
        even[:, 0] = (4 * colsum[:, 0] + 8) >> 4
        odd[:, -1] = (4 * colsum[:, -1] + 7) >> 4
        out[parity::2, 0::2] = even
        out[parity::2, 1::2] = odd
    return out


def upsample(samples: np.ndarray, geom: ComponentGeometry, max_h: int, max_v: int) -> np.ndarray:
    """jdsample.c: bring a component's samples to full resolution (before cropping)."""
    fh, fv = max_h // geom.h_samp, max_v // geom.v_samp
    if fh == 1 and fv == 1:
        return samples
    # Fancy upsampling needs more than two samples per row; libjpeg-turbo falls
    # back to plain replication otherwise (jinit_upsampler).
    fancy = geom.width > 2
    if fv == 1:
        return _fancy_h2v1(samples) if fancy else np.repeat(samples, 2, axis=1)
    return _fancy_h2v2(samples) if fancy else np.repeat(np.repeat(samples, 2, axis=0), 2, axis=1)


def decode_planes(blocks: list[np.ndarray], height: int, width: int, subsampling: str, quality_tables) -> np.ndarray:
    """Quantised blocks per component -> uint8 image (H, W, C)."""
    channels = 1 if len(blocks) == 1 else 3
    geoms = component_geometry(height, width, channels, subsampling)
    max_h = max(g.h_samp for g in geoms)
    max_v = max(g.v_samp for g in geoms)
    planes = []
    for i, (b, g) in enumerate(zip(blocks, geoms)):
        samples = inverse_component(b, g, quality_tables[min(i, 1)])
        planes.append(upsample(samples, g, max_h, max_v)[:height, :width])
    if channels == 1:
        return planes[0][..., None].astype(np.uint8)
    return ycbcr_to_rgb(np.stack(planes, axis=-1))


def roundtrip_image(image: np.ndarray, quality: int, subsampling: str = "4:2:0") -> np.ndarray:
    """JPEG encode + decode of one uint8 image (H, W, C) exactly as libjpeg-turbo does it."""
    blocks = encode_planes(image, subsampling, quality)
    tables = [quant_table(ANNEX_K_LUMA, quality), quant_table(ANNEX_K_CHROMA, quality)]
    return decode_planes(blocks, image.shape[0], image.shape[1], subsampling, tables)
