"""Optional dependencies: import them, or fail with the exact ``pip install`` line.

Each optional module belongs to one extra of the distribution (see
``[project.optional-dependencies]`` in pyproject.toml). :func:`require` is the
one place that turns a missing module into :class:`helmholtz.errors.MissingExtra`.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .errors import MissingExtra, install_hint

__all__ = ["EXTRA_OF", "require", "check"]

#: top-level module -> the extra that installs it.
EXTRA_OF: dict[str, str] = {
    "torch": "torch",
    "pandas": "experiments",
    "matplotlib": "experiments",
    "tqdm": "experiments",
    "PIL": "experiments",
    "ray": "ray",
    "lameenc": "audio",
    "miniaudio": "audio",
    "scipy": "audio",
    "cupy": "cuda",
}


def require(module: str, *, extra: str | None = None, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtra` naming the extra to install.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"torch"`` or ``"matplotlib.pyplot"``.
    extra : str, optional
        The extra that provides it; by default looked up in :data:`EXTRA_OF`.
    purpose : str, optional
        What needs it, for the message (e.g. ``"helmholtz sweep"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        if exc.name is not None and exc.name.split(".")[0] != top:
            raise  # the module exists but one of *its* imports is broken: not ours to explain
        extra = extra or EXTRA_OF.get(top, "experiments")
        who = f"{purpose} needs" if purpose else "this needs"
        raise MissingExtra(f"{who} {top}, which is not installed: {install_hint(extra)}", extra=extra, module=top) from None


def check(*modules: str, extra: str | None = None, purpose: str | None = None) -> None:
    """Fail before any work if one of ``modules`` is not installed (see :func:`require`).

    Only looks the modules up (``importlib.util.find_spec``), so that a
    command can refuse early without paying for importing torch.
    """
    for module in modules:
        top = module.split(".")[0]
        if importlib.util.find_spec(top) is None:
            extra_name = extra or EXTRA_OF.get(top, "experiments")
            who = f"{purpose} needs" if purpose else "this needs"
            raise MissingExtra(f"{who} {top}, which is not installed: {install_hint(extra_name)}", extra=extra_name, module=top)
