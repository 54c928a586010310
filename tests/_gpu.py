"""Whether the cuda backend can run here, for the tests that need it (one check for every file)."""

from __future__ import annotations

import pytest

from helmholtz._codec import registry as backends
from helmholtz.errors import BackendUnavailable


def cuda_backend_reason() -> str | None:
    """None when the cuda backend can run here, else the reason it cannot."""
    try:
        import cupy  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return f"CuPy not importable ({exc})"
    try:
        backends.get("cuda")
    except BackendUnavailable as exc:
        return str(exc)
    return None


CUDA_REASON = cuda_backend_reason()
needs_gpu = pytest.mark.skipif(CUDA_REASON is not None, reason=f"no CUDA backend: {CUDA_REASON}")
