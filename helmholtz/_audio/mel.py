"""Mel spectrograms in torch, as librosa computes them by default.

:func:`mel_spectrogram` runs the STFT and a Slaney-style mel filterbank
(:func:`mel_filterbank`, built like ``librosa.filters.mel``) in torch, on the
GPU when the input is there or ``device`` says so.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._extras import require
from .mp3 import check_int

__all__ = ["mel_filterbank", "mel_spectrogram"]


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's auditory toolbox mel scale (librosa's default, htk=False)."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    mels = f / f_sp
    min_log_mel = min_log_hz / f_sp
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, mels)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int = 96, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters, Slaney scale and area normalisation (as ``librosa.filters.mel`` by default).

    Returns
    -------
    ndarray
        float64 ``(n_mels, n_fft // 2 + 1)``.
    """
    sr, n_fft, n_mels = check_int(sample_rate, "sample_rate"), check_int(n_fft, "n_fft"), check_int(n_mels, "n_mels")
    if sr <= 0 or n_fft < 2 or n_mels < 1:
        raise ValueError(f"need sample_rate > 0, n_fft >= 2, n_mels >= 1; got {sr}, {n_fft}, {n_mels}")
    fmax = sr / 2.0 if fmax is None else float(fmax)
    if not 0 <= fmin < fmax <= sr / 2.0:
        raise ValueError(f"need 0 <= fmin < fmax <= sample_rate / 2; got fmin={fmin}, fmax={fmax}")
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights


def mel_spectrogram(
    x: Any,
    sample_rate: int,
    *,
    n_mels: int = 96,
    n_fft: int = 2048,
    hop_length: int = 512,
    fmin: float = 0.0,
    fmax: float | None = None,
    top_db: float | None = 80.0,
    device: Any = None,
    batch_size: int = 256,
) -> Any:
    """Mel spectrograms in dB of a batch of equal-length waveforms, computed in torch.

    The same recipe as ``librosa.power_to_db(librosa.feature.melspectrogram(y,
    sr, n_fft, hop_length, n_mels))`` with librosa's defaults: periodic Hann
    window, centred frames padded with zeros, power 2, Slaney mel filters,
    ``10 log10(max(S, 1e-10))`` and values floored at ``top_db`` below each
    clip's maximum.

    Parameters
    ----------
    x : ndarray or torch tensor
        ``(T,)`` or ``(N, T)``; int16 (scaled by 1/32768) or float.
    sample_rate : int
        Hz.
    n_mels, n_fft, hop_length : int, optional
        96 bands; 2048 and 512 are librosa's defaults (the authors' 44.1 kHz
        setting: a 2 s clip gives 96 x 173).
    fmin, fmax : float, optional
        Frequency range of the filters (default 0 .. Nyquist).
    top_db : float or None, optional
        Dynamic range kept per clip; None keeps everything.
    device : str or torch.device, optional
        Where to compute; default the tensor's device (CPU for NumPy input).
    batch_size : int, optional
        Clips per STFT call (bounds memory).

    Returns
    -------
    torch.Tensor
        float32 ``(N, n_mels, 1 + T // hop_length)`` (or without N for 1-D input) on ``device``.
    """
    torch = require("torch", purpose="mel_spectrogram")

    if isinstance(x, np.ndarray):
        if x.dtype != np.int16 and x.dtype.kind != "f":
            raise TypeError(f"x must be int16 or float; got dtype {x.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(x))
    elif isinstance(x, torch.Tensor):
        if x.dtype != torch.int16 and not x.dtype.is_floating_point:
            raise TypeError(f"x must be int16 or float; got dtype {x.dtype}")
        t = x
    else:
        raise TypeError(f"x must be a NumPy array or a torch tensor; got {type(x).__name__}")
    if t.ndim not in (1, 2) or t.shape[-1] == 0 or t.numel() == 0:
        raise ValueError(f"x must have shape (T,) or (N, T) with T > 0; got {tuple(t.shape)}")
    sr = check_int(sample_rate, "sample_rate")
    n_fft, hop = check_int(n_fft, "n_fft"), check_int(hop_length, "hop_length")
    if hop < 1:
        raise ValueError(f"hop_length must be >= 1; got {hop}")
    dev = torch.device(device) if device is not None else t.device
    scale = 1.0 / 32768.0 if t.dtype == torch.int16 else 1.0
    single = t.ndim == 1
    t2 = t.reshape(1, -1) if single else t
    fb = torch.from_numpy(mel_filterbank(sr, n_fft, n_mels, fmin, fmax)).to(dev, torch.float32)
    window = torch.hann_window(n_fft, periodic=True, device=dev, dtype=torch.float32)
    outs = []
    for start in range(0, t2.shape[0], max(1, int(batch_size))):
        chunk = t2[start : start + batch_size].to(dev).to(torch.float32) * scale
        spec = torch.stft(chunk, n_fft, hop_length=hop, window=window, center=True, pad_mode="constant", return_complex=True)
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(fb, power)
        db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
        if top_db is not None:
            peak = db.amax(dim=(1, 2), keepdim=True)
            db = torch.maximum(db, peak - float(top_db))
        outs.append(db)
    out = torch.cat(outs)
    return out[0] if single else out
