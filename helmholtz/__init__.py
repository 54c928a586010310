"""helmholtz: exact, fast perceptual-compression experiments for machine learning.

The codec core lives in :mod:`helmholtz.jpeg`: a JPEG lossy path that is
bit-exact with libjpeg-turbo as Pillow runs it, on NumPy, C and CUDA
backends. The experiment layer (models, data, sweeps, reports) lives in
submodules that import their heavy dependencies only when used.
"""

from . import jpeg
from ._version import __version__
from .backends import BackendUnavailable

__all__ = ["jpeg", "BackendUnavailable", "__version__"]
