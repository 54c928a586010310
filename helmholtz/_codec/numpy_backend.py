"""The ``numpy`` codec backend: the pure-NumPy reference, image by image.

Slow and simple: it is the specification that the ``cpu`` and ``cuda``
backends are tested against. Containers reach it validated by
:func:`helmholtz._codec.container.check_components`, the one validation that
the ``cpu`` and ``cuda`` backends get too (so all refuse the same containers
with the same message), and their coefficients by
:func:`helmholtz._codec.container.check_coefficient_range`, the rule the C
core and the CUDA kernels apply themselves.
"""

from __future__ import annotations

import numpy as np

from . import reference as ref

__all__ = ["NumpyBackend"]


class NumpyBackend:
    """The pure-NumPy reference, image by image: slow, simple, the spec."""

    name = "numpy"
    device = "cpu"

    def forward(self, images, qualities, subsampling, num_threads):
        return [
            [np.stack(c) for c in zip(*(ref.encode_planes(img, subsampling, int(q)) for img, q in zip(images, row)))]
            for row in qualities
        ]

    def reconstruct(self, components, tables, height, width, subsampling, num_threads):
        out = [
            ref.decode_planes([c[i] for c in components], height, width, subsampling, tables[i].astype(np.int64))
            for i in range(components[0].shape[0])
        ]
        return np.stack(out)

    def roundtrip(self, images, qualities, subsampling, num_threads):
        return np.stack([np.stack([ref.roundtrip_image(img, int(q), subsampling) for img, q in zip(images, row)]) for row in qualities])
