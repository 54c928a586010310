"""A differentiable model of JPEG, the gradient of ``JPEG(grad="smooth")``.

:func:`jpeg_surrogate` runs the lossy path of baseline JPEG as Pillow
(libjpeg-turbo) does, in floating point and with every step differentiable:

1. pixels ``x * 255``; RGB -> YCbCr (JFIF, ITU-R BT.601 full range);
2. edges replicated to whole MCUs; chroma averaged over 2x2 (4:2:0) or 2x1
   (4:2:2) pixels, as libjpeg's downsampler;
3. per 8x8 block: level shift, orthonormal DCT-II (JPEG's DCT), division by
   the quality's quantisation table, rounding, multiplication by the table,
   inverse DCT;
4. chroma upsampled with the triangle filter of libjpeg's "fancy"
   upsampling (bilinear, weights 3/4 and 1/4), YCbCr -> RGB, clamped to
   [0, 255], divided by 255.

With ``rounding="cubic"`` (the default) step 3 rounds with
``r(u) = round(u) + (u - round(u)) ** 3`` (Shin & Song, "JPEG-resistant
adversarial images", 2017), whose derivative ``3 (u - round(u)) ** 2`` is
zero at the integers and continuous between the half-integers, unlike
``round``'s, which is zero everywhere. With ``rounding="hard"`` it is
``torch.round``: then the model's pixels differ from Pillow's by 0.6 to 2.5
levels of 255 on average (measured on noisy 32x32 images at qualities 10 to
90; libjpeg computes in fixed point, so quantiser decisions near half a step
differ), which is how the tests check the model.

The transform never returns the surrogate's pixels: ``JPEG(grad="smooth")``
returns Pillow's exact pixels and takes only the gradient from here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._codec.container import tables_for

__all__ = ["jpeg_surrogate", "soft_round", "ROUNDINGS"]

ROUNDINGS = ("cubic", "hard")

_FACTORS = {"4:4:4": (1, 1), "4:2:2": (1, 2), "4:2:0": (2, 2)}  # (vertical, horizontal) chroma step

# JFIF colour conversion (jccolor.c / jdcolor.c in floating point)
_RGB_TO_YCC = [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
_YCC_TO_RGB = [[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]]

# float64 (101, 2, 8, 8): the luma and chroma tables of qualities 1..100 (row 0, "unchanged", unused).
# Built on import, with NumPy only, so that torch.compile sees a constant.
_TABLES = np.concatenate([np.ones((1, 2, 8, 8)), tables_for(np.arange(1, 101)).astype(np.float64)])


def _dct_matrix(torch, dtype, device):
    k = np.arange(8)
    d = np.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / 16) * np.where(k == 0, np.sqrt(1 / 8), np.sqrt(2 / 8))[:, None]
    return torch.tensor(d, dtype=dtype, device=device)


def soft_round(u: Any) -> Any:
    """``round(u) + (u - round(u)) ** 3``: rounding with a nonzero, continuous-between-half-integers gradient."""
    import torch

    r = torch.round(u).detach()
    return r + (u - r) ** 3


def _blocks_round_trip(plane, steps, rounding, dct):
    """(N, H, W) plane with H, W multiples of 8 and (N, 8, 8) steps -> the quantised-dequantised plane."""
    n, h, w = plane.shape
    blocks = (plane - 128).reshape(n, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
    coef = dct @ blocks @ dct.T
    steps = steps[:, None, None]
    scaled = coef / steps
    quantised = soft_round(scaled) if rounding == "cubic" else scaled.round()
    pixels = dct.T @ (quantised * steps) @ dct + 128
    return pixels.permute(0, 1, 3, 2, 4).reshape(n, h, w)


def jpeg_surrogate(x: Any, quality: Any, *, subsampling: str = "4:2:0", rounding: str = "cubic") -> Any:
    """A differentiable approximation of the JPEG round trip (see the module docstring).

    Parameters
    ----------
    x : torch.Tensor
        Floating point ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1], C in (1, 3).
    quality : int, sequence of int or tensor
        1..100 for all images or one per image; 0 leaves an image unchanged
        (the identity, as the transform does for an image its ``p`` skipped).
    subsampling : {"4:2:0", "4:2:2", "4:4:4"}
    rounding : {"cubic", "hard"}
        The quantiser's rounding: the cubic approximation (differentiable) or
        ``torch.round`` (for checking the model against the codec).

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``x``, differentiable in ``x``.
    """
    import torch  # a plain import: torch.compile traces this function (and x is a tensor already)
    import torch.nn.functional as F

    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
        raise TypeError(f"x must be a floating-point tensor in [0, 1]; got {getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim not in (3, 4) or x.shape[-3] not in (1, 3):
        raise ValueError(f"x must have shape (C, H, W) or (N, C, H, W) with C in (1, 3); got {tuple(x.shape)}")
    if subsampling not in _FACTORS:
        raise ValueError(f"subsampling must be one of {', '.join(map(repr, _FACTORS))}; got {subsampling!r}")
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be 'cubic' or 'hard'; got {rounding!r}")
    single = x.ndim == 3
    batch = x[None] if single else x
    n, c, h, w = batch.shape
    q = torch.as_tensor(quality).to(device=batch.device, dtype=torch.int64).reshape(-1)
    if q.numel() == 1:
        q = q.expand(n)
    if q.shape != (n,):
        raise ValueError(f"quality must hold one value or one per image ({n}); got shape {tuple(q.shape)}")
    if not torch.compiler.is_compiling() and q.device.type == "cpu" and bool(((q < 0) | (q > 100)).any()):
        raise ValueError(f"quality must be in 1..100 (0 leaves an image unchanged); got {q.tolist()}")
    work = torch.float64 if batch.dtype == torch.float64 else torch.float32
    tables = torch.as_tensor(_TABLES, dtype=work, device=batch.device)[q]  # (N, 2, 8, 8)
    dct = _dct_matrix(torch, work, batch.device)
    v = batch.to(work) * 255
    fv, fh = _FACTORS[subsampling] if c == 3 else (1, 1)
    mh, mw = 8 * fv, 8 * fh
    padded = F.pad(v, (0, -w % mw, 0, -h % mh), mode="replicate")
    if c == 1:
        out = _blocks_round_trip(padded[:, 0], tables[:, 0], rounding, dct)[:, None]
    else:
        ycc = torch.einsum("ij,njhw->nihw", torch.tensor(_RGB_TO_YCC, dtype=work, device=batch.device), padded)
        luma = _blocks_round_trip(ycc[:, 0], tables[:, 0], rounding, dct)
        chroma = F.avg_pool2d(ycc[:, 1:] + 128, (fv, fh)) if (fv, fh) != (1, 1) else ycc[:, 1:] + 128
        ph, pw = chroma.shape[-2:]
        chroma = _blocks_round_trip(chroma.reshape(n * 2, ph, pw), tables[:, 1].repeat_interleave(2, 0), rounding, dct)
        chroma = chroma.reshape(n, 2, ph, pw)
        if (fv, fh) != (1, 1):
            chroma = F.interpolate(chroma, scale_factor=(fv, fh), mode="bilinear", align_corners=False)
        ycc = torch.cat([luma[:, None], chroma - 128], 1)
        out = torch.einsum("ij,njhw->nihw", torch.tensor(_YCC_TO_RGB, dtype=work, device=batch.device), ycc)
    out = (out[..., :h, :w].clamp(0, 255) / 255).to(batch.dtype)
    out = torch.where((q == 0)[:, None, None, None], batch, out)
    return out[0] if single else out
