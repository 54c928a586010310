"""Decoding one image file to uint8 pixels, and bringing it to one size: the rules every image source keeps.

Pixels
    * The file's content decides its format, never its name: a PNG named
      ``.JPEG`` (ILSVRC-2012 holds one) is read as the PNG it is.
    * ``mode="RGB"`` (every photo data set, and :func:`helmholtz.data.open`'s
      default for folders): every 8-bit mode becomes RGB through Pillow's
      ``convert("RGB")``. Grayscale (``1``, ``L``, ``LA``) is replicated into
      R = G = B; a palette is looked up; an alpha channel is dropped, never
      composited; CMYK (ILSVRC-2012 holds 22 CMYK JPEGs) becomes
      ``R = 255 - min(255, C + K)`` and likewise for G (M) and B (Y), after
      libjpeg's own inversion of Adobe CMYK files.
    * ``mode=None`` (the in-memory folder loader): 8-bit grayscale stays one
      channel, every other 8-bit mode becomes RGB as above.
    * 16-bit samples keep their high byte (``v >> 8``); 32-bit integer and
      float images are refused (no rule maps them to 8 bits without guessing
      their range).
    * An image over ``HELMHOLTZ_MAX_IMAGE_PIXELS`` pixels is refused before it
      is decoded, and so is one Pillow's decompression-bomb guard refuses.

Size (``size=(H, W)`` with ``fit``)
    ``"crop"`` (the default)
        Scale by ``s = max(H / h, W / w)`` so the shorter side fits, then
        take the centre ``H x W``: one bicubic resample of the centred box
        ``(w - W / s) / 2 .. (w + W / s) / 2`` (and likewise vertically) of
        the source. Nothing is stretched.
    ``"pad"``
        Scale by ``s = min(H / h, W / w)`` so the longer side fits (bicubic,
        each side ``max(1, round(side * s))``), then centre it on black
        (zero) borders, the offset ``(H - h') // 2``, ``(W - w') // 2``.
    ``"stretch"``
        Bicubic resample to exactly ``H x W``: the aspect ratio is not kept.
        It is never the default.

    A JPEG brought to a size is decoded at the smallest of libjpeg-turbo's
    DCT scales (1/2, 1/4, 1/8) that is still at least as large as the scaled
    image, as ``Image.thumbnail`` does; this is several times faster than a
    full decode and changes the pixels of the result only as much as a
    different resampling filter would. The decoder is simplejpeg (libjpeg-
    turbo, accurate integer IDCT, fancy upsampling) where it is installed
    (it is part of the ``data`` extra), else Pillow's ``draft`` mode; CMYK and
    YCCK JPEGs always go through Pillow, for its CMYK rule. :func:`decoder`
    names the one in use, and ``helmholtz prepare`` records it in its
    manifest. ``exact=True`` decodes at full size with Pillow first.
"""

from __future__ import annotations

import io
import math
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .._extras import require
from ..errors import DataError
from .safety import MAX_IMAGE_PIXELS_ENV, max_image_pixels

__all__ = ["FITS", "MODES", "decoder", "decode_image", "fit_array", "check_size", "check_fit", "parse_size", "image_size_of", "IMAGE_ERRORS"]

#: How ``size=(H, W)`` is reached (see the module docstring); ``"crop"`` is the default.
FITS = ("crop", "pad", "stretch")
#: What an image is converted to: ``"RGB"``, ``"L"`` (grayscale), or None (grayscale stays grayscale).
MODES = ("RGB", "L", None)

_GRAY_MODES = ("1", "L", "LA", "La")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
# Pillow's errors for unreadable images: UnidentifiedImageError and "truncated" are OSErrors, a
# broken PNG chunk is a SyntaxError; the rest come from damaged headers and unsupported features.
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, TypeError, IndexError, KeyError, struct.error, zlib.error, NotImplementedError)


def check_fit(fit: Any) -> str:
    """``fit`` if it is one of :data:`FITS`, else a ValueError naming it."""
    if fit not in FITS:
        hint = " ('resize' is now called 'stretch')" if fit == "resize" else ""
        raise ValueError(f"fit must be one of {', '.join(FITS)}; got {fit!r}{hint}")
    return fit


def check_size(size: Any, name: str = "size") -> tuple[int, int] | None:
    """``size`` as ``(H, W)`` ints (or None), each >= 1, whose pixels are within the per-image limit.

    Raises
    ------
    TypeError
        Not a pair of ints (a bool is not an int).
    ValueError
        A side < 1, or ``H * W`` over ``HELMHOLTZ_MAX_IMAGE_PIXELS`` (no image
        of that size could be held, so it is refused before any work).
    """
    if size is None:
        return None
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in size)
    ):
        raise TypeError(f"{name} must be a pair of ints (H, W) or None; got {size!r}")
    h, w = int(size[0]), int(size[1])
    if min(h, w) < 1:
        raise ValueError(f"{name} must be positive (H, W); got {(h, w)}")
    limit = max_image_pixels()
    if h * w > limit:
        raise ValueError(f"{name} {h}x{w} is {h * w:,} pixels per image, over the limit of {limit:,} ({MAX_IMAGE_PIXELS_ENV})")
    return h, w


def _rawmode(im: Any) -> str:
    if not im.tile:
        return ""
    args = im.tile[0].args if hasattr(im.tile[0], "args") else im.tile[0][3]
    return args if isinstance(args, str) else str(args[0]) if args else ""


def _check_mode(im: Any, where: str) -> None:
    mode = im.mode
    if mode in _SIXTEEN_BIT_MODES or (mode == "I" and _rawmode(im).startswith("I;16")):
        return
    if mode in ("I", "F") or mode.startswith(("I;", "F;")):
        raise DataError(
            f"{where} is a {mode} image (32-bit integer or float samples); "
            "expected 8- or 16-bit samples: convert it to an 8- or 16-bit image first"
        )


def _to_uint8(im: Any, mode: str | None) -> np.ndarray:
    """The loaded image as uint8 ``(H, W)`` or ``(H, W, 3)`` by the module's rules."""
    if im.mode in _SIXTEEN_BIT_MODES or im.mode == "I":
        gray = (np.asarray(im).astype(np.uint16) >> 8).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2) if mode == "RGB" else gray
    if mode == "L":
        return np.asarray(im.convert("L"))
    if mode is None and im.mode in _GRAY_MODES:
        return np.asarray(im.convert("L"))
    return np.asarray(im.convert("RGB"))


def _check_pixels(width: int, height: int, where: str) -> None:
    limit = max_image_pixels()
    if width * height > limit:
        raise DataError(
            f"{where} is {width}x{height} = {width * height:,} pixels, over the limit of {limit:,} "
            f"(a decompression bomb, or set {MAX_IMAGE_PIXELS_ENV} higher if the image is genuine)"
        )


def _simplejpeg() -> Any:
    try:
        import simplejpeg
    except ImportError:
        return None
    return simplejpeg


def decoder() -> str:
    """The library that decodes JPEGs brought to a size: ``"simplejpeg X"`` where installed, else ``"pillow X"``."""
    sj = _simplejpeg()
    if sj is not None:
        return f"simplejpeg {getattr(sj, '__version__', '?')}"
    import PIL

    return f"pillow {PIL.__version__}"


def _scaled_jpeg(data: bytes, size: tuple[int, int], fit: str, mode: str | None, where: str) -> np.ndarray | None:
    """A JPEG decoded at a DCT scale by simplejpeg and fitted; None when simplejpeg is absent or the file needs Pillow."""
    sj = _simplejpeg()
    if sj is None or data[:3] != b"\xff\xd8\xff":
        return None
    try:
        height, width, colorspace, _ = sj.decode_jpeg_header(data)
    except ValueError:
        return None  # let Pillow read it and report what is wrong
    if colorspace not in ("RGB", "YCbCr", "Gray", "GRAY"):
        return None
    _check_pixels(width, height, where)
    gray = colorspace in ("Gray", "GRAY")
    out_gray = mode == "L" or (mode is None and gray)
    rw, rh = _draft_request(width, height, size, fit)
    try:
        arr = sj.decode_jpeg(data, colorspace="GRAY" if out_gray else "RGB", min_width=rw, min_height=rh)
    except ValueError as exc:
        raise DataError(f"{where} is not a readable image, or it is truncated (ValueError: {exc})") from exc
    from PIL import Image

    im = Image.fromarray(arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
    return np.asarray(_fit_image(im, size, fit))


def _draft_request(w: int, h: int, size: tuple[int, int], fit: str) -> tuple[int, int]:
    th, tw = size
    if fit == "crop":
        s = max(th / h, tw / w)
    elif fit == "pad":
        s = min(th / h, tw / w)
    else:
        return tw, th
    return max(1, math.ceil(w * s)), max(1, math.ceil(h * s))


def _fit_image(im: Any, size: tuple[int, int], fit: str) -> Any:
    """A PIL image brought to ``size`` by ``fit`` (bicubic)."""
    from PIL import Image

    th, tw = size
    w, h = im.size
    if (h, w) == (th, tw):
        return im
    bicubic = Image.Resampling.BICUBIC
    if fit == "stretch":
        return im.resize((tw, th), bicubic)
    if fit == "crop":
        s = max(th / h, tw / w)
        bw, bh = min(w, tw / s), min(h, th / s)
        left, top = max(0.0, (w - bw) / 2), max(0.0, (h - bh) / 2)
        return im.resize((tw, th), bicubic, box=(left, top, left + bw, top + bh))
    s = min(th / h, tw / w)
    nw, nh = min(tw, max(1, round(w * s))), min(th, max(1, round(h * s)))
    inner = im if (nw, nh) == (w, h) else im.resize((nw, nh), bicubic)
    canvas = Image.new(inner.mode, (tw, th))
    canvas.paste(inner, ((tw - nw) // 2, (th - nh) // 2))
    return canvas


def fit_array(arr: np.ndarray, size: tuple[int, int], fit: str = "crop") -> np.ndarray:
    """A uint8 ``(h, w)`` or ``(h, w, C)`` array brought to ``size`` by ``fit`` (the same rules as files)."""
    if arr.shape[:2] == tuple(size):
        return arr
    Image = require("PIL.Image", purpose="resizing images")
    squeeze = arr.ndim == 3 and arr.shape[2] == 1
    im = Image.fromarray(arr[..., 0] if squeeze else arr)
    out = np.asarray(_fit_image(im, size, fit))
    return out[..., None] if squeeze else out


def decode_image(
    source: str | os.PathLike | bytes,
    *,
    size: tuple[int, int] | None = None,
    fit: str = "crop",
    mode: str | None = "RGB",
    where: str | None = None,
    exact: bool = False,
) -> np.ndarray:
    """One encoded image (a path or its bytes) as uint8 pixels, by the rules of this module.

    Parameters
    ----------
    source : path or bytes
    size : (int, int), optional
        ``(H, W)`` to bring it to (see ``fit``); default its own size.
    fit : {"crop", "pad", "stretch"}
    mode : {"RGB", "L", None}
        ``"RGB"``: ``(H, W, 3)`` always; ``"L"``: ``(H, W)`` grayscale;
        None: ``(H, W)`` for grayscale files, ``(H, W, 3)`` for the rest.
    where : str, optional
        What the image is, for messages (default the path).
    exact : bool
        Decode a JPEG at full size before resizing (no DCT-domain scaling).

    Raises
    ------
    DataError
        Naming the image: unreadable, corrupt or truncated, a refused mode,
        or over the pixel limit.
    """
    Image = require("PIL.Image", purpose="decoding images")
    if where is None:
        where = repr(str(source)) if not isinstance(source, (bytes, bytearray, memoryview)) else "an image"
    if size is not None and not exact and _simplejpeg() is not None:
        try:
            data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).read_bytes()
        except OSError as exc:
            raise DataError(f"{where} cannot be read ({exc.strerror or exc})") from exc
        arr = _scaled_jpeg(data, size, fit, mode, where)
        if arr is not None:
            return np.repeat(arr[..., None], 3, axis=2) if (mode == "RGB" and arr.ndim == 2) else arr
        source = data
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source)
    try:
        with warnings.catch_warnings():
            # our own limit was checked first; Pillow's warning between 1x and 2x its limit adds nothing
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fp) as im:
                width, height = im.size
                _check_pixels(width, height, where)
                _check_mode(im, where)
                if size is not None and not exact and im.format == "JPEG":
                    im.draft(im.mode, _draft_request(width, height, size, fit))
                im.load()
                if size is not None:
                    if im.mode in ("1", "P", "LA", "La", "PA", "RGBA", "RGBa", "CMYK", "YCbCr", "LAB", "HSV"):
                        im = im.convert("L" if (mode == "L" or (mode is None and im.mode in _GRAY_MODES)) else "RGB")
                    elif im.mode in _SIXTEEN_BIT_MODES or im.mode == "I":
                        im = Image.fromarray(_to_uint8(im, None))
                    im = _fit_image(im, size, fit)
                arr = _to_uint8(im, mode)
    except DataError:
        raise
    except Image.DecompressionBombError as exc:
        raise DataError(
            f"{where} was refused by Pillow's decompression-bomb guard ({exc}); "
            f"if it is genuine raise PIL.Image.MAX_IMAGE_PIXELS and {MAX_IMAGE_PIXELS_ENV}"
        ) from exc
    except MemoryError as exc:
        raise DataError(f"{where} could not be decoded: out of memory ({width}x{height} pixels)") from exc
    except IMAGE_ERRORS as exc:
        raise DataError(f"{where} is not a readable image, or it is truncated ({type(exc).__name__}: {exc})") from exc
    if mode == "RGB" and arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return arr


def image_size_of(source: str | os.PathLike | bytes, where: str | None = None) -> tuple[int, int]:
    """``(H, W)`` from the file's header only (nothing is decoded)."""
    Image = require("PIL.Image", purpose="reading images")
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fp) as im:
                w, h = im.size
    except Image.DecompressionBombError:
        return (1 << 31, 1 << 31)
    except IMAGE_ERRORS as exc:
        raise DataError(f"{where or repr(str(source))} is not a readable image ({type(exc).__name__}: {exc})") from exc
    return h, w


def parse_size(text: Any, name: str = "size") -> tuple[int, int]:
    """``"64x48"`` -> ``(64, 48)``: height by width, each >= 1, within the per-image pixel limit.

    Raises
    ------
    TypeError
        ``text`` is not a string.
    ValueError
        Not ``HxW`` with whole numbers >= 1, or more pixels than
        ``HELMHOLTZ_MAX_IMAGE_PIXELS`` allows (checked before any number is
        used, so ``9999999999999999999x1`` is refused, not overflowed).
    """
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a string 'HxW' such as '32x32'; got {text!r}")
    parts = text.strip().lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and p.strip().isascii() for p in parts):
        raise ValueError(f"{name} must be 'HxW' with whole numbers H, W >= 1 (e.g. 32x32); got {text!r}")
    h, w = int(parts[0]), int(parts[1])
    if min(h, w) < 1:
        raise ValueError(f"{name} must be 'HxW' with H, W >= 1 (e.g. 32x32); got {text!r}")
    limit = max_image_pixels()
    if h * w > limit:
        raise ValueError(f"{name} {text!r} is {h * w:,} pixels per image, over the limit of {limit:,} ({MAX_IMAGE_PIXELS_ENV})")
    return h, w
