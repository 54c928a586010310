"""Trial runners: how the trials of one kind of data set prepare their data and train.

A runner is registered by kind (``"image"``: JPEG at a quality;
``"audio"``: MP3 at a bitrate) as a ``"module:attr"`` string in the
entry-point group ``helmholtz.trial_runners`` (or with
:func:`register_runner`); a data set's :class:`helmholtz.data.DatasetSpec`
names its kind. Every runner trains with the one trainer,
:func:`helmholtz._ml.trainer.fit`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .._plugins import Registry
from ..data import get_spec

__all__ = ["TrialRunner", "Prepared", "TrainOptions", "RUNNERS", "register_runner", "runner_for"]


@dataclass
class Prepared:
    """A data set compressed at one level, ready to train on.

    Attributes
    ----------
    train, test : Any
        What the runner's ``train`` consumes (device tensors).
    rate : dict
        Measured rate columns, e.g. ``{"bpp": 0.91}`` or ``{"bits_per_second": 22560.0}``.
    data_sha256 : str
        SHA-256 of the arrays trained and tested on.
    compress_time_s : float
    extra : dict
        Facts about the compression for the row's ``extra`` (e.g. the MPEG sample rate).
    """

    train: Any
    test: Any
    rate: dict
    data_sha256: str
    compress_time_s: float = 0.0
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainOptions:
    """How to train, beyond the trial's spec: where, compiled or not, with what console output."""

    device: str = "cpu"
    compile: bool = False
    progress: bool | None = None
    log: Callable[[str], None] | None = None
    num_threads: int | None = None


@dataclass(frozen=True)
class TrialRunner:
    """How trials of one data-set kind compress, measure and train.

    Attributes
    ----------
    level : str
        ``"quality"`` or ``"bitrate"``: which column holds the level.
    check_model : callable
        ``name -> canonical name``; raises ValueError for unknown models.
    check_level : callable
        ``level -> level``; raises ValueError for an out-of-range level.
    prepare : callable
        ``(dataset, level, options) -> Prepared``: both splits compressed at
        ``level`` on ``options.device``, with the measured rate.
    train : callable
        ``(spec, dataset, prepared, options) -> dict`` of result columns
        (see :data:`helmholtz.experiments.store.COLUMNS`), including the
        final weights under ``"state"``.
    describe_recipe : callable
        ``(spec, dataset) -> dict``: the full recipe, stored as JSON.
    check_data : callable
        ``(dataset, levels) -> None``: refuse, before any work, a data set the
        levels or the models cannot run on (e.g. mixed image sizes).
    evaluate : callable, optional
        ``(spec, dataset, record, state, requests, options) -> [(request,
        accuracy, images, seconds), ...]``: evaluations of a finished trial
        from its stored record and final weights (see
        :mod:`helmholtz.experiments.evaluate`); None when the kind has none.
    requires : tuple of (str, tuple of str)
        ``(extra, modules)`` pairs beyond torch and tqdm: what
        :func:`helmholtz.experiments.sweep.run_sweep` checks is installed
        before any work (e.g. the audio extra's MP3 codec).
    """

    level: str
    check_model: Callable[[Any], str]
    check_level: Callable[[Any], Any]
    prepare: Callable[..., Prepared]
    train: Callable[..., dict]
    describe_recipe: Callable[..., dict]
    check_data: Callable[..., None] = field(default=lambda dataset, levels: None)
    evaluate: Callable[..., list] | None = None
    requires: tuple[tuple[str, tuple[str, ...]], ...] = ()


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
