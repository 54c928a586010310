"""The JPEG transform for torch pipelines (public face: :mod:`helmholtz.transforms`).

:class:`JPEG` gives exactly the pixels of Pillow's ``save(..., "JPEG",
quality=q)`` followed by ``Image.open``, and follows torchvision's v2
conventions:

* **Inputs and outputs.** A PIL image (mode ``"L"`` or ``"RGB"``) gives a PIL
  image of the same mode; a NumPy array ``(H, W)``, ``(H, W, C)`` or
  ``(N, H, W, C)`` the same kind of array; a tensor ``(C, H, W)`` or
  ``(..., C, H, W)`` a tensor of the same shape, dtype and device
  (``tv_tensors.Image`` and ``tv_tensors.Video`` keep their type). C is 1 or 3;
  arrays and tensors are uint8, or floating point in [0, 1] (clipped and
  rounded to 8 bits first, as saving would; NaN raises ValueError).
* **Samples.** Tuples, lists, dicts and nested samples are flattened with
  ``torch.utils._pytree``, as v2 flattens them, and rebuilt. Which leaves are
  images (the same rules with or without torchvision):

  1. PIL images, ``tv_tensors.Image`` and ``tv_tensors.Video`` are images.
  2. If the sample holds none of those, the first plain tensor or NumPy array
     in depth-first order is the image (v2's heuristic for plain tensors,
     extended to arrays); later plain tensors and arrays, masks, boxes, labels
     and anything else pass through untouched.
  3. Other ``tv_tensors`` (``Mask``, ``BoundingBoxes``, ``KeyPoints``, ...)
     always pass through.

  An input with no image in it (a label, a string, a sample of labels) raises
  TypeError: JPEG never hands data back uncompressed without a word.
* **Randomness.** ``quality`` is an int, a ``(low, high)`` tuple (inclusive
  range, as ``v2.JPEG``), or a list (or ``range``) to choose from; ``p`` is the
  probability that an image is compressed at all. Each image draws its own
  coin and quality; the N images of an ``(N, C, H, W)`` batch are N images,
  a video is one (all its frames share a quality). With ``seed=None`` the
  draws come from torch's global generator, as v2's do: reproducible after
  ``torch.manual_seed`` and, because the DataLoader seeds each worker's
  generator, different in each worker. With ``seed=s`` they come from the
  transform's own stream, seeded from ``s`` in the main process and from
  ``(s, torch.initial_seed())`` in a DataLoader worker (different in every
  worker and epoch, reproducible with ``DataLoader(generator=...)``). Under
  ``torch.compile`` the draws are traced as torch ops on torch's generator
  (a ``seed`` is not used there).
* **Gradients.** A float tensor that requires grad gets the exact pixels
  forward and, by default (``grad="ste"``), the straight-through gradient
  backward (the identity, as BPDA uses). ``grad="smooth"`` takes the gradient
  of :func:`jpeg_surrogate`, a differentiable model of the codec, instead;
  ``grad="none"`` cuts the graph.
* **Batches.** :meth:`JPEG.compress_batch` and :class:`JPEGCollate` compress
  all the images of a list of samples with one codec call per image size,
  inside the DataLoader worker that collates them.

CPU images go straight to the C core (through the ``torch.ops.helmholtz.jpeg``
op where autograd or ``torch.compile`` need it); CUDA tensors go to the codec's
``cuda`` backend without leaving the device, or, where that backend is missing,
to the host with a warning (``cuda_fallback=False`` raises
:class:`helmholtz.BackendUnavailable`). ``torch`` is imported when these are
used, not on ``import helmholtz``.
"""

from __future__ import annotations

import operator
import random
import sys
import warnings
from typing import Any, Sequence

import numpy as np

from .._codec import registry
from .._codec.arrays import as_qualities, check_subsampling
from .._extras import require
from ..errors import BackendUnavailable
from . import ops
from .surrogate import jpeg_surrogate

__all__ = ["JPEG", "JPEGCollate", "jpeg_tensor", "GRAD_MODES"]

#: The gradient modes of :class:`JPEG` and :func:`jpeg_tensor`.
GRAD_MODES = ("ste", "smooth", "none")

_warned_fallback = False

# What a leaf of a sample is.
_OTHER, _PIL, _ARRAY, _TENSOR, _TV_IMAGE, _TV_VIDEO = range(6)


def _kind(obj: Any) -> int:
    """Classify one leaf of a sample (without importing torchvision or PIL)."""
    t = type(obj)
    if t is np.ndarray:
        return _ARRAY
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.Tensor):
        if t is torch.Tensor:
            return _TENSOR
        tv = sys.modules.get("torchvision.tv_tensors")
        if tv is not None and isinstance(obj, tv.TVTensor):
            if isinstance(obj, tv.Image):
                return _TV_IMAGE
            if isinstance(obj, tv.Video):
                return _TV_VIDEO
            return _OTHER  # masks, boxes, key points: never images
        return _TENSOR  # other subclasses (nn.Parameter, ...) are plain tensors
    if isinstance(obj, np.ndarray):
        return _ARRAY
    pil = sys.modules.get("PIL.Image")
    if pil is not None and isinstance(obj, pil.Image):
        return _PIL
    return _OTHER


def _images_in(kinds: Sequence[int]) -> list[int]:
    """Indices of the leaves that are images, by the rules of the module docstring."""
    explicit = [i for i, k in enumerate(kinds) if k in (_PIL, _TV_IMAGE, _TV_VIDEO)]
    if explicit:
        return explicit
    for i, k in enumerate(kinds):
        if k in (_ARRAY, _TENSOR):
            return [i]
    return []


def _no_image(sample: Any, flat: Sequence[Any]) -> TypeError:
    what = f"a {type(sample).__name__}"
    if flat:
        what += " holding " + ", ".join(sorted({type(v).__name__ for v in flat}))
    return TypeError(
        f"JPEG found no image in its input ({what}); it takes PIL images, NumPy arrays, tensors, "
        "tv_tensors.Image/Video, or tuples, lists and dicts holding them"
    )


# ---- quality and probability ----------------------------------------------------------------------

def _parse_quality(quality: Any) -> tuple:
    """int -> ("fixed", q); (low, high) tuple -> ("range", low, high); list/range -> ("choice", qs)."""
    if isinstance(quality, (bool, np.bool_)):
        raise TypeError("quality must be an int in 1..100, a (low, high) tuple or a list of ints; got a bool")
    if isinstance(quality, tuple):
        if len(quality) != 2:
            raise ValueError(f"a quality range must be a (low, high) tuple; got {quality!r} (a list chooses among its values)")
        lo, hi = (_quality_int(v, quality) for v in quality)
        if lo > hi:
            raise ValueError(f"quality range must satisfy 1 <= low <= high <= 100; got {quality!r}")
        return ("fixed", lo) if lo == hi else ("range", lo, hi)
    if isinstance(quality, (list, range)):
        values = tuple(_quality_int(v, quality) for v in quality)
        if not values:
            raise ValueError("quality list must hold at least one quality")
        return ("fixed", values[0]) if len(set(values)) == 1 else ("choice", values)
    return ("fixed", _quality_int(quality, quality))


def _quality_int(value: Any, whole: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"quality must hold ints in 1..100; got {whole!r}")
    try:
        q = operator.index(value)
    except TypeError:
        raise TypeError(f"quality must be an int in 1..100, a (low, high) tuple or a list of ints; got {whole!r}") from None
    if not 1 <= q <= 100:
        raise ValueError(f"quality must be in 1..100; got {whole!r}")
    return int(q)


def _check_p(p: Any) -> float:
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"p must be a probability (a float in [0, 1]); got {p!r}")
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p must be in [0, 1]; got {p!r}")
    return float(p)


def _check_grad(grad: Any) -> str:
    if grad not in GRAD_MODES:
        raise ValueError(f"grad must be one of {', '.join(map(repr, GRAD_MODES))}; got {grad!r}")
    return str(grad)


# ---- the tensor path --------------------------------------------------------------------------------

def _cuda_backend_ready() -> bool:
    try:
        registry.get("cuda")
    except BackendUnavailable:
        return False
    return True


def _through_op(x: Any, quality: Any, subsampling: str, grad: str) -> Any:
    """The ``helmholtz::jpeg`` op with the gradient mode: traceable, any device."""
    import torch

    hz = ops.register()
    if x.dtype == torch.uint8 or grad == "ste":
        return hz.jpeg(x, quality, subsampling)
    exact = hz.jpeg(x.detach(), quality, subsampling)
    if grad == "none":
        return exact
    c, h, w = x.shape[-3:]
    flat = x.reshape(-1, c, h, w)
    smooth = jpeg_surrogate(flat, quality.to(x.device), subsampling=subsampling).reshape(x.shape)
    # the exact pixels forward (smooth - smooth is exactly 0), the surrogate's gradient backward
    return exact + (smooth - smooth.detach())


def _compress(x: Any, quality: np.ndarray, subsampling: str, grad: str, cuda_fallback: bool) -> Any:
    """Eager compression of a plain ``(..., C, H, W)`` tensor with int32 per-image qualities (0 = unchanged)."""
    import torch

    global _warned_fallback
    tracked = x.requires_grad and torch.is_grad_enabled() and grad != "none"
    if x.device.type == "cpu" and not tracked:
        return ops.jpeg_channels_first_cpu(x, quality, subsampling, ops.cpu_threads())
    if x.device.type == "cuda" and not _cuda_backend_ready():
        if not cuda_fallback:
            registry.get("cuda")  # raises BackendUnavailable naming the fix
        if not _warned_fallback:
            warnings.warn("helmholtz: the cuda JPEG backend is unavailable; compressing on the host", RuntimeWarning, stacklevel=4)
            _warned_fallback = True
        return _compress(x.cpu(), quality, subsampling, grad, cuda_fallback).to(x.device)
    return _through_op(x, torch.from_numpy(quality), subsampling, grad)


def jpeg_tensor(
    x: Any,
    quality: int | Sequence[int] | Any,
    *,
    subsampling: str = "4:2:0",
    grad: str = "ste",
    cuda_fallback: bool = True,
) -> Any:
    """JPEG round trip of a channels-first tensor or batch, exactly as Pillow.

    Parameters
    ----------
    x : torch.Tensor
        ``(C, H, W)`` or ``(..., C, H, W)``, C in (1, 3); uint8, or floating
        point in ``[0, 1]`` (clipped and rounded to 8 bits first, as saving
        would). CPU or CUDA.
    quality : int, sequence of int or tensor
        One quality for all images or one per image, each 1..100.
    subsampling : {"4:2:0", "4:2:2", "4:4:4"}
        Chroma subsampling (Pillow's default is 4:2:0).
    grad : {"ste", "smooth", "none"}
        The gradient of a float ``x`` that requires grad: straight-through
        (identity), that of :func:`jpeg_surrogate`, or none.
    cuda_fallback : bool
        For CUDA tensors without the cuda backend: compress on the host
        (True, with a warning) or raise :class:`helmholtz.BackendUnavailable`.

    Returns
    -------
    torch.Tensor
        A new tensor of ``x``'s shape, dtype and device.

    Raises
    ------
    TypeError
        If ``x`` is not a uint8 or floating-point tensor.
    ValueError
        For a bad shape, quality or subsampling, or NaN pixels.
    """
    import torch  # a plain import: torch.compile traces this function (and x is a tensor already)

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
    m, _, _, _ = ops.check_channels_first(x)
    subsampling = check_subsampling(subsampling)
    grad = _check_grad(grad)
    plain = x if type(x) is torch.Tensor else x.as_subclass(torch.Tensor)
    if torch.compiler.is_compiling():
        q = quality if isinstance(quality, torch.Tensor) else torch.tensor(quality, dtype=torch.int32)
        return _through_op(plain, q.expand(m) if q.ndim == 0 else q, subsampling, grad)
    if isinstance(quality, torch.Tensor):
        quality = quality.detach().cpu().numpy()
    return _compress(plain, as_qualities(quality, m), subsampling, grad, bool(cuda_fallback))


# ---- NumPy arrays and PIL images ----------------------------------------------------------------

def _array_rows(a: np.ndarray) -> tuple[tuple[int, ...], int]:
    """Validate a NumPy image (batch); returns its (N, H, W, C) shape and its dtype kind."""
    if a.dtype != np.uint8 and a.dtype.kind != "f":
        raise TypeError(f"NumPy images must be uint8 or floating point in [0, 1]; got dtype {a.dtype}")
    if a.ndim == 2:
        rows = (1, a.shape[0], a.shape[1], 1)
    elif a.ndim in (3, 4) and a.shape[-1] in (1, 3):
        rows = (1,) * (4 - a.ndim) + tuple(a.shape)
    else:
        raise ValueError(
            f"NumPy images must be channels-last (H, W), (H, W, C) or (N, H, W, C) with C in (1, 3); got shape {a.shape}"
        )
    if min(rows[1:3]) < 1 or max(rows[1:3]) > 65500:
        raise ValueError(f"JPEG images are 1..65500 pixels on a side; got shape {a.shape}")
    return rows, a.dtype.kind


def _array_to_rows(a: np.ndarray) -> np.ndarray:
    shape, kind = _array_rows(a)
    u8 = a if kind == "u" else ops.quantize_to_uint8(a, "the image")
    return np.ascontiguousarray(u8).reshape(shape)


def _array_from_rows(a: np.ndarray, rows: np.ndarray, quality: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return rows.reshape(a.shape)
    work = np.float64 if a.dtype == np.float64 else np.float32
    out = rows.astype(work)
    out /= work(255)
    if quality.min() == 0:  # images left unchanged keep their values
        keep = quality == 0
        out[keep] = a.reshape(out.shape)[keep]
    return out.astype(a.dtype, copy=False).reshape(a.shape)


_PIL_MODES = {"L": 1, "RGB": 3}


def _pil_to_rows(img: Any) -> np.ndarray:
    if img.mode not in _PIL_MODES:
        raise ValueError(
            f"JPEG takes PIL images in mode 'L' or 'RGB' (what Pillow writes as baseline JPEG); got mode {img.mode!r}: "
            f"convert it first, e.g. img.convert('RGB')"
        )
    w, h = img.size
    return np.frombuffer(img.tobytes(), np.uint8).reshape(1, h, w, _PIL_MODES[img.mode])


def _pil_from_rows(img: Any, rows: np.ndarray) -> Any:
    pil = sys.modules["PIL.Image"]
    return pil.frombuffer(img.mode, img.size, np.ascontiguousarray(rows[0]), "raw", img.mode, 0, 1)


_SCALARS = (int, float, str, bytes, type(None), np.generic)


def _flatten(sample: Any, pytree: Any) -> tuple[list, Any, list[int]]:
    """The leaves of a sample, how to rebuild it and the leaves' kinds.

    Flat tuples and lists are taken apart directly (what pytree would do,
    without its cost per sample); everything else by torch's pytree.
    """
    t = type(sample)
    if t is tuple or t is list:
        kinds = [_kind(v) for v in sample]
        if all(k != _OTHER or isinstance(v, _SCALARS) for k, v in zip(kinds, sample)):
            return list(sample), t, kinds
    flat, spec = pytree.tree_flatten(sample)
    return flat, spec, [_kind(v) for v in flat]


def _unflatten(leaves: list, how: Any, pytree: Any) -> Any:
    if how is tuple:
        return tuple(leaves)
    if how is list:
        return leaves
    return pytree.tree_unflatten(leaves, how)


def _qualities_from_uniforms(u: np.ndarray, spec: tuple, p: float) -> np.ndarray:
    """Two uniforms per image (coin, quality) -> int32 qualities, 0 where the coin says skip."""
    if spec[0] == "fixed":
        q = np.full(len(u), spec[1], np.int32)
    elif spec[0] == "range":
        q = (spec[1] + np.floor(u[:, 1] * (spec[2] - spec[1] + 1))).astype(np.int32)
    else:
        q = np.asarray(spec[1], np.int32)[np.floor(u[:, 1] * len(spec[1])).astype(np.intp)]
    return np.where(u[:, 0] < p, q, 0).astype(np.int32) if p < 1.0 else q


class _Item:
    """An image of a sample in the batch path: where it sits, and what rebuilds it."""

    __slots__ = ("sample", "leaf", "obj", "kind", "plain", "dims", "frames", "units", "rows", "quality")

    def __init__(self, sample: int, leaf: int, obj: Any, kind: int) -> None:
        self.sample, self.leaf, self.obj, self.kind = sample, leaf, obj, kind
        self.plain: Any = None
        self.dims: tuple = ()
        self.frames = self.units = 1
        self.rows: np.ndarray | None = None
        self.quality: np.ndarray | None = None


def _build_jpeg_class() -> type:
    """Create :class:`JPEG` as a ``torch.nn.Module`` subclass on first use."""
    torch = require("torch", purpose="helmholtz.transforms.JPEG")
    from torch.utils import _pytree as pytree

    def plain_tensor(x: Any, kind: int) -> Any:
        return x if type(x) is torch.Tensor else x.as_subclass(torch.Tensor)

    def rewrap(out: Any, like: Any, kind: int) -> Any:
        if kind in (_TV_IMAGE, _TV_VIDEO):
            return sys.modules["torchvision.tv_tensors"].wrap(out, like=like)
        return out

    def video_frames(x: Any, kind: int) -> int:
        if kind != _TV_VIDEO:
            return 1
        if x.ndim < 4:
            raise ValueError(f"a tv_tensors.Video must have shape (..., T, C, H, W); got {tuple(x.shape)}")
        return int(x.shape[-4])

    class JPEG(torch.nn.Module):
        """Exact JPEG compression as a torchvision-v2-style transform (see the module docstring).

        Parameters
        ----------
        quality : int, (int, int) or list of int
            A fixed quality 1..100; a ``(low, high)`` tuple, an inclusive range
            each image draws from uniformly; or a list (or ``range``) of
            qualities each image chooses from uniformly.
        p : float
            Probability that an image is compressed; otherwise it is returned unchanged.
        subsampling : {"4:2:0", "4:2:2", "4:4:4"}
            Chroma subsampling (Pillow's default is 4:2:0).
        grad : {"ste", "smooth", "none"}
            The gradient of float tensors that require grad: straight-through
            (identity, default), the gradient of :func:`jpeg_surrogate`, or none.
        seed : int, optional
            Seed of the transform's own random stream; None draws from torch's
            global generator.
        cuda_fallback : bool
            See :func:`jpeg_tensor`.

        Examples
        --------
        >>> import torch
        >>> from helmholtz.transforms import JPEG
        >>> t = JPEG(quality=(5, 50))
        >>> t(torch.zeros(4, 3, 32, 32, dtype=torch.uint8)).shape
        torch.Size([4, 3, 32, 32])
        """

        def __init__(
            self,
            quality: int | tuple[int, int] | Sequence[int],
            *,
            p: float = 1.0,
            subsampling: str = "4:2:0",
            grad: str = "ste",
            seed: int | None = None,
            cuda_fallback: bool = True,
        ) -> None:
            super().__init__()
            self.quality = _parse_quality(quality)
            self.p = _check_p(p)
            self.subsampling = check_subsampling(subsampling)
            self.grad = _check_grad(grad)
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
                raise TypeError(f"seed must be None or an int; got {seed!r}")
            self.seed = None if seed is None else int(seed)
            self.cuda_fallback = bool(cuda_fallback)
            self._stream: random.Random | None = None
            self._stream_key: tuple | None = None
            # nothing to draw: a fixed quality, always applied
            self._fixed = np.full(1, self.quality[1], np.int32) if self.quality[0] == "fixed" and self.p == 1.0 else None

        # -- random parameters
        def _own_stream(self) -> random.Random:
            key: tuple = (self.seed,)
            if torch.utils.data.get_worker_info() is not None:
                key = (self.seed, torch.initial_seed())
            if key != self._stream_key:
                self._stream = random.Random("helmholtz.transforms.JPEG:" + ":".join(map(str, key)))
                self._stream_key = key
            assert self._stream is not None
            return self._stream

        def draw(self, n: int) -> np.ndarray:
            """The qualities of the next ``n`` images: int32 ``(n,)``, 0 for an image that ``p`` skips.

            Each image takes two uniforms, its coin and its quality, so that
            ``draw(n)`` equals ``n`` calls of ``draw(1)``.
            """
            if self._fixed is not None:
                return self._fixed if n == 1 else np.full(n, self.quality[1], np.int32)
            if self.seed is None:
                u = torch.rand(n, 2, dtype=torch.float64).numpy()
            else:
                rng = self._own_stream()
                u = np.array([rng.random() for _ in range(2 * n)]).reshape(n, 2)
            return _qualities_from_uniforms(u, self.quality, self.p)

        def _draw_traced(self, n: int) -> Any:
            """:meth:`draw` in torch ops, for torch.compile (always torch's generator)."""
            spec = self.quality
            if self._fixed is not None:
                return torch.full((n,), spec[1], dtype=torch.int32)
            u = torch.rand(n, 2, dtype=torch.float64)
            if spec[0] == "fixed":
                q = torch.full((n,), spec[1], dtype=torch.int32)
            elif spec[0] == "range":
                q = (spec[1] + torch.floor(u[:, 1] * (spec[2] - spec[1] + 1))).to(torch.int32)
            else:
                q = torch.tensor(spec[1], dtype=torch.int32)[torch.floor(u[:, 1] * len(spec[1])).long()]
            return torch.where(u[:, 0] < self.p, q, torch.zeros_like(q)) if self.p < 1.0 else q

        # -- one image
        def _image(self, obj: Any, kind: int) -> Any:
            if kind == _PIL:
                rows = _pil_to_rows(obj)
                q = self.draw(1)
                if q[0] == 0:
                    return obj
                return _pil_from_rows(obj, ops.roundtrip_rows_cpu(rows, q, self.subsampling, ops.cpu_threads()))
            if kind == _ARRAY:
                rows = _array_to_rows(obj)
                q = self.draw(rows.shape[0])
                if self._fixed is None and not q.any():
                    return obj
                return _array_from_rows(obj, ops.roundtrip_rows_cpu(rows, q, self.subsampling, ops.cpu_threads()), q)
            return self._tensor(obj, kind)

        def _tensor(self, x: Any, kind: int) -> Any:
            plain = plain_tensor(x, kind)
            dims = ops.check_channels_first(plain, "the image tensor")
            frames = video_frames(plain, kind)
            if torch.compiler.is_compiling():
                q = self._draw_traced(dims[0] // frames)
                out = _through_op(plain, q.repeat_interleave(frames) if frames > 1 else q, self.subsampling, self.grad)
                return rewrap(out, x, kind)
            q = self.draw(dims[0] // frames)
            if self._fixed is None and not q.any():
                return x
            q = np.repeat(q, frames) if frames > 1 else q
            if plain.device.type == "cpu" and not (plain.requires_grad and torch.is_grad_enabled()):
                out = ops.jpeg_channels_first_cpu(plain, q, self.subsampling, ops.cpu_threads(), dims)  # the fast path
            else:
                out = _compress(plain, q, self.subsampling, self.grad, self.cuda_fallback)
            return rewrap(out, x, kind)

        def forward(self, *inputs: Any) -> Any:
            """Compress the image(s) of ``inputs``: one image or sample, or several (taken as one tuple)."""
            if not inputs:
                raise TypeError("JPEG needs an input: an image, or a sample holding images")
            sample = inputs if len(inputs) > 1 else inputs[0]
            kind = _kind(sample)
            if kind != _OTHER:
                return self._image(sample, kind)
            flat, how, kinds = _flatten(sample, pytree)
            if how is not tuple and how is not list and how.is_leaf():
                raise _no_image(sample, [])
            chosen = _images_in(kinds)
            if not chosen:
                raise _no_image(sample, flat)
            for i in chosen:
                flat[i] = self._image(flat[i], kinds[i])
            return _unflatten(flat, how, pytree)

        # -- the batch path
        def compress_batch(self, samples: Sequence[Any]) -> list[Any]:
            """Compress the images of a list of samples, with one codec call per image size.

            Each sample is what :meth:`forward` takes and comes back as
            :meth:`forward` returns it (the same rules, and the same draws: a
            coin and a quality per image, in order), so
            ``default_collate(t.compress_batch(samples))`` is a compressed
            batch. Meant for a DataLoader's ``collate_fn`` (see
            :class:`JPEGCollate`), where it runs in the worker. Tensors that
            require grad or live on a GPU go through :meth:`forward` one by one.
            """
            if not isinstance(samples, (list, tuple)):
                raise TypeError(f"samples must be a list of samples; got {type(samples).__name__}")
            flats, hows, items, alone = [], [], [], []
            for s, sample in enumerate(samples):
                kind = _kind(sample)
                flat, how, kinds = ([sample], None, [kind]) if kind != _OTHER else _flatten(sample, pytree)
                chosen = _images_in(kinds)
                if not chosen:
                    raise _no_image(sample, flat)
                flats.append(flat)
                hows.append(how)
                for i in chosen:
                    item = _Item(s, i, flat[i], kinds[i])
                    if item.kind in (_PIL, _ARRAY):
                        item.rows = _pil_to_rows(item.obj) if item.kind == _PIL else _array_to_rows(item.obj)
                        item.units = item.rows.shape[0]
                    else:
                        item.plain = plain_tensor(item.obj, item.kind)
                        item.dims = ops.check_channels_first(item.plain, "the image tensor")
                        item.frames = video_frames(item.plain, item.kind)
                        item.units = item.dims[0] // item.frames
                        if item.plain.device.type != "cpu" or (item.plain.requires_grad and torch.is_grad_enabled()):
                            alone.append(item)
                            continue
                    items.append(item)
            quality = self.draw(sum(item.units for item in items)) if items else np.zeros(0, np.int32)
            start = 0
            for item in items:
                q = quality[start : start + item.units]
                item.quality = np.repeat(q, item.frames) if item.frames > 1 else q
                start += item.units
            self._compress_items(items, flats)
            for item in alone:
                flats[item.sample][item.leaf] = self._image(item.obj, item.kind)
            return [flat[0] if how is None else _unflatten(flat, how, pytree) for flat, how in zip(flats, hows)]

        def _compress_items(self, items: list[_Item], flats: list[list]) -> None:
            """One codec call per image size; tensors of one dtype and size are converted together."""
            blocks: dict[tuple, list] = {}  # (H, W, C) -> [(rows, quality, items, tensor-or-None, floats)]
            tensors: dict[tuple, list[_Item]] = {}
            for item in items:
                if item.rows is not None:
                    blocks.setdefault(item.rows.shape[1:], []).append((item.rows, item.quality, [item], None, None))
                else:
                    tensors.setdefault((item.plain.dtype,) + tuple(item.dims[1:]), []).append(item)
            for (_, c, h, w), group in tensors.items():
                if all(item.plain.ndim == 3 for item in group):  # the usual case: one (C, H, W) image per sample
                    stacked = torch.stack([item.plain for item in group])
                else:
                    stacked = torch.cat([item.plain.reshape(-1, c, h, w) for item in group])
                rows, floats = ops.channels_first_rows(stacked)
                quality = np.concatenate([item.quality for item in group])
                blocks.setdefault((h, w, c), []).append((rows, quality, group, stacked, floats))
            for block in blocks.values():
                rows = np.concatenate([b[0] for b in block]) if len(block) > 1 else block[0][0]
                quality = np.concatenate([b[1] for b in block]) if len(block) > 1 else block[0][1]
                out = ops.roundtrip_rows_cpu(rows, quality, self.subsampling, ops.cpu_threads()) if quality.any() else rows
                at = 0
                for part, q, group, stacked, floats in block:
                    n = part.shape[0]
                    self._rebuild(group, out[at : at + n], q, stacked, floats, flats)
                    at += n

        def _rebuild(self, group: list[_Item], rows: np.ndarray, quality: np.ndarray, stacked: Any, floats: Any, flats: list[list]) -> None:
            if stacked is not None:
                result = ops.channels_first_from_rows(stacked, rows, quality, floats)
            every = bool(quality.all())  # then no image is left unchanged: no check per image
            at = 0
            for item in group:
                n = item.rows.shape[0] if item.rows is not None else item.dims[0]
                if not (every or quality[at : at + n].any()):
                    out = item.obj
                elif item.kind == _PIL:
                    out = _pil_from_rows(item.obj, rows[at : at + n])
                elif item.kind == _ARRAY:
                    out = _array_from_rows(item.obj, rows[at : at + n], quality[at : at + n])
                elif item.plain.ndim == 3:
                    out = rewrap(result[at], item.obj, item.kind)
                else:
                    out = rewrap(result[at : at + n].reshape(item.plain.shape), item.obj, item.kind)
                flats[item.sample][item.leaf] = out
                at += n

        def extra_repr(self) -> str:
            spec = self.quality
            q = spec[1] if spec[0] == "fixed" else (spec[1], spec[2]) if spec[0] == "range" else list(spec[1])
            return f"quality={q!r}, p={self.p}, subsampling={self.subsampling!r}, grad={self.grad!r}, seed={self.seed!r}"

    JPEG.__module__ = __name__
    JPEG.__qualname__ = "JPEG"
    return JPEG


class JPEGCollate:
    """A DataLoader ``collate_fn`` that compresses the whole batch in one codec call, then collates.

    Parameters
    ----------
    transform : JPEG
        The compression to apply (its quality, ``p``, seed and subsampling).
    collate_fn : callable, optional
        What collates the compressed samples; ``torch.utils.data.default_collate``
        by default.

    Examples
    --------
    >>> from torch.utils.data import DataLoader
    >>> from helmholtz.transforms import JPEG, JPEGCollate
    >>> loader = DataLoader(dataset, batch_size=256, num_workers=4,  # doctest: +SKIP
    ...                     collate_fn=JPEGCollate(JPEG((5, 50))))
    """

    def __init__(self, transform: Any, collate_fn: Any = None) -> None:
        if not hasattr(transform, "compress_batch"):
            raise TypeError(f"transform must be a helmholtz.transforms.JPEG; got {type(transform).__name__}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"collate_fn must be callable; got {type(collate_fn).__name__}")
        self.transform = transform
        self.collate_fn = collate_fn

    def __call__(self, samples: Sequence[Any]) -> Any:
        compressed = self.transform.compress_batch(samples)
        if self.collate_fn is not None:
            return self.collate_fn(compressed)
        return require("torch.utils.data", purpose="JPEGCollate").default_collate(compressed)

    def __repr__(self) -> str:
        return f"JPEGCollate({self.transform!r}, collate_fn={self.collate_fn!r})"


def __getattr__(name: str) -> Any:
    # ``JPEG`` subclasses torch.nn.Module, so it is built (importing torch) on first access
    if name == "JPEG":
        cls = _build_jpeg_class()
        globals()["JPEG"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

