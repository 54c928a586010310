"""The JPEG lossy path and exact entropy coding, bit-exact with libjpeg-turbo as Pillow runs it.

``roundtrip(images, q)`` returns exactly the pixels of::

    Image.fromarray(img).save(buf, "JPEG", quality=q, subsampling=s)
    np.asarray(Image.open(buf))

for every image of a batch, and ``coefficients(images, q)`` the quantised DCT
coefficients stored in that file, without writing a file. Many qualities
share one forward transform through :func:`roundtrip_many`,
:func:`coefficients_many` and :func:`bits_many`. :func:`bits` counts the
entropy-coded bits of the file's scan and :func:`encode` writes the file
itself, byte-identical to Pillow's.

``subsampling=None``, the default everywhere, is Pillow's default: what
``save(buf, "JPEG", quality=q)`` without a ``subsampling`` argument does,
4:2:0 for colour and a 1x1 SOF for grayscale, so ``encode(gray, q)`` equals
that file byte for byte. An explicit ``subsampling`` equals Pillow given the
same argument (which writes its luma factors even for grayscale).

Bad arguments raise ``TypeError`` or ``ValueError`` naming the argument and
what was expected; a :class:`Coefficients` container is checked by one
validation whichever backend runs it, so every backend refuses the same
containers with the same message.

Backends (``backend=``): ``"numpy"`` (the readable reference), ``"cpu"``
(the C core, all cores), ``"cuda"`` (CUDA kernels through CuPy) and
``"auto"`` (the fastest one for where the images live);
:func:`available_backends` lists those that run here.
"""

from __future__ import annotations

from ._codec import registry as _registry
from ._codec.container import Coefficients
from ._codec.entropy import bits, bits_many, encode, symbol_frequencies
from ._codec.lossy import (
    ZIGZAG,
    coefficients,
    coefficients_many,
    quant_tables,
    reconstruct,
    roundtrip,
    roundtrip_float,
    roundtrip_many,
)
from .errors import BackendUnavailable

__all__ = [
    "Coefficients",
    "BackendUnavailable",
    "ZIGZAG",
    "available_backends",
    "bits",
    "bits_many",
    "coefficients",
    "coefficients_many",
    "encode",
    "quant_tables",
    "reconstruct",
    "roundtrip",
    "roundtrip_float",
    "roundtrip_many",
    "symbol_frequencies",
]


def available_backends() -> list[str]:
    """Names of the codec backends that can run in this process (e.g. ``['cpu', 'numpy']``)."""
    return _registry.available()
