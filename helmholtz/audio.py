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

Mel spectrograms (:func:`mel_spectrogram`) are computed in torch (STFT and a
Slaney-style mel filterbank built like librosa's default), on the GPU when the
input is there or ``device`` says so.

Needs ``pip install 'helmholtz-ml[audio]'`` (LAME through lameenc, dr_mp3
through miniaudio, SciPy's resampler); mel spectrograms need torch.
"""

from __future__ import annotations

from ._audio.mel import mel_filterbank, mel_spectrogram
from ._audio.mp3 import (
    CODEC_DELAY,
    LAME_BITRATES,
    MPEG_SAMPLE_RATES,
    MP3Result,
    codec_sample_rate,
    default_workers,
    mp3_bits,
    mp3_decode,
    mp3_encode,
    mp3_frame_sizes,
    mp3_roundtrip,
    resample,
    supported_bitrates,
)

__all__ = [
    "CODEC_DELAY",
    "LAME_BITRATES",
    "MPEG_SAMPLE_RATES",
    "MP3Result",
    "codec_sample_rate",
    "default_workers",
    "mel_filterbank",
    "mel_spectrogram",
    "mp3_bits",
    "mp3_decode",
    "mp3_encode",
    "mp3_frame_sizes",
    "mp3_roundtrip",
    "resample",
    "supported_bitrates",
]
