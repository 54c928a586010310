"""helmholtz: exact, fast perceptual-compression experiments for machine learning.

The codec lives in :mod:`helmholtz.jpeg`: a JPEG lossy path and entropy
coder bit-exact with libjpeg-turbo as Pillow runs it, on NumPy, C and CUDA
backends; :mod:`helmholtz.info` measures what it keeps. The torch layer is
:mod:`helmholtz.transforms` and :mod:`helmholtz.models`, the data sets
:mod:`helmholtz.data`, MP3 :mod:`helmholtz.audio`, and the experiments
(``helmholtz sweep``, ``helmholtz report``) :mod:`helmholtz.experiments`.
Heavy dependencies are imported only when used.
"""

from . import jpeg
from ._version import __version__
from .errors import BackendUnavailable, DataError, HelmholtzError, MissingExtra

__all__ = ["jpeg", "BackendUnavailable", "DataError", "HelmholtzError", "MissingExtra", "__version__"]
