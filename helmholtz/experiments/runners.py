"""Trial runners: how trials of one data-set kind compress, measure and train.

Runners are registered by kind (``"image"``, ``"audio"``, ...) as
``"module:attr"`` strings in the entry-point group ``helmholtz.trial_runners``
(or with :func:`register_runner`); the data set's
:class:`helmholtz.data.DatasetSpec` names its kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .._plugins import Registry
from ..data import get_spec

__all__ = ["TrialRunner", "RUNNERS", "register_runner", "runner_for"]


@dataclass(frozen=True)
class TrialRunner:
    """How trials of one data-set kind compress, measure and train.

    Attributes
    ----------
    check_model : callable
        ``name -> canonical name``; raises ValueError for unknown models.
    check_level : callable
        ``level -> level``; raises ValueError for an out-of-range level.
    compress : callable
        ``(dataset, levels, device) -> {level: (train, test)}``: the
        compressed splits, all levels from one forward transform where the
        codec allows, on ``device``.
    rate : callable
        ``(dataset, levels) -> {level: {column: value}}``, e.g. ``{"bpp": 0.9}``;
        values may be None when they cannot be measured yet.
    train : callable
        ``(spec, dataset, compressed_train, compressed_test, device, progress) -> dict``
        of result columns.
    level : str
        ``"quality"`` or ``"bitrate"``: which column holds the level.
    can_measure : callable
        ``() -> bool``: whether ``rate`` can measure now; when it can, a
        rerun fills rates that finished trials lack.
    """

    check_model: Callable[[str], str]
    check_level: Callable[[Any], Any]
    compress: Callable[..., dict]
    rate: Callable[..., dict]
    train: Callable[..., dict]
    level: str = "quality"
    can_measure: Callable[[], bool] = lambda: True


#: kind -> "module:attr" of a TrialRunner.
RUNNERS = Registry("helmholtz.trial_runners", "trial runner kind")


def register_runner(kind: str, target: str, *, replace: bool = False) -> None:
    """Make data sets of ``kind`` runnable by the :class:`TrialRunner` at ``target`` (``"module:attr"``)."""
    RUNNERS.register(kind, target, replace=replace)


def runner_for(dataset: str) -> TrialRunner:
    """The runner of the data set called ``dataset`` (by its kind)."""
    kind = get_spec(dataset).kind
    if kind not in RUNNERS:
        raise ValueError(f"dataset {dataset!r} is of kind {kind!r}, for which no trial runner is registered")
    runner = RUNNERS.load(kind)
    if not isinstance(runner, TrialRunner):
        raise TypeError(f"trial runner {kind!r} ({RUNNERS.target(kind)!r}) is not a TrialRunner")
    return runner
