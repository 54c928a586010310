"""The :class:`Coefficients` container and the one validation of containers.

Every backend (numpy, cpu, cuda) receives containers checked by
:func:`check_components`, so a container that one backend refuses is refused
by all of them with the same message.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import reference as ref
from .arrays import array_dtype_name, check_subsampling

__all__ = [
    "Coefficients",
    "check_components",
    "check_coefficient_range",
    "tables_for",
    "quant_tables_for_quality",
    "MAX_TABLE_ENTRY",
]

#: The largest quantisation step a container may hold: baseline JPEG stores
#: its tables with 8-bit precision (the DQT that :func:`helmholtz.jpeg.encode`
#: writes, and what Pillow and libjpeg's ``jpeg_set_quality`` produce).
MAX_TABLE_ENTRY = 255


def quant_tables_for_quality(quality: int, baseline: bool = True) -> np.ndarray:
    """uint16 ``(2, 8, 8)``: the luma and chroma tables of one (validated) quality."""
    return np.stack([
        ref.quant_table(ref.ANNEX_K_LUMA, quality, baseline).astype(np.uint16),
        ref.quant_table(ref.ANNEX_K_CHROMA, quality, baseline).astype(np.uint16),
    ])


_TABLE_LUT: np.ndarray | None = None


def tables_for(qualities: np.ndarray) -> np.ndarray:
    """uint16 ``(N, 2, 8, 8)`` luma/chroma tables for an int array of N qualities in 1..100."""
    global _TABLE_LUT
    if _TABLE_LUT is None:  # built once: all 100 qualities x (luma, chroma)
        _TABLE_LUT = np.stack([quant_tables_for_quality(q) for q in range(1, 101)])
    return _TABLE_LUT[np.asarray(qualities) - 1]


def _image_dims(shape: tuple) -> tuple[int, int]:
    return (shape[0], shape[1]) if len(shape) <= 3 else (shape[1], shape[2])


@dataclass(frozen=True, eq=False)
class Coefficients:
    """Quantised DCT coefficients of a batch, as a baseline JPEG file holds them.

    Attributes
    ----------
    components : tuple of arrays
        One int16 array per JPEG component (Y, or Y, Cb, Cr), each of shape
        ``(N, blocks_high, blocks_wide, 8, 8)``: block ``[n, i, j]`` covers
        rows ``8i..8i+7`` and columns ``8j..8j+7`` of the component, and
        ``[..., u, v]`` is the coefficient of vertical frequency ``u`` and
        horizontal frequency ``v`` (natural order, not zigzag; index with
        :data:`helmholtz.jpeg.ZIGZAG` for zigzag order). Only blocks that hold
        image samples are stored, as ``jpeg_read_coefficients`` returns them.
    tables : array
        uint16 ``(N, 2, 8, 8)``: the luminance and chrominance quantisation
        tables of each image (natural order), entries 1..255 (baseline).
    quality : array
        int32 ``(N,)``: the quality of each image.
    subsampling : str
        ``"4:4:4"``, ``"4:2:2"`` or ``"4:2:0"``. For grayscale it only sets
        the luma sampling factors written into an encoded file's SOF header:
        :func:`helmholtz.jpeg.coefficients` with the default
        ``subsampling=None`` records ``"4:4:4"`` there (1x1, as Pillow's
        default grayscale file has).
    shape : tuple
        The shape of the images that were transformed;
        :func:`helmholtz.jpeg.reconstruct` returns pixels of this shape.
    """

    components: tuple
    tables: Any
    quality: Any
    subsampling: str
    shape: tuple

    @property
    def batch_size(self) -> int:
        """Number of images, N."""
        return int(self.components[0].shape[0])

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(_image_dims(self.shape)[0])

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(_image_dims(self.shape)[1])

    @property
    def channels(self) -> int:
        """1 (grayscale) or 3."""
        return 1 if len(self.components) == 1 else 3

    def geometry(self) -> list[ref.ComponentGeometry]:
        """The libjpeg layout (sampling factors, sample and block counts) of each component."""
        return ref.component_geometry(self.height, self.width, self.channels, self.subsampling)


def _check_shape(shape: Any) -> tuple:
    if not isinstance(shape, tuple) or len(shape) not in (2, 3, 4):
        raise ValueError(f"coefs.shape must be an image shape tuple of rank 2, 3 or 4; got {shape!r}")
    try:
        dims = tuple(operator.index(v) for v in shape)
    except TypeError:
        raise TypeError(f"coefs.shape must hold ints; got {shape!r}") from None
    if len(dims) >= 3 and dims[-1] not in (1, 3):
        raise ValueError(f"coefs.shape must end in 1 or 3 channels; got {shape!r}")
    if min(dims) < 1:
        raise ValueError(f"coefs.shape must have every size >= 1; got {shape!r}")
    h, w = _image_dims(dims)
    if h > 65500 or w > 65500:
        raise ValueError(f"coefs.shape: JPEG images are at most 65500 pixels on a side; got {shape!r}")
    return dims


def check_components(coefs: Any) -> str:
    """Reject a container whose parts do not fit each other, with a TypeError or ValueError naming the part.

    The one validation of containers: every backend (numpy, cpu, cuda) and
    every function taking a container (reconstruct, bits, encode, the
    information measures) runs it first, so all refuse the same containers
    with the same message. Checks the type, ``shape``, ``subsampling``, the
    number, dtype and shapes of ``components``, and the dtype, shape and
    values (baseline steps 1..255) of ``tables``. The coefficient values
    themselves are checked against the tables by each backend
    (:func:`check_coefficient_range` for the reference).

    Returns
    -------
    str
        ``coefs.subsampling`` as a plain ``str`` (a ``np.str_`` is accepted).
    """
    if not isinstance(coefs, Coefficients):
        raise TypeError(f"coefs must be a helmholtz.jpeg.Coefficients; got {type(coefs).__name__}")
    subsampling = check_subsampling(coefs.subsampling, "coefs.subsampling")  # before the geometry needs it
    shape = _check_shape(coefs.shape)
    comps = coefs.components
    channels = 1 if len(shape) == 2 else shape[-1]
    need = 1 if channels == 1 else 3
    if not isinstance(comps, (tuple, list)):
        raise TypeError(
            f"coefs.components must be a tuple of {need} int16 arrays (Y{'' if need == 1 else ', Cb, Cr'}); got {type(comps).__name__}"
        )
    if len(comps) != need:
        raise ValueError(f"coefs.components holds {len(comps)} arrays but image shape {shape} needs {need}")
    n = 1 if len(shape) < 4 else shape[0]
    height, width = _image_dims(shape)
    for i, (comp, geom) in enumerate(zip(comps, ref.component_geometry(height, width, channels, subsampling))):
        if not hasattr(comp, "shape") or not hasattr(comp, "dtype"):
            raise TypeError(f"coefs.components[{i}] must be an int16 array; got {type(comp).__name__}")
        expected = (n, geom.blocks_high, geom.blocks_wide, 8, 8)
        if array_dtype_name(comp) != "int16":
            raise TypeError(f"coefs.components[{i}] must have dtype int16; got {comp.dtype}")
        if tuple(comp.shape) != expected:
            raise ValueError(f"coefs.components[{i}] has shape {tuple(comp.shape)}; expected {expected} for image shape {shape}")
    tables = coefs.tables
    if not hasattr(tables, "shape") or not hasattr(tables, "dtype"):
        raise TypeError(f"coefs.tables must be an integer array of shape {(n, 2, 8, 8)}; got {type(tables).__name__}")
    if tuple(tables.shape) != (n, 2, 8, 8):
        raise ValueError(f"coefs.tables must have shape {(n, 2, 8, 8)}; got {tuple(tables.shape)}")
    kind = array_dtype_name(tables)
    if not (kind.startswith("int") or kind.startswith("uint")):
        raise TypeError(f"coefs.tables must hold integers (quantisation steps 1..{MAX_TABLE_ENTRY}); got dtype {tables.dtype}")
    host = tables.get() if hasattr(tables, "get") and type(tables).__module__.startswith("cupy") else tables
    values = np.asarray(host.cpu() if hasattr(host, "cpu") else host)
    # Checked in the caller's dtype, before any cast to uint16 could wrap 65537 to 1.
    if values.size and (values.min() < 1 or values.max() > MAX_TABLE_ENTRY):
        bad = values[(values < 1) | (values > MAX_TABLE_ENTRY)].flat[0]
        raise ValueError(
            f"coefs.tables entries must be baseline quantisation steps in 1..{MAX_TABLE_ENTRY} "
            f"(8-bit DQT precision); got {int(bad)}"
        )
    return subsampling


def check_coefficient_range(components: Any, tables: np.ndarray) -> None:
    """Refuse coefficients no 8-bit baseline encoder produces: ``|coefficient * step| <= 2176``.

    The C core and the CUDA kernels apply the same rule; this is the reference's.
    """
    for i, comp in enumerate(components):
        table = np.asarray(tables)[:, min(i, 1)].astype(np.int64)[:, None, None]
        if (np.abs(np.asarray(comp).astype(np.int64)) * table > ref.MAX_DEQUANTIZED).any():
            raise ValueError(
                "coefficients are outside the range a baseline JPEG encoder produces from 8-bit samples "
                f"(|coefficient * table entry| <= {ref.MAX_DEQUANTIZED})"
            )
