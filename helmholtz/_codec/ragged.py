"""Ragged batches: lists of images of different sizes.

The public functions of :mod:`helmholtz.jpeg` (``roundtrip``,
``roundtrip_many``, ``coefficients``, ``bits``, ``bits_many``, ``encode``)
hand a ``list`` or ``tuple`` of images here. Each item is one image of shape
``(H, W)`` or ``(H, W, C)`` with ``C`` in (1, 3); sizes differ freely and so may
the channel counts (grayscale and colour images mix in one list; each keeps
its own component count). Results are lists, one entry per image, in the
input's order: pixels of the item's shape (``(Q,) + shape`` for the ``_many``
variants), one :class:`~helmholtz.jpeg.Coefficients` container per image, one
file per image; bit counts come as int64 arrays ``(N,)`` / ``(Q, N)``.
``subsampling=None`` (the default) is Pillow's default for each item on its
own: 4:2:0 for colour images, a 1x1 SOF (``"4:4:4"``) for grayscale ones.

On the ``cpu`` backend the whole list is one call into the C core, which
spreads the images over its threads (largest first) without returning to
Python between images. The pixel (or coefficient) results of one call share
one buffer, so a result kept alive keeps that buffer alive. The ``numpy``
and ``cuda`` backends process the list one image at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import registry
from .arrays import DEFAULT_SUBSAMPLING, as_batch, as_qualities, as_quality_list, as_threads, check_subsampling, resolve_subsampling
from .container import Coefficients, tables_for

__all__ = ["roundtrip", "roundtrip_many", "coefficients", "bits", "bits_many", "encode", "is_ragged"]


def is_ragged(images: Any) -> bool:
    """Whether ``images`` is a list (or tuple) of images rather than one array."""
    return isinstance(images, (list, tuple))


def _native():
    try:
        from . import native
    except ImportError:
        return None
    return native


def _threads(num_threads) -> int:
    return as_threads(num_threads, registry.default_threads)


def _subsampling(subsampling) -> tuple:
    """``(checked argument or None, the subsampling of the colour items)``.

    One C call applies one subsampling to the colour items; grayscale pixels,
    coefficients and bits do not depend on it, only the SOF of their files
    and the ``subsampling`` recorded in their containers do (see :func:`encode`).
    """
    if subsampling is None:
        return None, DEFAULT_SUBSAMPLING
    subsampling = check_subsampling(subsampling, none_ok=True)
    return subsampling, subsampling


class _Items:
    """The validated list: NumPy views of the images, how to hand results back, where they live."""

    def __init__(self, images: Any, backend: Any):
        if not isinstance(images, (list, tuple)):
            raise TypeError(f"images must be an array or a list of arrays; got {type(images).__name__}")
        if len(images) == 0:
            raise ValueError("images is an empty list; pass at least one image")
        if not isinstance(backend, str):
            raise TypeError(f"backend must be a string such as 'auto', 'numpy', 'cpu' or 'cuda'; got {backend!r}")
        self.wraps = None
        if all(type(im) is np.ndarray for im in images):  # the fast path: the C core checks each item
            self.arrays, self.device = list(images), "cpu"
        else:
            arrays, wraps, kinds, devices = [], [], set(), set()
            for i, im in enumerate(images):
                b = as_batch(im, name=f"images[{i}]")
                if len(b.shape) not in (2, 3):
                    raise ValueError(f"images[{i}] must be one image of shape (H, W) or (H, W, C); got shape {b.shape}")
                arrays.append(b.array.reshape(b.shape))
                wraps.append(b.wrap)
                kinds.add(b.kind)
                devices.add(b.device)
            if len(devices) > 1:
                raise ValueError("images mixes CPU and CUDA arrays; put them all on one device")
            self.arrays, self.device = arrays, devices.pop()
            if kinds != {"numpy"}:
                self.wraps = wraps
        self.n = len(self.arrays)
        self.backend = registry.resolve(backend, self.device)
        native = _native()
        self.batch = native.RaggedBatch(self.arrays) if self.backend.name == "cpu" and native else None

    def wrap(self, i: int, out):
        return self.wraps[i](out) if self.wraps else out


def _containers(items: Any) -> list | None:
    """The list itself when it holds Coefficients containers (bits, encode take those too)."""
    if isinstance(items, (list, tuple)) and len(items) and all(isinstance(c, Coefficients) for c in items):
        return list(items)
    if isinstance(items, (list, tuple)) and any(isinstance(c, Coefficients) for c in items):
        raise TypeError("images_or_coefficients must be a list of images or a list of Coefficients containers, not a mix")
    return None


def _one(items: _Items, i: int, fn, *args, **kwargs):
    """The uniform function on image i alone (the numpy and cuda backends)."""
    return fn(items.arrays[i], *args, backend=items.backend.name, **kwargs)


def roundtrip(images, quality, *, subsampling=None, backend="auto", num_threads=None) -> list:
    """Round-trip each image of a list; see :func:`helmholtz.jpeg.roundtrip`."""
    subsampling, colour = _subsampling(subsampling)
    items = _Items(images, backend)
    q = as_qualities(quality, items.n)
    if items.batch is None:
        from . import lossy

        return [_one(items, i, lossy.roundtrip, int(q[i]), subsampling=subsampling, num_threads=num_threads) for i in range(items.n)]
    pixels, _, _ = items.batch.run(q[None, :], colour, True, False, False, False, _threads(num_threads))
    return [items.wrap(i, p[0]) for i, p in enumerate(pixels)]


def roundtrip_many(images, qualities, *, subsampling=None, backend="auto", num_threads=None) -> list:
    """Each image at each quality: entry i has shape ``(len(qualities),) + images[i].shape``."""
    subsampling, colour = _subsampling(subsampling)
    qlist = as_quality_list(qualities)
    items = _Items(images, backend)
    if items.batch is None:
        from . import lossy

        return [_one(items, i, lossy.roundtrip_many, qlist, subsampling=subsampling, num_threads=num_threads) for i in range(items.n)]
    grid = np.ascontiguousarray(np.repeat(qlist[:, None], items.n, axis=1))
    pixels, _, _ = items.batch.run(grid, colour, True, False, False, False, _threads(num_threads))
    return [items.wrap(i, p) for i, p in enumerate(pixels)]


def coefficients(images, quality, *, subsampling=None, backend="auto", num_threads=None) -> list:
    """One :class:`~helmholtz.jpeg.Coefficients` container (a batch of one) per image.

    With ``subsampling=None`` a grayscale item's container records ``"4:4:4"``
    and a colour item's ``"4:2:0"``, as :func:`helmholtz.jpeg.coefficients` does.
    """
    from . import lossy

    subsampling, colour = _subsampling(subsampling)
    items = _Items(images, backend)
    q = as_qualities(quality, items.n)
    if items.batch is None:
        return [_one(items, i, lossy.coefficients, int(q[i]), subsampling=subsampling, num_threads=num_threads) for i in range(items.n)]
    _, comps, _ = items.batch.run(q[None, :], colour, False, True, False, False, _threads(num_threads))
    tables = tables_for(q)
    return [
        Coefficients(tuple(comps[i]), tables[i : i + 1], q[i : i + 1].copy(),
                     resolve_subsampling(subsampling, items.batch.channels(i)), items.batch.shapes[i])
        for i in range(items.n)
    ]


def bits(images, quality, *, subsampling=None, optimize=False, backend="auto", num_threads=None) -> np.ndarray:
    """int64 ``(N,)``: the scan bits of each image (see :func:`helmholtz.jpeg.bits`).

    ``images`` may also be a list of Coefficients containers (as :func:`coefficients`
    returns); ``quality`` must then be None.
    """
    containers = _containers(images)
    if containers is not None:
        from . import entropy

        return np.concatenate([entropy.bits(c, quality, subsampling=subsampling, optimize=optimize, backend=backend,
                                         num_threads=num_threads) for c in containers])
    subsampling, colour = _subsampling(subsampling)
    items = _Items(images, backend)
    q = as_qualities(quality, items.n)
    if items.batch is None:
        from . import entropy

        return np.array(
            [int(np.asarray(_one(items, i, entropy.bits, int(q[i]), subsampling=subsampling, optimize=optimize, num_threads=num_threads))[0])
             for i in range(items.n)],
            dtype=np.int64,
        )
    _, _, out = items.batch.run(q[None, :], colour, False, False, True, optimize, _threads(num_threads))
    return out[0]


def bits_many(images, qualities, *, subsampling=None, optimize=False, backend="auto", num_threads=None) -> np.ndarray:
    """int64 ``(Q, N)``: row k is :func:`bits` at ``qualities[k]``, from one forward transform per image."""
    subsampling, colour = _subsampling(subsampling)
    qlist = as_quality_list(qualities)
    items = _Items(images, backend)
    if items.batch is None:
        return np.stack([bits(images, int(q), subsampling=subsampling, optimize=optimize, backend=items.backend.name,
                              num_threads=num_threads) for q in qlist])
    grid = np.ascontiguousarray(np.repeat(qlist[:, None], items.n, axis=1))
    _, _, out = items.batch.run(grid, colour, False, False, True, optimize, _threads(num_threads))
    return out


def encode(images, quality, *, subsampling=None, optimize=False, backend="auto", num_threads=None) -> list[bytes]:
    """One baseline JFIF file per image, byte-identical to Pillow's (see :func:`helmholtz.jpeg.encode`).

    ``images`` may also be a list of Coefficients containers; ``quality`` must then be None.
    """
    from . import entropy

    containers = _containers(images)
    if containers is not None:
        return [f for c in containers for f in entropy.encode(c, quality, subsampling=subsampling, optimize=optimize,
                                                           backend=backend, num_threads=num_threads)]
    subsampling, colour = _subsampling(subsampling)
    items = _Items(images, backend)
    q = as_qualities(quality, items.n)
    if items.batch is None:
        return [_one(items, i, entropy.encode, int(q[i]), subsampling=subsampling, optimize=optimize, num_threads=num_threads)[0]
                for i in range(items.n)]
    # Grayscale files name 1x1 in their SOF by default (Pillow), the given factors otherwise.
    gray = resolve_subsampling(subsampling, 1)
    return items.batch.encode(q, tables_for(q), colour, optimize, _threads(num_threads), gray)


