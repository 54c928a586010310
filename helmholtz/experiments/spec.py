"""One trial of a sweep: what to train on what, under a unique key."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TrialSpec"]


@dataclass(frozen=True)
class TrialSpec:
    """One trial: what to train on what, identified by :meth:`key`.

    ``quality`` (JPEG 1..100) or ``bitrate`` (kbps) is the compression level;
    ``train_subset`` / ``test_subset`` of None mean the whole split;
    ``image_size`` (``"HxW"``) brings an image folder of mixed sizes to one size.
    """

    dataset: str
    model: str
    quality: int | None
    seed: int
    recipe: str
    epochs: int
    train_subset: int | None = None
    test_subset: int | None = None
    bitrate: float | None = None
    image_size: str | None = None

    @property
    def level(self) -> int | float | None:
        """The compression level: the quality, else the bitrate (None: uncompressed PCM audio)."""
        return self.quality if self.quality is not None else self.bitrate

    def _level_text(self, sep: str) -> str:
        if self.quality is not None:
            return f"q={self.quality}"
        if self.bitrate is None:
            return "pcm"
        return f"kbps={self.bitrate:g}" if sep == "=" else f"{self.bitrate:g} kbps"

    def key(self) -> str:
        """The unique key of this trial in the results database."""
        level = self._level_text("=")
        sub = lambda v: "all" if v is None else str(v)  # noqa: E731
        return (
            f"{self.dataset}|{self.model}|{level}|seed={self.seed}|{self.recipe}|epochs={self.epochs}"
            f"|train={sub(self.train_subset)}|test={sub(self.test_subset)}" + (f"|size={self.image_size}" if self.image_size else "")
        )

    def label(self) -> str:
        """A short human label, e.g. ``"A q=20 seed=0"``."""
        level = self._level_text(" ")
        return f"{self.model} {level} seed={self.seed}"

    def data_group(self) -> tuple[str, int | None, int | None, str | None]:
        """``(dataset, train_subset, test_subset, image_size)``: trials of one group train on the same data."""
        return (self.dataset, self.train_subset, self.test_subset, self.image_size)

    def to_dict(self) -> dict:
        """The fields as a plain dict (what crosses to worker processes and Ray tasks)."""
        return dict(self.__dict__)
