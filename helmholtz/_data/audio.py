"""Audio data sets: the Free Spoken Digit Dataset and folders of WAV/FLAC files.

Both loaders return an :class:`AudioDataset`: mono int16 waveforms of varying
length at one sample rate, integer labels, class names and a train/test mask.

* :func:`load_fsdd` reads ``fsdd.npz`` (3,000 recordings of the digits 0-9 by
  six speakers at 8 kHz) with the official split: takes 0-4 of every
  (digit, speaker) are the test set (300 clips), the rest train (2,700).
* :func:`load_audio_folder` reads ``root/<class>/**/*.wav|flac`` (the layout
  of IDMT-SMT-Audio-Effects, whose ``Samples`` folders hold one subfolder per
  effect); stereo is mixed down to mono, other sample rates are resampled to
  one rate, and a stratified, seeded split is drawn.

The data folder is ``data_dir``, else ``$HELMHOLTZ_DATA``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._audio.mp3 import resample, to_int16
from .._extras import require
from .paths import find_data_file, resolve_data_dir
from .registry import DatasetSpec

__all__ = [
    "AudioDataset",
    "AUDIO_EXTENSIONS",
    "load_fsdd",
    "load_audio_folder",
    "read_audio",
    "stratified_test_mask",
]

#: File endings :func:`load_audio_folder` reads.
AUDIO_EXTENSIONS = (".wav", ".flac")


@dataclass
class AudioDataset:
    """Mono waveforms with labels and a train/test split.

    Attributes
    ----------
    waveforms : list of ndarray
        1-D int16 clips, any lengths.
    labels : ndarray
        int64 ``(N,)``, indices into ``classes``.
    is_test : ndarray
        bool ``(N,)``.
    sample_rate : int
        Hz, shared by all clips.
    classes : tuple of str
    name : str
    groups : ndarray or None
        Optional per-clip group (FSDD: speaker index).
    filenames : tuple of str
    """

    waveforms: list
    labels: np.ndarray
    is_test: np.ndarray
    sample_rate: int
    classes: tuple = ()
    name: str = "audio"
    groups: np.ndarray | None = None
    filenames: tuple = field(default_factory=tuple)

    def __post_init__(self) -> None:
        n = len(self.waveforms)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.is_test = np.asarray(self.is_test, dtype=bool)
        if self.labels.shape != (n,) or self.is_test.shape != (n,):
            raise ValueError(f"{self.name}: labels and is_test must have one entry per waveform ({n}); got {self.labels.shape}, {self.is_test.shape}")
        for i, w in enumerate(self.waveforms):
            if not isinstance(w, np.ndarray) or w.dtype != np.int16 or w.ndim != 1:
                raise TypeError(f"{self.name}: waveform {i} must be a 1-D int16 array; got {getattr(w, 'dtype', type(w).__name__)}")
        if not self.classes:
            self.classes = tuple(str(i) for i in range(int(self.labels.max(initial=-1)) + 1))
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(f"{self.name}: labels outside 0..{len(self.classes) - 1}")

    def __len__(self) -> int:
        return len(self.waveforms)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, which: str) -> tuple[list, np.ndarray]:
        """``(waveforms, labels)`` of ``"train"`` or ``"test"``."""
        if which not in ("train", "test"):
            raise ValueError(f"which must be 'train' or 'test'; got {which!r}")
        idx = np.flatnonzero(self.is_test if which == "test" else ~self.is_test)
        return [self.waveforms[i] for i in idx], self.labels[idx]

    @property
    def seconds(self) -> float:
        """Total duration of all clips."""
        return float(sum(w.shape[0] for w in self.waveforms) / self.sample_rate)

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> "AudioDataset":
        """A smaller data set: ``train`` and ``test`` clips drawn at random (without replacement, seeded)."""
        rng = np.random.default_rng(seed)
        keep = []
        for mask, size, name in ((~self.is_test, train, "train"), (self.is_test, test, "test")):
            idx = np.flatnonzero(mask)
            if size is not None:
                if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
                    raise ValueError(f"{name} must be a positive int or None; got {size!r}")
                if size < idx.size:
                    idx = np.sort(rng.choice(idx, size=int(size), replace=False))
            keep.append(idx)
        idx = np.sort(np.concatenate(keep))
        return AudioDataset(
            [self.waveforms[i] for i in idx],
            self.labels[idx],
            self.is_test[idx],
            self.sample_rate,
            self.classes,
            self.name,
            None if self.groups is None else self.groups[idx],
            tuple(self.filenames[i] for i in idx) if self.filenames else (),
        )


def load_fsdd(data_dir: str | os.PathLike | None = None) -> AudioDataset:
    """The Free Spoken Digit Dataset from ``fsdd.npz`` with its official split.

    Parameters
    ----------
    data_dir : path, optional
        Folder holding ``fsdd.npz`` (or the file itself).

    Returns
    -------
    AudioDataset
        3,000 int16 clips at 8 kHz, labels = spoken digit, classes ``"0"``..``"9"``,
        ``is_test`` = take 0-4 (300 test, 2,700 train), ``groups`` = speaker.
    """
    path = find_data_file("fsdd.npz", data_dir)
    with np.load(path, allow_pickle=False) as z:
        audio, offsets, lengths = z["audio"], z["offsets"], z["lengths"]
        labels, index, speaker = z["labels"], z["index"], z["speaker"]
        sr = int(z["sample_rate"])
        filenames = tuple(str(f) for f in z["filenames"]) if "filenames" in z.files else ()
    if audio.dtype != np.int16:
        raise ValueError(f"{path}: audio must be int16; got {audio.dtype}")
    waves = [audio[o : o + n] for o, n in zip(offsets.tolist(), lengths.tolist())]
    return AudioDataset(waves, labels.astype(np.int64), index <= 4, sr, tuple(str(d) for d in range(10)), "fsdd", speaker.astype(np.int64), filenames)


def read_audio(path: str | os.PathLike, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read a WAV or FLAC file as mono int16 (channels averaged by miniaudio).

    Parameters
    ----------
    path : path
    sample_rate : int, optional
        Resample to this rate (zero-phase polyphase, :func:`helmholtz.audio.resample`).

    Returns
    -------
    samples : ndarray
        1-D int16.
    rate : int
    """
    miniaudio = require("miniaudio", purpose="reading audio files")

    path = str(path)
    info = miniaudio.get_file_info(path)
    decoded = miniaudio.decode_file(path, output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=info.sample_rate)
    x = np.frombuffer(decoded.samples, dtype=np.int16).copy()
    rate = int(info.sample_rate)
    if sample_rate is not None and int(sample_rate) != rate:
        x = to_int16(resample(x, rate, int(sample_rate)))
        rate = int(sample_rate)
    return x, rate


def stratified_test_mask(labels: np.ndarray, test_fraction: float, seed: int = 0) -> np.ndarray:
    """A seeded test mask holding ``round(test_fraction * n_c)`` clips of every class c."""
    if not isinstance(test_fraction, (float, int)) or not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1); got {test_fraction!r}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    mask = np.zeros(labels.shape[0], dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(round(test_fraction * idx.size))
        mask[rng.choice(idx, size=k, replace=False)] = True
    return mask


def load_audio_folder(
    root: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    sample_rate: int | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    classes: Sequence[str] | None = None,
    extensions: Sequence[str] = AUDIO_EXTENSIONS,
) -> AudioDataset:
    """Audio files in one subfolder per class (IDMT-SMT-Audio-Effects layout).

    Parameters
    ----------
    root : path or list of paths
        Folder(s) whose subfolders are the classes; files are found at any
        depth below a class folder. With several roots (e.g. the ``Samples``
        folders of IDMT's guitar and bass sets) classes of the same name merge.
    sample_rate : int, optional
        Rate of the result; default the rate of the first file (files at other
        rates are resampled).
    test_fraction : float, optional
        Share of each class put in the test set (seeded, stratified).
    seed : int, optional
    classes : list of str, optional
        Use only these class folders, in this label order; default all, sorted.
    extensions : list of str, optional
        File endings to read (case-insensitive).

    Raises
    ------
    FileNotFoundError
        A root is not a folder, or no audio file is found.
    """
    roots = [root] if isinstance(root, (str, os.PathLike)) else list(root)
    if not roots:
        raise ValueError("root must name at least one folder")
    exts = tuple(e.lower() for e in extensions)
    found: dict[str, list[Path]] = {}
    for r in roots:
        if not isinstance(r, (str, os.PathLike)):
            raise TypeError(f"root must be a path or a list of paths; got {type(r).__name__}")
        r = Path(r).expanduser()
        if not r.is_dir():
            raise FileNotFoundError(f"root {str(r)!r} is not a folder")
        for sub in sorted(p for p in r.iterdir() if p.is_dir()):
            files = sorted(p for p in sub.rglob("*") if p.is_file() and p.suffix.lower() in exts)
            if files:
                found.setdefault(sub.name, []).extend(files)
    names = sorted(found) if classes is None else list(classes)
    missing = [c for c in names if c not in found]
    if missing:
        raise FileNotFoundError(f"no {'/'.join(exts)} files for classes {missing} under {[str(r) for r in roots]}")
    if not names:
        raise FileNotFoundError(f"no class subfolders with {'/'.join(exts)} files under {[str(r) for r in roots]}")
    waves, labels, files = [], [], []
    rate = sample_rate
    for label, name in enumerate(names):
        for path in found[name]:
            x, got = read_audio(path, rate)
            rate = got if rate is None else rate
            waves.append(x)
            labels.append(label)
            files.append(str(path))
    labels_arr = np.asarray(labels, dtype=np.int64)
    return AudioDataset(waves, labels_arr, stratified_test_mask(labels_arr, test_fraction, seed), int(rate), tuple(names), "audio-folder", None, tuple(files))


def _load_folder(data_dir: Any = None, **kwargs: Any) -> AudioDataset:
    if data_dir is None:
        data_dir = resolve_data_dir(None)
    return load_audio_folder(data_dir, **kwargs)


# The specs helmholtz declares as entry points (group "helmholtz.datasets").
FSDD = DatasetSpec("fsdd", load_fsdd, "audio", "bitrate", "Free Spoken Digit Dataset, 8 kHz speech, 10 digits")
AUDIO_FOLDER = DatasetSpec("audio-folder", _load_folder, "audio", "bitrate", "WAV/FLAC files, one subfolder per class (--data-dir)")
