"""Reading data files that may be corrupt or hostile: size limits, archives, a restricted unpickler.

Every reader here checks what a file *declares* it will expand to before it
expands it, and turns every failure of the format libraries (``zipfile``,
``gzip``/``zlib``, ``tarfile``, ``pickle``, Pillow) into a
:class:`helmholtz.errors.DataError` that names the file and what was expected.

Two limits apply, each set by an environment variable:

``HELMHOLTZ_MAX_BYTES``
    The most bytes one data file may expand to when read: the arrays read
    from one ``.npz`` (their declared sizes together), one gunzipped file,
    one tar member, one decoded audio file. Default :data:`DEFAULT_MAX_BYTES`
    (4 GiB), above every data set helmholtz names (CIFAR-10's ``.npz`` holds
    184 MB). Set it in the environment to raise or lower it.
``HELMHOLTZ_MAX_MEMORY_BYTES``
    The most bytes of pixels a data set loaded *into memory* may decode to
    (a folder of images, all files together; the sizes are read from the
    files' headers before anything is decoded). Default
    :data:`DEFAULT_MAX_MEMORY_BYTES` (2 GiB). Larger sets are read through
    readers and ``helmholtz prepare``, which stream and have no such limit.
``HELMHOLTZ_MAX_IMAGE_PIXELS``
    The most pixels (width x height) one image file may decode to. Default
    :data:`DEFAULT_MAX_IMAGE_PIXELS`, Pillow's own default
    ``PIL.Image.MAX_IMAGE_PIXELS``. Pillow's decompression-bomb guard (which
    refuses twice its own limit) is reported as a DataError too; to read
    larger images raise both.

The limits are read at every call, so a change to the environment applies
at once.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import DataError

__all__ = [
    "MAX_BYTES_ENV",
    "MAX_IMAGE_PIXELS_ENV",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "max_bytes",
    "max_image_pixels",
    "MAX_MEMORY_BYTES_ENV",
    "DEFAULT_MAX_MEMORY_BYTES",
    "max_memory_bytes",
    "check_memory_size",
    "check_expanded_size",
    "read_npz",
    "gunzip",
    "read_tar_members",
    "load_cifar_pickle",
    "CIFAR_PICKLE_GLOBALS",
]

#: Environment variable: the most bytes one data file may expand to.
MAX_BYTES_ENV = "HELMHOLTZ_MAX_BYTES"
#: Environment variable: the most pixels one image may have.
MAX_IMAGE_PIXELS_ENV = "HELMHOLTZ_MAX_IMAGE_PIXELS"
#: Default of ``HELMHOLTZ_MAX_BYTES``: 4 GiB.
DEFAULT_MAX_BYTES = 4 << 30
#: Environment variable: the most bytes a data set held in memory may decode to.
MAX_MEMORY_BYTES_ENV = "HELMHOLTZ_MAX_MEMORY_BYTES"
#: Default of ``HELMHOLTZ_MAX_MEMORY_BYTES``: 2 GiB.
DEFAULT_MAX_MEMORY_BYTES = 2 << 30
#: Default of ``HELMHOLTZ_MAX_IMAGE_PIXELS``: Pillow's ``MAX_IMAGE_PIXELS`` (about 89 million).
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485

_CHUNK = 1 << 20
# The official CIFAR-10 archive holds 8 entries; a tar that has many more is not it (and walking
# the headers of a tar bomb would never end).
_MAX_TAR_MEMBERS = 256


def _limit(env: str, default: int) -> int:
    text = os.environ.get(env, "").strip()
    if not text:
        return default
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise ValueError(f"{env} must be a positive whole number; got {text!r}") from None
    if value < 1:
        raise ValueError(f"{env} must be a positive whole number; got {text!r}")
    return value


def max_bytes() -> int:
    """The current ``HELMHOLTZ_MAX_BYTES`` (bytes one data file may expand to).

    Raises
    ------
    ValueError
        If the variable is set but is not a positive integer.
    """
    return _limit(MAX_BYTES_ENV, DEFAULT_MAX_BYTES)


def max_image_pixels() -> int:
    """The current ``HELMHOLTZ_MAX_IMAGE_PIXELS`` (width x height one image may have).

    Raises
    ------
    ValueError
        If the variable is set but is not a positive integer.
    """
    return _limit(MAX_IMAGE_PIXELS_ENV, DEFAULT_MAX_IMAGE_PIXELS)


def max_memory_bytes() -> int:
    """The current ``HELMHOLTZ_MAX_MEMORY_BYTES`` (bytes a data set held in memory may decode to).

    Raises
    ------
    ValueError
        If the variable is set but is not a positive integer.
    """
    return _limit(MAX_MEMORY_BYTES_ENV, DEFAULT_MAX_MEMORY_BYTES)


def check_memory_size(nbytes: int, where: Any, how: str = "") -> None:
    """Refuse to load ``where`` into memory if its pixels would take more than :func:`max_memory_bytes`.

    Raises
    ------
    DataError
        Naming the data set, its size, the limit, the variable that sets it
        and ``how`` to read it without holding it (``helmholtz prepare``).
    """
    limit = max_memory_bytes()
    if nbytes > limit:
        raise DataError(
            f"{where} would decode to {nbytes:,} bytes of pixels in memory, over the limit of {limit:,} ({MAX_MEMORY_BYTES_ENV}); "
            + (how or "prepare it once with helmholtz prepare and read the prepared set, which streams from disk")
        )


def check_expanded_size(nbytes: int, path: Any, what: str = "its contents") -> None:
    """Refuse ``path`` if ``what`` would expand to more than :func:`max_bytes`.

    Raises
    ------
    DataError
        Naming the file, the size, the limit and the variable that sets it.
    """
    limit = max_bytes()
    if nbytes > limit:
        raise DataError(
            f"{str(path)!r}: {what} would expand to {nbytes:,} bytes, over the limit of {limit:,} "
            f"(a decompression bomb, or set {MAX_BYTES_ENV} higher if the file is genuine)"
        )


# ---------------------------------------------------------------- .npz
# NumPy parses a .npy header as a Python literal: a damaged one fails in the tokenizer or the parser.
_NPY_HEADER_ERRORS = (ValueError, SyntaxError, TypeError, KeyError, IndexError, tokenize.TokenError)


def _npy_declared_bytes(fp: Any) -> int:
    """Bytes the array of an ``.npy`` stream declares in its header (read from the header only)."""
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
    else:
        raise ValueError(f".npy format version {version} is not one of (1, 0), (2, 0)")
    if dtype.hasobject:
        raise ValueError("it holds Python objects (pickled data), which are never loaded")
    return int(np.prod(shape, dtype=object)) * dtype.itemsize


def read_npz(path: Any, keys: Sequence[str], optional: Sequence[str] = (), what: str = "data") -> dict[str, np.ndarray]:
    """The arrays ``keys`` (and those of ``optional`` that exist) of the ``.npz`` at ``path``.

    Before anything is decompressed, the declared size of every array read
    (from each member's ``.npy`` header) is checked against the member and
    against :func:`max_bytes`. Pickled (object) arrays are never loaded.

    Parameters
    ----------
    path : path
    keys : list of str
        Arrays that must be there.
    optional : list of str
        Arrays read when present.
    what : str
        What the file is, for messages (e.g. ``"cifar10"``).

    Raises
    ------
    DataError
        The file is missing, not a zip archive, truncated or corrupt (bad
        CRC, bad deflate stream, bad ``.npy`` header), lacks one of ``keys``,
        or would expand beyond the limit.
    """
    path = Path(path)
    expected = f"a .npz archive holding {', '.join(keys)}"
    if not path.is_file():
        raise DataError(f"{what}: {str(path)!r} does not exist; expected {expected}")
    try:
        with zipfile.ZipFile(path) as zf:
            members = {info.filename[:-4]: info for info in zf.infolist() if info.filename.endswith(".npy")}
            missing = [k for k in keys if k not in members]
            if missing:
                raise DataError(f"{what}: {str(path)!r} lacks array(s) {', '.join(missing)}; expected {expected}")
            wanted = list(keys) + [k for k in optional if k in members]
            declared = 0
            for key in wanted:
                info = members[key]
                with zf.open(info) as fp:
                    try:
                        nbytes = _npy_declared_bytes(fp)
                    except _NPY_HEADER_ERRORS as exc:
                        raise DataError(f"{what}: array {key} in {str(path)!r} has a bad .npy header ({exc})") from exc
                    held = info.file_size - fp.tell()
                if nbytes > held:
                    raise DataError(f"{what}: array {key} in {str(path)!r} declares {nbytes:,} bytes but its member holds {held:,}; the file is corrupt")
                declared += nbytes
            check_expanded_size(declared, path, f"the arrays {', '.join(wanted)}")
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in wanted}
    except DataError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError, MemoryError, NotImplementedError) as exc:
        # NotImplementedError: zipfile's answer to a damaged compression method or version field
        raise DataError(f"{what}: {str(path)!r} is not a readable .npz file, truncated or corrupt ({type(exc).__name__}: {exc}); expected {expected}") from exc


# ---------------------------------------------------------------- gzip
def gunzip(path: Any, what: str = "data") -> bytes:
    """The decompressed bytes of the gzip file ``path``, never more than :func:`max_bytes`.

    Raises
    ------
    DataError
        The file is not gzip, truncated or corrupt, or expands beyond the limit.
    """
    limit = max_bytes()
    out = bytearray()
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                out += chunk
                if len(out) > limit:
                    check_expanded_size(len(out), path, "the gzip stream")
    except DataError:
        raise
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{what}: {str(path)!r} is not a readable gzip file, truncated or corrupt ({type(exc).__name__}: {exc})") from exc
    return bytes(out)


# ---------------------------------------------------------------- tar
def read_tar_members(archive: Any, names: Iterable[str], what: str = "data") -> dict[str, bytes]:
    """The bytes of the regular-file members ``names`` of the (possibly gzipped) tar ``archive``.

    Each member's declared size is checked against :func:`max_bytes` before
    it is read, and so is their sum; links, devices and other non-files are
    refused, and so are a wanted member that appears twice and an archive
    with more than 256 entries.

    Raises
    ------
    DataError
        The archive is unreadable, truncated or corrupt, a member is missing
        or not a regular file, or the members would expand beyond the limit.
    """
    wanted = set(names)
    found: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for count, member in enumerate(iter(tar.next, None)):
                if count >= _MAX_TAR_MEMBERS:
                    raise DataError(f"{what}: {str(archive)!r} has more than {_MAX_TAR_MEMBERS} entries; it is not the expected archive")
                if member.name not in wanted:
                    continue
                if member.name in found:  # tar lets a later copy win; which one is meant is unclear
                    raise DataError(f"{what}: {member.name} appears twice in {str(archive)!r}")
                if not member.isfile():
                    raise DataError(f"{what}: {member.name} in {str(archive)!r} is not a regular file")
                total += member.size
                check_expanded_size(member.size, archive, f"member {member.name}")
                check_expanded_size(total, archive, "the members read")
                f = tar.extractfile(member)
                assert f is not None  # a regular file always has contents
                found[member.name] = f.read()
    except DataError:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{what}: {str(archive)!r} is not a readable tar archive, truncated or corrupt ({type(exc).__name__}: {exc})") from exc
    missing = sorted(wanted - set(found))
    if missing:
        raise DataError(f"{what}: {str(archive)!r} lacks {', '.join(missing)}")
    return found


# ---------------------------------------------------------------- CIFAR pickles
def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # Python 3 pickles bytes at protocols 0-2 as _codecs.encode(text, "latin1"); only that is allowed.
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise DataError(f"_codecs.encode with encoding {encoding!r} is not allowed in a CIFAR batch")
    return text.encode("latin1", errors)


def _numpy_pickle_names() -> dict[tuple[str, str], Any]:
    # The functions NumPy's own pickles name, found through NumPy's public reduce methods so that
    # NumPy 1 (numpy.core) and NumPy 2 (numpy._core) spellings both map to the functions at hand.
    reconstruct = np.zeros(1).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    scalar = np.int64(0).__reduce__()[0]  # a NumPy integer label, e.g. list(rng.integers(...))
    names: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        names[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        names[(f"{core}.multiarray", "scalar")] = scalar
        names[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return names


#: The only globals a CIFAR batch pickle may name: NumPy's array and scalar reconstruction
#: (``ndarray``, ``dtype``, ``_reconstruct``, ``_frombuffer``, ``scalar``, under ``numpy.core`` or
#: ``numpy._core``) and ``_codecs.encode`` (latin-1 only). Dicts, lists, bytes, str and ints need no global.
CIFAR_PICKLE_GLOBALS: frozenset[tuple[str, str]] = frozenset(set(_numpy_pickle_names()) | {("_codecs", "encode")})


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`CIFAR_PICKLE_GLOBALS`; anything else is refused unrun."""

    _names = {**_numpy_pickle_names(), ("_codecs", "encode"): _latin1_encode}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._names[(module, name)]
        except KeyError:
            raise DataError(f"global {module}.{name} is not allowed in a CIFAR batch") from None

    def persistent_load(self, pid: Any) -> Any:
        raise DataError("persistent references are not allowed in a CIFAR batch")


def load_cifar_pickle(data: bytes, where: str, what: str = "cifar10") -> Any:
    """Unpickle one CIFAR-10 batch (``bytes`` keys, as the official Python 2 files hold).

    Only the globals in :data:`CIFAR_PICKLE_GLOBALS` are resolved, so a
    crafted pickle that names any other callable (``os.system``,
    ``builtins.eval``, ...) fails before anything runs.

    Raises
    ------
    DataError
        Naming ``where``, for a refused global or any corrupt pickle.
    """
    try:
        return _CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
    except DataError as exc:  # raised by find_class: nothing the pickle names has been called
        raise DataError(f"{what}: {where} is not a CIFAR batch pickle, refused unread ({exc})") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError, OverflowError) as exc:
        raise DataError(f"{what}: {where} is a truncated or corrupt pickle ({type(exc).__name__}: {exc})") from exc
