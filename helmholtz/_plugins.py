"""Registries of plugins by ``"module:attr"`` strings.

A registry maps names to import strings and imports a plugin only when it is
first asked for. It is filled from the package entry points of its group
(helmholtz declares its own codec backends, data sets and trial runners in
pyproject.toml exactly as a third-party package would) and from
:meth:`Registry.register` at run time. A registry never imports or names its
plugins itself.

A third-party package adds, for example, a data set with::

    [project.entry-points."helmholtz.datasets"]
    my-images = "my_package.data:MY_IMAGES"     # a helmholtz.data.DatasetSpec
"""

from __future__ import annotations

import importlib
import threading
from importlib import metadata
from typing import Any

__all__ = ["Registry", "load_target", "check_target"]


def check_target(target: Any, name: str = "target") -> str:
    """Validate a ``"module:attr"`` string and return it."""
    if not isinstance(target, str) or target.count(":") != 1 or not all(target.split(":")):
        raise ValueError(f"{name} must be a 'module:attr' string such as 'my_package.data:MY_SET'; got {target!r}")
    return target


def load_target(target: str) -> Any:
    """Import ``"module:attr"`` (attr may be dotted) and return the attribute."""
    module_name, attr = check_target(target).split(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry:
    """Names -> ``"module:attr"`` strings, loaded lazily and cached.

    Parameters
    ----------
    group : str
        The entry-point group that fills it, e.g. ``"helmholtz.datasets"``.
    what : str
        What a name stands for, for error messages (``"dataset"``).
    """

    def __init__(self, group: str, what: str) -> None:
        self.group = group
        self.what = what
        self._targets: dict[str, str] | None = None
        self._loaded: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _table(self) -> dict[str, str]:
        if self._targets is None:
            with self._lock:
                if self._targets is None:
                    found = {ep.name: ep.value for ep in metadata.entry_points(group=self.group)}
                    self._targets = dict(sorted(found.items()))
        return self._targets

    def register(self, name: str, target: str, *, replace: bool = False) -> None:
        """Make ``name`` stand for the plugin at ``target`` (``"module:attr"``)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.what} name must be a non-empty string; got {name!r}")
        check_target(target)
        table = self._table()
        if name in table and table[name] != target and not replace:
            raise ValueError(f"{self.what} {name!r} is already registered as {table[name]!r}; pass replace=True to change it")
        table[name] = target
        self._loaded.pop(name, None)

    def forget_loaded(self, name: str | None = None) -> None:
        """Drop the imported plugin ``name`` (all with None), so the next :meth:`load` imports it again."""
        if name is None:
            self._loaded.clear()
        else:
            self._loaded.pop(name, None)

    def unregister(self, name: str) -> None:
        """Forget ``name`` (a no-op when it is not registered)."""
        self._table().pop(name, None)
        self._loaded.pop(name, None)

    def names(self) -> list[str]:
        """Every registered name, sorted (nothing is imported)."""
        return sorted(self._table())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._table()

    def target(self, name: Any) -> str:
        """The import string of ``name``, or a ValueError listing the known names."""
        table = self._table()
        if not isinstance(name, str) or name not in table:
            known = ", ".join(table) or "(none: is helmholtz installed? its entry points are missing)"
            raise ValueError(f"{self.what} must be one of {known}; got {name!r}")
        return table[name]

    def load(self, name: Any) -> Any:
        """Import the plugin called ``name`` (once) and return it.

        Raises
        ------
        ValueError
            For an unknown name.
        ImportError
            When the plugin's module cannot be imported (a missing extra raises
            :class:`helmholtz.errors.MissingExtra` naming the install line).
        """
        target = self.target(name)
        if name not in self._loaded:
            self._loaded[name] = load_target(target)
        return self._loaded[name]
