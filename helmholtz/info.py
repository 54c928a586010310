"""Information measures of JPEG-compressed image batches (the face of ``helmholtz info``).

Every measure is vectorised over a batch and returns one value per image
(or per image and component / frequency). With ``H, W`` the image size,
``N`` the batch size and ``p(v)`` the relative frequency of value ``v``:

=====================  ==========================================================
measure                formula
=====================  ==========================================================
scan bits per pixel    ``bits / (H W)``, ``bits`` from :func:`helmholtz.jpeg.bits`
                       (entropy-coded data before stuffing and padding)
file bits per pixel    ``8 len(file) / (H W)``: headers + scan bytes with 0xFF
                       stuffing and padding + EOI, from :func:`helmholtz.jpeg.encode`
coefficient entropy    ``H = -sum_v p(v) log2 p(v)`` over the quantised
                       coefficients (real blocks; overall, per component, or
                       per component and frequency), in bits per coefficient
pixel entropy          the same over the uint8 pixel values (all channels)
PSNR                   ``10 log10(255^2 / MSE)``, ``MSE`` the mean squared error
                       against the originals over all pixels and channels
zero fraction          share of quantised coefficients equal to 0
=====================  ==========================================================

:func:`dataset_report` gathers them per quality into a pandas DataFrame,
and :func:`plot_report` draws bits per pixel and PSNR against quality;
``helmholtz info`` prints that table for a data set and writes CSV / JSON / PNG.
"""

from __future__ import annotations

from ._codec.measures import (
    DEFAULT_QUALITIES,
    coefficient_entropy,
    dataset_report,
    file_bits_per_pixel,
    pixel_entropy,
    plot_report,
    psnr,
    scan_bits_per_pixel,
    shannon_entropy,
    zero_fraction,
)

__all__ = [
    "DEFAULT_QUALITIES",
    "coefficient_entropy",
    "dataset_report",
    "file_bits_per_pixel",
    "pixel_entropy",
    "plot_report",
    "psnr",
    "scan_bits_per_pixel",
    "shannon_entropy",
    "zero_fraction",
]
