"""MP3 round trips with the real LAME encoder.

:func:`mp3_roundtrip` compresses a batch of mono waveforms with LAME at a
constant bitrate (through ``lameenc``, which bundles LAME), decodes them with
``dr_mp3`` (through ``miniaudio``) and hands back waveforms that line up
sample for sample with the input, together with the exact size in bits of the
MP3 frames that were written.

What happens to one clip
------------------------
1. **Choice of the MPEG sample rate** (:func:`codec_sample_rate`). LAME only
   writes certain bitrates at a given sample rate (MPEG-2.5 at 8-12 kHz: 8..64
   kbps; MPEG-2 at 16-24 kHz: 8..160 kbps; MPEG-1 at 32-48 kHz: 32..320 kbps).
   The rate is the one ``lame -b N`` picks itself for the input rate (LAME
   resamples low bitrates down, e.g. 44.1 kHz at 32 kbps is coded at 22.05
   kHz) whenever that rate carries the requested bitrate. Where it does not
   (the input rate is too low: ``lame -b 128`` on 8 kHz input silently writes
   64 kbps), the clip is upsampled to the lowest MPEG rate above the input
   rate that carries the bitrate (8 kHz at 96 or 128 kbps -> 16 kHz). A
   bitrate that no such rate carries raises a ValueError;
   :func:`supported_bitrates` lists the valid ones for a sample rate.
2. **Resampling** to that rate, where it differs, with
   :func:`scipy.signal.resample_poly` (zero-phase polyphase FIR, Kaiser
   window), so the resampler adds no delay.
3. **Encoding** with LAME at that rate (input rate = output rate, mono,
   constant bitrate, ``quality=3``, LAME's default and thus what ``lame -b N``
   does: the frames are byte-identical to the ``lame`` 3.100 command line's
   except for the version string LAME writes in the padding of some frames).
4. **Decoding** with dr_mp3 and **removing the delay**: LAME's encoder delay
   (576 samples) plus the MP3 decoder's delay (529 samples) is
   :data:`CODEC_DELAY` = 1105 samples at the MPEG rate, measured here by
   cross-correlation and constant over all rates and bitrates. The decoded
   signal is cut to ``[1105, 1105 + n)``, which drops the padding LAME adds
   to fill the last frame.
5. **Resampling back** to the input rate, where step 2 resampled.

The bits of a clip are the sum of the sizes of its MP3 frames times 8
(:func:`mp3_frame_sizes`; the headers are parsed, nothing is estimated). A
Xing/LAME "Info" frame carries no audio and is not counted; ``lameenc``
writes none, and neither ID3 tags, so the count equals ``8 * len(mp3)``.
Because every frame is written at the constant bitrate, the count is
``bitrate x duration`` rounded up to whole frames, plus the frames the codec
delay adds (about two).

Work is spread over a thread pool: LAME (``lameenc``), dr_mp3 (``cffi``) and
the resampler release the GIL.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from .._extras import require

__all__ = [
    "CODEC_DELAY",
    "MPEG_SAMPLE_RATES",
    "LAME_BITRATES",
    "MP3Result",
    "codec_sample_rate",
    "supported_bitrates",
    "mp3_roundtrip",
    "mp3_encode",
    "mp3_decode",
    "mp3_frame_sizes",
    "mp3_bits",
    "resample",
    "check_bitrate",
    "check_int",
    "to_int16",
    "default_workers",
]

#: LAME's encoder delay (576) + the MP3 decoder's delay (529), in samples at the MPEG rate.
CODEC_DELAY = 1105

#: The MPEG audio sample rates (MPEG-2.5, MPEG-2, MPEG-1).
MPEG_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)

# MPEG Layer III bitrate tables (kbps), index 1..14.
_BR_MPEG1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_BR_MPEG2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_SR_BY_VERSION = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}

#: The constant bitrates (kbps) LAME writes at each MPEG sample rate (LAME caps MPEG-2.5 at 64).
LAME_BITRATES: dict[int, tuple[int, ...]] = {
    **{sr: _BR_MPEG2[1:9] for sr in (8000, 11025, 12000)},
    **{sr: _BR_MPEG2[1:] for sr in (16000, 22050, 24000)},
    **{sr: _BR_MPEG1[1:] for sr in (32000, 44100, 48000)},
}

_MIN_RATE, _MAX_RATE = 4000, 192000
_ALL_BITRATES = tuple(sorted(set(_BR_MPEG1[1:]) | set(_BR_MPEG2[1:])))


# --------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------
def check_int(value: Any, name: str) -> int:
    """An integer argument (not a bool) as an int, or a TypeError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer; got {type(value).__name__} {value!r}")
    return int(value)


def _check_rate(sample_rate: Any, name: str = "sample_rate") -> int:
    sr = check_int(sample_rate, name)
    if not _MIN_RATE <= sr <= _MAX_RATE:
        raise ValueError(f"{name} must be between {_MIN_RATE} and {_MAX_RATE} Hz; got {sr}")
    return sr


def check_bitrate(bitrate: Any) -> int:
    """Validate an MPEG Layer III bitrate in kbps (any sample rate) and return it as an int."""
    br = check_int(bitrate, "bitrate")
    if br not in _ALL_BITRATES:
        raise ValueError(f"bitrate must be an MPEG Layer III bitrate in kbps, one of {list(_ALL_BITRATES)}; got {br}")
    return br


def default_workers() -> int:
    """Threads used by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------------------
# sample-rate policy
# --------------------------------------------------------------------------------------
def _lameenc():
    return require("lameenc", purpose="MP3 encoding")


@lru_cache(maxsize=None)
def _lame_choice(sample_rate: int, bitrate: int) -> tuple[int, int]:
    """(MPEG rate, kbps) that LAME itself writes for ``lame -b bitrate`` on ``sample_rate`` input."""
    lameenc = _lameenc()
    enc = lameenc.Encoder()
    enc.set_bit_rate(bitrate)
    enc.set_in_sample_rate(sample_rate)
    enc.set_channels(1)
    enc.set_quality(3)
    data = bytes(enc.encode(np.zeros(1152, np.int16).tobytes())) + bytes(enc.flush())
    header = _parse_header(data, 0)
    if header is None:  # pragma: no cover - LAME always writes frames
        raise RuntimeError(f"LAME wrote no MP3 frame for {sample_rate} Hz at {bitrate} kbps")
    return header[1], header[2]


@lru_cache(maxsize=None)
def _codec_rate(sr: int, br: int) -> int | None:
    rate, written = _lame_choice(sr, br)
    if written == br:
        return rate
    for rate in MPEG_SAMPLE_RATES:
        if rate > sr and br in LAME_BITRATES[rate]:
            return rate
    return None


def codec_sample_rate(sample_rate: int, bitrate: int) -> int:
    """The MPEG sample rate a clip at ``sample_rate`` is coded at for ``bitrate`` kbps.

    LAME's own choice (what ``lame -b bitrate`` does) where it carries the
    bitrate, else the lowest MPEG rate above ``sample_rate`` that does.

    Parameters
    ----------
    sample_rate : int
        Sample rate of the input in Hz (4000..192000).
    bitrate : int
        Constant bitrate in kbps.

    Returns
    -------
    int
        One of :data:`MPEG_SAMPLE_RATES`.

    Raises
    ------
    ValueError
        If no MPEG rate LAME can reach from ``sample_rate`` carries ``bitrate``.

    Examples
    --------
    >>> codec_sample_rate(8000, 32), codec_sample_rate(8000, 128), codec_sample_rate(44100, 32)
    (8000, 16000, 22050)
    """
    sr = _check_rate(sample_rate)
    br = check_bitrate(bitrate)
    rate = _codec_rate(sr, br)
    if rate is not None:
        return rate
    written = _lame_choice(sr, br)[1]
    raise ValueError(
        f"bitrate {br} kbps is not available for {sr} Hz input: LAME writes {written} kbps and no higher MPEG rate "
        f"carries {br} kbps; supported bitrates at {sr} Hz: {list(supported_bitrates(sr))}"
    )


def supported_bitrates(sample_rate: int) -> tuple[int, ...]:
    """The constant bitrates (kbps) :func:`mp3_roundtrip` accepts for input at ``sample_rate``.

    Examples
    --------
    >>> supported_bitrates(8000)[:4], supported_bitrates(8000)[-1]
    ((8, 16, 24, 32), 320)
    """
    sr = _check_rate(sample_rate)
    return tuple(br for br in _ALL_BITRATES if _codec_rate(sr, br) is not None)


# --------------------------------------------------------------------------------------
# MP3 frames
# --------------------------------------------------------------------------------------
def _parse_header(data: bytes, pos: int) -> tuple[int, int, int, int] | None:
    """(frame bytes, sample rate, kbps, samples per frame) of a Layer III header at ``pos``, else None."""
    if pos + 4 > len(data):
        return None
    h = int.from_bytes(data[pos : pos + 4], "big")
    if (h >> 21) & 0x7FF != 0x7FF:
        return None
    version, layer, bri, sri, pad = (h >> 19) & 3, (h >> 17) & 3, (h >> 12) & 15, (h >> 10) & 3, (h >> 9) & 1
    if version == 1 or layer != 1 or bri in (0, 15) or sri == 3:  # reserved, not Layer III, free/bad, reserved
        return None
    rate = _SR_BY_VERSION[version][sri]
    if version == 3:
        kbps = _BR_MPEG1[bri]
        return 144000 * kbps // rate + pad, rate, kbps, 1152
    kbps = _BR_MPEG2[bri]
    return 72000 * kbps // rate + pad, rate, kbps, 576


def _is_info_frame(data: bytes, pos: int, size: int) -> bool:
    """Whether the frame at ``pos`` is a Xing/LAME/VBRI information frame (no audio)."""
    h = int.from_bytes(data[pos : pos + 4], "big")
    version, crc_absent, mono = (h >> 19) & 3, (h >> 16) & 1, ((h >> 6) & 3) == 3
    side = (17 if mono else 32) if version == 3 else (9 if mono else 17)
    off = pos + 4 + (0 if crc_absent else 2) + side
    return data[off : off + 4] in (b"Xing", b"Info") or data[pos + 36 : pos + 40] == b"VBRI"


def mp3_frame_sizes(data: bytes, *, include_info_frame: bool = False) -> np.ndarray:
    """Sizes in bytes of the MP3 (Layer III) frames in ``data``, in order.

    Parameters
    ----------
    data : bytes
        An MP3 stream. A leading ID3v2 tag and a trailing ID3v1 tag are skipped.
    include_info_frame : bool, optional
        Count a leading Xing/LAME "Info" frame too (it holds no audio). Default
        False.

    Returns
    -------
    ndarray
        int64, one entry per frame.

    Raises
    ------
    ValueError
        If the stream holds bytes that are not MP3 frames.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes; got {type(data).__name__}")
    data = bytes(data)
    pos, end = 0, len(data)
    if data[:3] == b"ID3" and end >= 10:
        pos = 10 + ((data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | (data[9] & 0x7F))
    if end - pos >= 128 and data[end - 128 : end - 125] == b"TAG":
        end -= 128
    sizes = []
    first = True
    while pos < end:
        header = _parse_header(data, pos)
        if header is None or pos + header[0] > end:
            raise ValueError(f"data is not a clean MP3 stream: no Layer III frame at byte {pos} of {end}")
        size = header[0]
        if not (first and not include_info_frame and _is_info_frame(data, pos, size)):
            sizes.append(size)
        first = False
        pos += size
    return np.asarray(sizes, dtype=np.int64)


def mp3_bits(data: bytes, *, include_info_frame: bool = False) -> int:
    """Exact size in bits of the MP3 frames in ``data`` (see :func:`mp3_frame_sizes`)."""
    return int(mp3_frame_sizes(data, include_info_frame=include_info_frame).sum()) * 8


# --------------------------------------------------------------------------------------
# one clip
# --------------------------------------------------------------------------------------
def resample(x: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample a 1-D float signal with :func:`scipy.signal.resample_poly` (zero phase).

    The output has ``ceil(len(x) * new_rate / orig_rate)`` samples.
    """
    orig_rate, new_rate = check_int(orig_rate, "orig_rate"), check_int(new_rate, "new_rate")
    if orig_rate == new_rate:
        return np.asarray(x, dtype=np.float64)
    resample_poly = require("scipy.signal", purpose="resampling audio").resample_poly

    g = math.gcd(orig_rate, new_rate)
    return resample_poly(np.asarray(x, dtype=np.float64), new_rate // g, orig_rate // g)


def to_int16(x: np.ndarray) -> np.ndarray:
    """Round and clip float samples to int16."""
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def mp3_encode(x: np.ndarray, sample_rate: int, bitrate: int, *, quality: int = 3) -> bytes:
    """Encode one mono int16 clip at an MPEG rate with LAME (no resampling).

    Parameters
    ----------
    x : ndarray
        1-D int16 samples.
    sample_rate : int
        One of :data:`MPEG_SAMPLE_RATES`.
    bitrate : int
        A bitrate in ``LAME_BITRATES[sample_rate]``.
    quality : int, optional
        LAME's ``-q`` (0 best .. 9 fastest); 3 is LAME's default.

    Returns
    -------
    bytes
        The MP3 frames (no ID3 tag, no Info frame).
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.int16 or x.ndim != 1:
        raise TypeError(f"x must be a 1-D int16 ndarray; got {getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
    sr, br, q = check_int(sample_rate, "sample_rate"), check_bitrate(bitrate), check_int(quality, "quality")
    if sr not in LAME_BITRATES:
        raise ValueError(f"sample_rate must be an MPEG rate {list(MPEG_SAMPLE_RATES)}; got {sr} (mp3_roundtrip resamples)")
    if br not in LAME_BITRATES[sr]:
        raise ValueError(f"bitrate at {sr} Hz must be one of {list(LAME_BITRATES[sr])} kbps; got {br}")
    if not 0 <= q <= 9:
        raise ValueError(f"quality must be in 0..9; got {q}")
    enc = _lameenc().Encoder()
    enc.set_bit_rate(br)
    enc.set_in_sample_rate(sr)
    enc.set_out_sample_rate(sr)
    enc.set_channels(1)
    enc.set_quality(q)
    return bytes(enc.encode(np.ascontiguousarray(x).tobytes())) + bytes(enc.flush())


def mp3_decode(data: bytes) -> tuple[np.ndarray, int]:
    """Decode an MP3 stream with dr_mp3 (miniaudio); returns (int16 samples, sample rate), codec delay kept.

    Multi-channel streams are returned interleaved as dr_mp3 gives them.
    """
    miniaudio = require("miniaudio", purpose="MP3 decoding")
    decoded = miniaudio.mp3_read_s16(bytes(data))
    return np.frombuffer(decoded.samples, dtype=np.int16).copy(), int(decoded.sample_rate)


def _roundtrip_clip(x: np.ndarray, sr: int, br: int, rate: int, quality: int) -> tuple[np.ndarray, int]:
    """One clip (float64 in int16 scale) -> (float64 decoded, aligned, same length; bits)."""
    n = x.shape[0]
    z = resample(x, sr, rate) if rate != sr else x
    m = z.shape[0]
    data = mp3_encode(to_int16(z), rate, br, quality=quality)
    bits = mp3_bits(data)
    y, got_rate = mp3_decode(data)
    if got_rate != rate:  # pragma: no cover - would be a decoder bug
        raise RuntimeError(f"decoder returned {got_rate} Hz for a {rate} Hz stream")
    y = y[CODEC_DELAY : CODEC_DELAY + m].astype(np.float64)
    if y.shape[0] < m:  # never seen: LAME flushes enough frames; keep the length regardless
        y = np.pad(y, (0, m - y.shape[0]))
    if rate != sr:
        y = resample(y, rate, sr)[:n]
    return y, bits


# --------------------------------------------------------------------------------------
# batches
# --------------------------------------------------------------------------------------
_FLOATS = (np.float32, np.float64)


def _clips(x: Any, name: str = "x") -> tuple[list[np.ndarray], Any, str]:
    """Validate waveforms: returns (1-D arrays, rebuild(list of float64 int16-scale) -> caller's kind, dtype name)."""
    torch_in = type(x).__module__.startswith("torch")
    if torch_in:
        import torch

        tdtype, tdevice = x.dtype, x.device
        if tdtype not in (torch.int16, torch.float32, torch.float64):
            raise TypeError(f"{name} must be int16 PCM or float32/float64 in [-1, 1]; got dtype {tdtype}")
        arr = x.detach().cpu().numpy()  # the codec runs on the CPU; results go back to the tensor's device

        def back(a: np.ndarray) -> Any:
            return torch.from_numpy(a).to(device=tdevice, dtype=tdtype)

    elif isinstance(x, np.ndarray):
        arr = x
        back = None
    elif isinstance(x, (list, tuple)):
        if len(x) == 0:
            raise ValueError(f"{name} is an empty list; pass at least one waveform")
        parts = [_clips(c, f"{name}[{i}]") for i, c in enumerate(x)]
        for i, (p, _, _) in enumerate(parts):
            if len(p) != 1 or np.ndim(x[i]) != 1:
                raise ValueError(f"{name}[{i}] must be a 1-D waveform; got shape {tuple(np.shape(x[i]))}")
        dtypes = {d for _, _, d in parts}
        if len(dtypes) != 1:
            raise TypeError(f"{name} mixes dtypes {sorted(dtypes)}; pass waveforms of one dtype")
        rebuilds = [r for _, r, _ in parts]
        clips = [p[0] for p, _, _ in parts]

        def back_list(ys: list[np.ndarray]) -> list:
            return [r([y]) for r, y in zip(rebuilds, ys)]

        return clips, back_list, dtypes.pop()
    else:
        raise TypeError(f"{name} must be a NumPy array, a torch tensor or a list of 1-D waveforms; got {type(x).__name__}")

    if arr.dtype != np.int16 and arr.dtype not in _FLOATS:
        raise TypeError(f"{name} must be int16 PCM or float32/float64 in [-1, 1]; got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be a waveform (T,) or a batch of mono waveforms (N, T); got {arr.ndim} dimensions {arr.shape}")
    if arr.size == 0 or arr.shape[-1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); pass at least one sample per waveform")
    if arr.dtype in _FLOATS and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite samples")
    dtype, shape, ndim = arr.dtype, arr.shape, arr.ndim
    scale = 32768.0 if dtype in _FLOATS else 1.0
    rows = arr.reshape(-1, shape[-1])
    clips = [rows[i].astype(np.float64) * scale for i in range(rows.shape[0])]

    def rebuild(ys: list[np.ndarray]) -> Any:
        out = np.stack(ys) if ndim == 2 else ys[0]
        out = to_int16(out) if dtype == np.int16 else (out / scale).astype(dtype)
        return back(out) if back else out

    return clips, rebuild, str(dtype)


@dataclass
class MP3Result:
    """What :func:`mp3_roundtrip` returns.

    Attributes
    ----------
    audio : ndarray, tensor or list
        The decoded waveforms, aligned with and shaped like the input, in its
        dtype (int16 stays int16; floats stay floats in [-1, 1]).
    bits : ndarray
        int64 ``(N,)``: exact bits of the MP3 frames of each clip.
    seconds : ndarray
        float64 ``(N,)``: duration of each input clip.
    sample_rate, bitrate, codec_rate : int
        Input rate (Hz), bitrate (kbps) and the MPEG rate the clips were coded at.
    """

    audio: Any
    bits: np.ndarray
    seconds: np.ndarray
    sample_rate: int
    bitrate: int
    codec_rate: int
    extra: dict = field(default_factory=dict)

    @property
    def total_bits(self) -> int:
        """Bits of all clips."""
        return int(self.bits.sum())

    @property
    def bits_per_second(self) -> float:
        """Exact MP3 bits of all clips divided by their total duration in seconds."""
        return float(self.bits.sum() / self.seconds.sum())


def mp3_roundtrip(
    x: Any,
    sample_rate: int,
    bitrate: int,
    *,
    quality: int = 3,
    codec_rate: int | None = None,
    workers: int | None = None,
) -> MP3Result:
    """Compress waveforms to MP3 with LAME at a constant bitrate and decode them, aligned.

    Parameters
    ----------
    x : ndarray, torch tensor or list of 1-D arrays
        Mono waveforms: ``(T,)``, a batch ``(N, T)``, or a list of clips of
        different lengths. int16 PCM, or float32/float64 in [-1, 1] (scaled by
        32768 and rounded to 16 bits before encoding). torch tensors are accepted
        and returned as tensors on their device (the codec itself runs on the CPU).
    sample_rate : int
        Sample rate of ``x`` in Hz (4000..192000).
    bitrate : int
        Constant bitrate in kbps, one of :func:`supported_bitrates` for the rate
        (8, 16, 32, 64, 96, 128 work at every rate up to 24 kHz).
    quality : int, optional
        LAME's ``-q``; 3 (LAME's default, as ``lame -b N``) unless told.
    codec_rate : int, optional
        Force the MPEG sample rate instead of :func:`codec_sample_rate`.
    workers : int, optional
        Threads; default :func:`default_workers`. 1 runs in the calling thread.

    Returns
    -------
    MP3Result
        ``audio`` (same shape, dtype and kind as ``x``, sample-aligned),
        ``bits`` per clip, ``seconds`` per clip, and the rates used.

    Raises
    ------
    TypeError
        ``x`` is not int16/float32/float64, or an argument is not an integer.
    ValueError
        Wrong rank or empty input, NaNs, an unsupported sample rate, or a
        bitrate LAME does not write at any reachable MPEG rate.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(8000) / 8000
    >>> x = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    >>> r = mp3_roundtrip(x, 8000, 32)
    >>> r.audio.shape, r.audio.dtype, r.codec_rate, int(r.bits[0]) // 8
    ((8000,), dtype('int16'), 8000, 4608)
    """
    sr = _check_rate(sample_rate)
    br = check_bitrate(bitrate)
    q = check_int(quality, "quality")
    if not 0 <= q <= 9:
        raise ValueError(f"quality must be in 0..9; got {q}")
    if codec_rate is None:
        rate = codec_sample_rate(sr, br)
    else:
        rate = check_int(codec_rate, "codec_rate")
        if rate not in LAME_BITRATES:
            raise ValueError(f"codec_rate must be an MPEG rate {list(MPEG_SAMPLE_RATES)}; got {rate}")
        if br not in LAME_BITRATES[rate]:
            raise ValueError(f"bitrate at codec_rate {rate} Hz must be one of {list(LAME_BITRATES[rate])} kbps; got {br}")
    clips, rebuild, _ = _clips(x)
    nw = default_workers() if workers is None else check_int(workers, "workers")
    if nw < 1:
        raise ValueError(f"workers must be >= 1; got {nw}")

    def run(i: int) -> tuple[np.ndarray, int]:
        return _roundtrip_clip(clips[i], sr, br, rate, q)

    if nw == 1 or len(clips) == 1:
        results = [run(i) for i in range(len(clips))]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(nw, len(clips))) as pool:
            results = list(pool.map(run, range(len(clips))))
    ys = [r[0] for r in results]
    bits = np.array([r[1] for r in results], dtype=np.int64)
    seconds = np.array([c.shape[0] / sr for c in clips], dtype=np.float64)
    return MP3Result(rebuild(ys), bits, seconds, sr, br, rate)
