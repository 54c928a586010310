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

Both validate once, as they load (a violation is a
:class:`~helmholtz.errors.DataError` naming the file): labels are integers
in range (float labels are refused, never truncated), a truncated or corrupt
``fsdd.npz`` or audio file is reported as such, and nothing decodes to more
than ``HELMHOLTZ_MAX_BYTES`` (see :mod:`helmholtz._data.safety`).

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
from ..errors import DataError
from .checks import check_subset_size, integer_labels
from .paths import find_data_file, resolve_data_dir
from .registry import DatasetSpec
from .safety import MAX_BYTES_ENV, max_bytes, read_npz

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
#: The sample rates (Hz) an audio file may declare: below 1 kHz or above 768 kHz a header is damaged, not a recording.
SAMPLE_RATES = (1000, 768000)


def _check_rate(rate: int, path: Any) -> int:
    low, high = SAMPLE_RATES
    if not low <= int(rate) <= high:
        raise DataError(f"{str(path)!r} declares a sample rate of {rate} Hz, outside {low}..{high} Hz: its header is damaged")
    return int(rate)


@dataclass
class AudioDataset:
    """Mono waveforms with labels and a train/test split.

    Attributes
    ----------
    waveforms : list of ndarray
        1-D int16 clips, any lengths.
    labels : ndarray
        int64 ``(N,)``, indices into ``classes``. Given labels must have an
        integer dtype: float labels are refused, not truncated.
    is_test : ndarray
        bool ``(N,)``; a non-boolean mask is refused.
    sample_rate : int
        Hz, shared by all clips.
    classes : tuple of str
    name : str
    groups : ndarray or None
        Optional per-clip group (FSDD: speaker index).
    filenames : tuple of str
    source : str
        The file or folder the clips came from, named in error messages.

    Raises
    ------
    TypeError
        A waveform that is not a 1-D int16 array; a ``sample_rate`` that is not an int.
    ValueError
        Labels or mask of the wrong length; a ``sample_rate`` < 1.
    DataError
        Labels that are not integers, negative or outside the classes; a
        mask that is not boolean.
    """

    waveforms: list
    labels: np.ndarray
    is_test: np.ndarray
    sample_rate: int
    classes: tuple = ()
    name: str = "audio"
    groups: np.ndarray | None = None
    filenames: tuple = field(default_factory=tuple)
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.waveforms)
        where = f"{self.name} ({self.source})" if self.source else self.name
        labels, is_test = np.asarray(self.labels), np.asarray(self.is_test)
        if labels.shape != (n,) or is_test.shape != (n,):
            raise ValueError(f"{where}: labels and is_test must have one entry per waveform ({n}); got {labels.shape}, {is_test.shape}")
        if is_test.dtype != np.bool_:
            raise DataError(f"{where}: is_test must be a boolean mask; got dtype {is_test.dtype}")
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, (int, np.integer)):
            raise TypeError(f"{where}: sample_rate must be an int (Hz); got {type(self.sample_rate).__name__}")
        if self.sample_rate < 1:
            raise ValueError(f"{where}: sample_rate must be >= 1 Hz; got {self.sample_rate}")
        self.sample_rate = int(self.sample_rate)
        for i, w in enumerate(self.waveforms):
            if not isinstance(w, np.ndarray) or w.dtype != np.int16 or w.ndim != 1:
                raise TypeError(f"{where}: waveform {i} must be a 1-D int16 array; got {getattr(w, 'dtype', type(w).__name__)}")
        self.classes = tuple(self.classes)
        self.labels = integer_labels(labels, n, f"{where}: labels", len(self.classes) if self.classes else None)
        self.is_test = is_test
        if not self.classes:
            self.classes = tuple(str(i) for i in range(int(self.labels.max(initial=-1)) + 1))

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
        """A smaller data set: ``train`` and ``test`` clips drawn at random (without replacement, seeded).

        Raises
        ------
        TypeError
            If ``train`` or ``test`` is not an int or None.
        ValueError
            If one is < 1 or larger than its split: a subset larger than its
            split is an error, never a silent "all of it".
        """
        rng = np.random.default_rng(seed)
        keep = []
        for mask, size, name, split in ((~self.is_test, train, "train_subset", "train"), (self.is_test, test, "test_subset", "test")):
            idx = np.flatnonzero(mask)
            size = check_subset_size(size, idx.size, name, split)
            if size is not None and size < idx.size:
                idx = np.sort(rng.choice(idx, size=size, replace=False))
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
            self.source,
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

    Raises
    ------
    DataError
        Naming the file: it is missing, not a zip, truncated or corrupt,
        would expand beyond ``HELMHOLTZ_MAX_BYTES``, lacks an array, or holds
        arrays of the wrong dtype or shape (``audio`` int16 1-D; ``offsets``,
        ``lengths``, ``index``, ``speaker`` integers, one per clip, clips
        inside ``audio``; ``labels`` integers 0-9; ``sample_rate`` a positive
        integer).
    """
    path = find_data_file("fsdd.npz", data_dir)
    z = read_npz(path, ("audio", "offsets", "lengths", "labels", "index", "speaker", "sample_rate"), ("filenames",), what="fsdd")
    audio = z["audio"]
    if audio.dtype != np.int16 or audio.ndim != 1:
        raise DataError(f"fsdd: audio in {str(path)!r} must be 1-D int16; got {audio.dtype} {audio.shape}")
    where = f"fsdd: {str(path)!r}"
    if z["labels"].ndim != 1:
        raise DataError(f"{where}: labels must be 1-D, one per clip; got shape {z['labels'].shape}")
    n = z["labels"].shape[0]
    labels = integer_labels(z["labels"], n, f"{where}: labels", 10)
    offsets = integer_labels(z["offsets"], n, f"{where}: offsets")
    lengths = integer_labels(z["lengths"], n, f"{where}: lengths")
    index = integer_labels(z["index"], n, f"{where}: index (take number)")
    speaker = integer_labels(z["speaker"], n, f"{where}: speaker")
    if n and int((offsets + lengths).max()) > audio.shape[0]:
        raise DataError(f"{where}: clips run past the end of audio ({audio.shape[0]} samples); the file is corrupt")
    sr = z["sample_rate"]
    if sr.shape != () or not np.issubdtype(sr.dtype, np.integer) or int(sr) < 1:
        raise DataError(f"{where}: sample_rate must be a positive integer scalar; got {sr.dtype} {sr.shape}")
    filenames = ()
    if "filenames" in z:
        if z["filenames"].shape != (n,) or z["filenames"].dtype.kind not in "US":
            raise DataError(f"{where}: filenames must be {n} strings; got {z['filenames'].dtype} {z['filenames'].shape}")
        filenames = tuple(str(f) for f in z["filenames"])
    waves = [audio[o : o + k] for o, k in zip(offsets.tolist(), lengths.tolist())]
    return AudioDataset(waves, labels, index <= 4, int(sr), tuple(str(d) for d in range(10)), "fsdd", speaker, filenames, str(path))


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

    Notes
    -----
    The file is decoded in chunks and refused once its samples pass
    ``HELMHOLTZ_MAX_BYTES`` (a FLAC bomb declares few bytes and decodes to
    many), and before decoding when its header already declares more.

    Raises
    ------
    DataError
        Naming the file: not a readable audio file, truncated or corrupt,
        decoding beyond the limit, declaring a sample rate outside
        :data:`SAMPLE_RATES`, or decoding to no samples at all (an empty
        recording, or an encoding miniaudio cannot decode, such as a WAV
        format tag it does not know, which it would otherwise pass as silence
        of length 0).
    """
    miniaudio = require("miniaudio", purpose="reading audio files")

    path = str(path)
    limit = max_bytes()
    too_big = f"{path!r}: decodes to more than {limit:,} bytes, over the limit (a decompression bomb, or set {MAX_BYTES_ENV} higher if it is genuine)"
    try:
        info = miniaudio.get_file_info(path)
        if info.num_frames * 2 > limit:
            raise DataError(too_big)
        chunks, total = [], 0
        stream = miniaudio.stream_file(path, output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=info.sample_rate, frames_to_read=16384)
        try:
            for chunk in stream:
                total += len(chunk) * 2
                if total > limit:
                    raise DataError(too_big)
                chunks.append(np.frombuffer(chunk, dtype=np.int16))
        finally:
            stream.close()
    except miniaudio.MiniaudioError as exc:
        raise DataError(f"{path!r} is not a readable audio file, or it is truncated ({type(exc).__name__}: {exc})") from exc
    x = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    rate = _check_rate(int(info.sample_rate), path)
    if x.size == 0:
        tag = f" (WAV format tag {info.sub_format})" if getattr(info, "file_format", None) == miniaudio.FileFormat.WAV and hasattr(info, "sub_format") else ""
        raise DataError(f"{path!r} decodes to no samples{tag}: an empty recording, or an encoding that cannot be decoded; expected PCM WAV or FLAC")
    if sample_rate is not None and int(sample_rate) != rate:
        x = to_int16(resample(x, rate, int(sample_rate)))
        rate = int(sample_rate)
    return x, rate


def _common_rate(paths: list[Path]) -> int:
    """The sample rate most of ``paths`` declare (a tie: the higher), each checked against :data:`SAMPLE_RATES`."""
    miniaudio = require("miniaudio", purpose="reading audio files")
    counts: dict[int, int] = {}
    for p in paths:
        try:
            rate = _check_rate(int(miniaudio.get_file_info(str(p)).sample_rate), p)
        except miniaudio.MiniaudioError as exc:
            raise DataError(f"{str(p)!r} is not a readable audio file, or it is truncated ({type(exc).__name__}: {exc})") from exc
        counts[rate] = counts.get(rate, 0) + 1
    return max(counts, key=lambda r: (counts[r], r))


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
        Rate of the result; default the rate most of the files have (read
        from their headers first; a tie goes to the higher rate). Files at
        other rates are resampled.
    test_fraction : float, optional
        Share of each class put in the test set, in (0, 1) (seeded, stratified,
        ``round(test_fraction * n_c)`` clips of class c).
    seed : int, optional
    classes : list of str, optional
        Use only these class folders, in this label order; default all, sorted.
    extensions : list of str, optional
        File endings to read (case-insensitive).

    Raises
    ------
    FileNotFoundError
        A root is not a folder, or no audio file is found.
    ValueError
        ``test_fraction`` outside (0, 1).
    DataError
        A split that leaves a class without training clips or the test set
        empty; an unreadable audio file (naming it).
    """
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float, np.integer, np.floating)) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be a number in (0, 1); got {test_fraction!r}")
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
    rate = sample_rate if sample_rate is not None else _common_rate([p for n in names for p in found[n]])
    for label, name in enumerate(names):
        for path in found[name]:
            x, got = read_audio(path, rate)
            rate = got if rate is None else rate
            waves.append(x)
            labels.append(label)
            files.append(str(path))
    labels_arr = np.asarray(labels, dtype=np.int64)
    is_test = stratified_test_mask(labels_arr, test_fraction, seed)
    where = ", ".join(str(r) for r in roots)
    untrained = [names[c] for c in range(len(names)) if not np.any((labels_arr == c) & ~is_test)]
    if untrained:
        raise DataError(
            f"audio-folder ({where}): test_fraction={test_fraction} puts every clip of class(es) {', '.join(untrained)} in the test set, "
            "leaving them without training clips; add clips or lower test_fraction"
        )
    if not is_test.any():
        raise DataError(f"audio-folder ({where}): test_fraction={test_fraction} leaves the test set empty; add clips or raise test_fraction")
    return AudioDataset(waves, labels_arr, is_test, int(rate), tuple(names), "audio-folder", None, tuple(files), where)


def _load_folder(data_dir: Any = None, **kwargs: Any) -> AudioDataset:
    if data_dir is None:
        data_dir = resolve_data_dir(None)
    return load_audio_folder(data_dir, **kwargs)


# The specs helmholtz declares as entry points (group "helmholtz.datasets").
FSDD = DatasetSpec("fsdd", load_fsdd, "audio", "bitrate", "Free Spoken Digit Dataset, 8 kHz speech, 10 digits")
AUDIO_FOLDER = DatasetSpec("audio-folder", _load_folder, "audio", "bitrate", "WAV/FLAC files, one subfolder per class (--data-dir)")
