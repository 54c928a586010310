"""Readable reference of baseline JPEG entropy coding, as libjpeg-turbo does it.

This module is the specification for the C entropy core (``csrc/hz_huffman.h``,
``csrc/hz_entropy.c``). Given the quantised coefficients of one image (one
int16 array ``(blocks_high, blocks_wide, 8, 8)`` per component, natural order,
real blocks only) it

* lays the blocks out in scan order, adding the *dummy* blocks that libjpeg
  (``jccoefct.c``) appends to complete the last MCU column and row;
* turns every block into Huffman symbols and extra bits (``jchuff.c``);
* counts the entropy-coded bits with the standard Annex K tables or with
  per-image optimal tables built by ``jpeg_gen_optimal_table``;
* writes a complete baseline JFIF file byte-identical to Pillow's.

Everything favours clarity over speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .reference import SUBSAMPLING_FACTORS, ZIGZAG, component_geometry

__all__ = [
    "HuffmanTable",
    "STD_TABLES",
    "category",
    "scan_blocks",
    "image_symbols",
    "symbol_frequencies",
    "gen_optimal_table",
    "code_lengths",
    "image_tables",
    "image_bits",
    "header_bytes",
    "encode_image",
]


@dataclass(frozen=True)
class HuffmanTable:
    """A JPEG Huffman table as a DHT segment stores it.

    Attributes
    ----------
    bits : tuple of int
        16 entries: ``bits[k]`` symbols have codes of length ``k + 1``.
    huffval : tuple of int
        The symbols, ordered by code length then as listed.
    """

    bits: tuple
    huffval: tuple

    def codes(self) -> dict[int, tuple[int, int]]:
        """Canonical codes (``jpeg_make_c_derived_tbl``): symbol -> (code, length)."""
        out = {}
        code = 0
        k = 0
        for length in range(1, 17):
            for _ in range(self.bits[length - 1]):
                out[self.huffval[k]] = (code, length)
                code += 1
                k += 1
            code <<= 1
        return out


# ITU T.81 Annex K.3 (libjpeg's std_huff_tables): DC luma, AC luma, DC chroma, AC chroma.
_DC_LUMA = HuffmanTable((0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0), tuple(range(12)))
_DC_CHROMA = HuffmanTable((0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0), tuple(range(12)))
_AC_LUMA = HuffmanTable(
    (0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D),
    (
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
        0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0,
        0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25, 0x26, 0x27, 0x28,
        0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
        0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
        0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
        0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
        0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5,
        0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2,
        0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
        0xF9, 0xFA,
    ),
)  # fmt: skip
_AC_CHROMA = HuffmanTable(
    (0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77),
    (
        0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
        0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09, 0x23, 0x33, 0x52, 0xF0,
        0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1, 0x17, 0x18, 0x19, 0x1A, 0x26,
        0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
        0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
        0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
        0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5,
        0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3,
        0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA,
        0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
        0xF9, 0xFA,
    ),
)  # fmt: skip

# Table slots: 0 = DC luma, 1 = AC luma, 2 = DC chroma, 3 = AC chroma.
STD_TABLES = (_DC_LUMA, _AC_LUMA, _DC_CHROMA, _AC_CHROMA)


RANGE_ERROR = (
    "coefficients lie outside the baseline JPEG range (|AC| <= 1023, DC differences "
    "of at most 11 bits); they cannot come from 8-bit images"
)


def category(v: int) -> int:
    """JPEG magnitude category (``nbits``): the bit length of ``|v|``; 0 for 0."""
    return int(abs(int(v))).bit_length()


def _extra_bits(v: int, nbits: int) -> int:
    """The ``nbits`` low bits sent after a symbol: ``v`` if positive, else ``v - 1`` (one's complement)."""
    return (v if v >= 0 else v - 1) & ((1 << nbits) - 1)


# --------------------------------------------------------------------------
# Scan order, with libjpeg's dummy blocks
# --------------------------------------------------------------------------


def _padded(blocks: np.ndarray, rows: int, cols: int, h_samp: int) -> np.ndarray:
    """Pad a component's block grid to ``rows x cols`` blocks as ``jccoefct.c`` does.

    Right-edge dummies: zero AC, DC of the last real block to their left.
    Bottom dummy rows: in each MCU, every dummy block copies the DC of block
    ``h_samp - 1`` of the row above within that MCU.
    """
    bh, bw = blocks.shape[:2]
    out = np.zeros((rows, cols, 8, 8), dtype=np.int64)
    out[:bh, :bw] = blocks
    for i in range(bh):
        out[i, bw:, 0, 0] = blocks[i, bw - 1, 0, 0]
    for i in range(bh, rows):
        for mcu in range(cols // h_samp):
            out[i, mcu * h_samp : (mcu + 1) * h_samp, 0, 0] = out[i - 1, mcu * h_samp + h_samp - 1, 0, 0]
    return out


def scan_blocks(components: list[np.ndarray], height: int, width: int, subsampling: str) -> list[tuple[int, np.ndarray]]:
    """Blocks of one image in the order the scan codes them.

    Parameters
    ----------
    components : list of ndarray
        Quantised blocks ``(blocks_high, blocks_wide, 8, 8)`` per component.
    height, width : int
        Image size in pixels.
    subsampling : str
        Chroma subsampling (ignored for one component).

    Returns
    -------
    list of (component index, block)
        A single component is coded non-interleaved (one block per MCU, real
        blocks only, raster order). Three components are interleaved: each MCU
        holds ``v_samp x h_samp`` blocks of each component in raster order,
        dummy blocks included.
    """
    if len(components) == 1:
        c = components[0]
        return [(0, c[i, j]) for i in range(c.shape[0]) for j in range(c.shape[1])]
    geoms = component_geometry(height, width, 3, subsampling)
    max_h = max(g.h_samp for g in geoms)
    max_v = max(g.v_samp for g in geoms)
    mcus_wide = -(-width // (8 * max_h))
    mcus_high = -(-height // (8 * max_v))
    padded = [_padded(c, mcus_high * g.v_samp, mcus_wide * g.h_samp, g.h_samp) for c, g in zip(components, geoms)]
    out = []
    for my in range(mcus_high):
        for mx in range(mcus_wide):
            for ci, g in enumerate(geoms):
                for y in range(g.v_samp):
                    for x in range(g.h_samp):
                        out.append((ci, padded[ci][my * g.v_samp + y, mx * g.h_samp + x]))
    return out


# --------------------------------------------------------------------------
# Symbols
# --------------------------------------------------------------------------


def _block_symbols(block: np.ndarray, prev_dc: int, slot: int) -> list[tuple[int, int, int, int]]:
    """Symbols of one block (``jchuff.c encode_one_block``).

    Returns a list of ``(table slot, symbol, extra bit count, extra bits)``.
    """
    zz = np.asarray(block).reshape(64)[ZIGZAG].astype(np.int64)
    out = []
    diff = int(zz[0]) - prev_dc
    n = category(diff)
    if n > 11 or (np.abs(zz[1:]) > 1023).any():
        raise ValueError(RANGE_ERROR)
    out.append((slot, n, n, _extra_bits(diff, n)))
    run = 0
    for k in range(1, 64):
        v = int(zz[k])
        if v == 0:
            run += 1
            continue
        while run > 15:  # ZRL: a run of 16 zeros
            out.append((slot + 1, 0xF0, 0, 0))
            run -= 16
        n = category(v)
        out.append((slot + 1, (run << 4) | n, n, _extra_bits(v, n)))
        run = 0
    if run > 0:  # EOB
        out.append((slot + 1, 0x00, 0, 0))
    return out


def image_symbols(components: list[np.ndarray], height: int, width: int, subsampling: str) -> list[tuple[int, int, int, int]]:
    """All Huffman symbols of one image's scan, in order.

    The DC predictor of each component starts at 0 and follows the scan
    (dummy blocks included). Luma uses table slots 0/1, chroma 2/3.
    """
    prev = [0, 0, 0]
    out = []
    for ci, block in scan_blocks(components, height, width, subsampling):
        out.extend(_block_symbols(block, prev[ci], 0 if ci == 0 else 2))
        prev[ci] = int(block[0, 0])
    return out


def symbol_frequencies(symbols: list[tuple[int, int, int, int]]) -> np.ndarray:
    """int64 (4, 256): how often each symbol occurs in each table slot."""
    freq = np.zeros((4, 256), dtype=np.int64)
    for slot, sym, _, _ in symbols:
        freq[slot, sym] += 1
    return freq


# --------------------------------------------------------------------------
# Optimal tables (jchuff.c jpeg_gen_optimal_table)
# --------------------------------------------------------------------------


def gen_optimal_table(freq: np.ndarray) -> HuffmanTable:
    """Build a Huffman table from 256 symbol frequencies exactly as libjpeg does.

    The procedure of ITU T.81 K.2: a pseudo-symbol 256 with frequency 1
    reserves the all-ones codeword; repeatedly merge the two least frequent
    nodes (ties go to the *larger* symbol number); limit code lengths to 16
    bits by the Annex K.3 adjustment; drop the pseudo-symbol from the
    longest length; list symbols by code length, then by symbol value.

    libjpeg starts its minimum searches at 10**9, which only matters for
    counts above 10**9 (images of more than about 10**9 / 64 blocks); here
    the search starts at infinity, as in the C core.
    """
    f = [int(x) for x in freq] + [1]
    codesize = [0] * 257
    others = [-1] * 257
    while True:
        c1, v = -1, float("inf")
        for i in range(257):
            if f[i] and f[i] <= v:
                v, c1 = f[i], i
        c2, v = -1, float("inf")
        for i in range(257):
            if f[i] and f[i] <= v and i != c1:
                v, c2 = f[i], i
        if c2 < 0:
            break
        f[c1] += f[c2]
        f[c2] = 0
        codesize[c1] += 1
        while others[c1] >= 0:
            c1 = others[c1]
            codesize[c1] += 1
        others[c1] = c2
        codesize[c2] += 1
        while others[c2] >= 0:
            c2 = others[c2]
            codesize[c2] += 1
    bits = [0] * 33
    for i in range(257):
        if codesize[i]:
            if codesize[i] > 32:
                raise RuntimeError("Huffman code length exceeds 32 bits")
            bits[codesize[i]] += 1
    i = 32
    while i > 16:
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
        i -= 1
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1
    huffval = [j for length in range(1, 33) for j in range(256) if codesize[j] == length]
    return HuffmanTable(tuple(bits[1:17]), tuple(huffval))


def code_lengths(table: HuffmanTable) -> np.ndarray:
    """int64 (256,): the code length of each symbol (0 if it has no code)."""
    out = np.zeros(256, dtype=np.int64)
    for sym, (_, length) in table.codes().items():
        out[sym] = length
    return out


def image_tables(symbols, ncomp: int, optimize: bool) -> list[HuffmanTable]:
    """The Huffman tables (slots 0..3, or 0..1 for one component) of one image."""
    nslots = 2 if ncomp == 1 else 4
    if not optimize:
        return list(STD_TABLES[:nslots])
    freq = symbol_frequencies(symbols)
    return [gen_optimal_table(freq[s]) for s in range(nslots)]


def image_bits(components: list[np.ndarray], height: int, width: int, subsampling: str, optimize: bool = False) -> int:
    """Entropy-coded bits of one image's scan (before stuffing and padding).

    ``bits = sum over symbols of (code length + extra bits)``.
    """
    symbols = image_symbols(components, height, width, subsampling)
    lengths = [code_lengths(t) for t in image_tables(symbols, len(components), optimize)]
    return int(sum(int(lengths[slot][sym]) + n for slot, sym, n, _ in symbols))


# --------------------------------------------------------------------------
# The JFIF writer (jcmarker.c as Pillow drives it)
# --------------------------------------------------------------------------


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def _dht(table: HuffmanTable, index: int) -> bytes:
    return _segment(0xC4, bytes([index]) + bytes(table.bits) + bytes(table.huffval))


def header_bytes(height: int, width: int, subsampling: str, qtables: np.ndarray, huff: list[HuffmanTable]) -> bytes:
    """Everything before the scan data: SOI, APP0, DQT, SOF0, DHT, SOS.

    ``qtables`` is the (2, 8, 8) natural-order luma/chroma table pair;
    ``huff`` the tables in slot order (DC luma, AC luma[, DC chroma, AC chroma]).
    """
    ncomp = 1 if len(huff) == 2 else 3
    out = bytearray(b"\xff\xd8")
    # APP0 JFIF 1.01, density unit 0, density 1:1, no thumbnail.
    out += _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    for t in range(1 if ncomp == 1 else 2):
        zz = np.asarray(qtables[t]).reshape(64)[ZIGZAG]
        out += _segment(0xDB, bytes([t]) + bytes(int(x) for x in zz))
    # Pillow sets the first component's sampling factors from ``subsampling``
    # even for grayscale (where the single component is coded non-interleaved,
    # so only this SOF byte differs); chroma is always 1x1.
    factors = [SUBSAMPLING_FACTORS[subsampling], (1, 1), (1, 1)][:ncomp]
    sof = bytes([8]) + height.to_bytes(2, "big") + width.to_bytes(2, "big") + bytes([ncomp])
    for ci, (h_samp, v_samp) in enumerate(factors):
        sof += bytes([ci + 1, (h_samp << 4) | v_samp, min(ci, 1)])
    out += _segment(0xC0, sof)
    for t in range(len(huff) // 2):
        out += _dht(huff[2 * t], t)  # DC table t
        out += _dht(huff[2 * t + 1], 0x10 | t)  # AC table t
    sos = bytes([ncomp])
    for ci in range(ncomp):
        sos += bytes([ci + 1, 0x00 if ci == 0 else 0x11])
    out += _segment(0xDA, sos + b"\x00\x3f\x00")
    return bytes(out)


def encode_image(
    components: list[np.ndarray], height: int, width: int, subsampling: str, qtables: np.ndarray, optimize: bool = False
) -> bytes:
    """A complete baseline JFIF file, byte-identical to Pillow's.

    The scan is the concatenation of every symbol's code followed by its
    extra bits, padded with 1-bits to a whole byte; every 0xFF byte of it is
    followed by a stuffed 0x00.
    """
    symbols = image_symbols(components, height, width, subsampling)
    tables = image_tables(symbols, len(components), optimize)
    codes = [t.codes() for t in tables]
    parts = []
    for slot, sym, n, extra in symbols:
        code, length = codes[slot][sym]
        parts.append(format(code, f"0{length}b"))
        if n:
            parts.append(format(extra, f"0{n}b"))
    bitstring = "".join(parts)
    bitstring += "1" * (-len(bitstring) % 8)
    scan = int(bitstring, 2).to_bytes(len(bitstring) // 8, "big") if bitstring else b""
    scan = scan.replace(b"\xff", b"\xff\x00")
    return header_bytes(height, width, subsampling, qtables, tables) + scan + b"\xff\xd9"
