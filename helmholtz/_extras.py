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

__all__ = ["EXTRA_OF", "MODULES_OF", "require", "check", "check_extra", "check_extras"]

#: top-level module -> the extra that installs it.
EXTRA_OF: dict[str, str] = {
    "torch": "torch",
    "pandas": "report",
    "matplotlib": "report",
    "tqdm": "experiments",
    "PIL": "experiments",
    "ray": "ray",
    "lameenc": "audio",
    "miniaudio": "audio",
    "scipy": "audio",
    "cupy": "cuda",
    "datasets": "hf",
    "webdataset": "wds",
    "simplejpeg": "data",
}

#: extra -> the top-level modules it installs (tests/test_packaging.py holds this to pyproject.toml).
MODULES_OF: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "report": ("pandas", "matplotlib"),
    "experiments": ("torch", "pandas", "matplotlib", "tqdm", "PIL"),
    "ray": ("ray", "torch", "pandas", "matplotlib", "tqdm", "PIL"),
    "audio": ("lameenc", "miniaudio", "scipy"),
    "data": ("PIL", "simplejpeg", "scipy", "tqdm"),
    "hf": ("datasets", "PIL"),
    "wds": ("webdataset", "PIL"),
    "cuda": ("cupy",),
    "cuda13": ("cupy",),
}


def _missing(module: str) -> bool:
    return importlib.util.find_spec(module.split(".")[0]) is None


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
        if _missing(top):
            extra_name = extra or EXTRA_OF.get(top, "experiments")
            who = f"{purpose} needs" if purpose else "this needs"
            raise MissingExtra(f"{who} {top}, which is not installed: {install_hint(extra_name)}", extra=extra_name, module=top)


def check_extra(extra: str, modules: tuple[str, ...] | None = None, *, purpose: str | None = None) -> None:
    """Fail before any work unless ``extra`` (or the ``modules`` of it a command uses) is installed.

    Unlike :func:`check`, one message lists every missing module and names
    ``extra`` itself, so that a single ``pip install`` makes the command work.

    Parameters
    ----------
    extra : str
        A key of :data:`MODULES_OF` (``"experiments"``, ``"report"``, ...).
    modules : tuple of str, optional
        The modules of ``extra`` the caller needs (default: all of them).
    purpose : str, optional
        What needs them, for the message (e.g. ``"helmholtz sweep"``).

    Raises
    ------
    MissingExtra
        Naming the missing modules and ``pip install 'helmholtz-ml[extra]'``.
    """
    check_extras([(extra, modules)], purpose=purpose)


def check_extras(needs: list[tuple[str, tuple[str, ...] | None]], *, purpose: str | None = None) -> None:
    """:func:`check_extra` for several extras at once: one message, one ``pip install`` line.

    ``needs`` holds ``(extra, modules)`` pairs (``modules`` None: all of the
    extra's). When modules of several extras are missing, the message names
    them all in one line, ``pip install 'helmholtz-ml[experiments,audio]'``,
    and :attr:`MissingExtra.extra` is that comma-separated list.
    """
    missing: dict[str, None] = {}
    extras: dict[str, None] = {}
    for extra, modules in needs:
        if extra not in MODULES_OF:
            raise ValueError(f"extra must be one of {', '.join(MODULES_OF)}; got {extra!r}")
        for module in modules if modules is not None else MODULES_OF[extra]:
            if _missing(module):
                missing[module.split(".")[0]] = None
                extras[extra] = None
    if missing:
        who = f"{purpose} needs" if purpose else "this needs"
        verb = "is" if len(missing) == 1 else "are"
        extra = ",".join(extras)
        raise MissingExtra(f"{who} {', '.join(missing)}, which {verb} not installed: {install_hint(extra)}", extra=extra, module=next(iter(missing)))
