"""The error contract: bad input raises TypeError / ValueError naming the argument, or DataError naming the file.

One table of cases, each a call, the exception type it must raise and a
regex its message must match (the argument's name and what was expected).
The codec cases run on the ``numpy`` and ``cpu`` backends with the same
table (and on ``cuda`` where a GPU is present); a container one backend
refuses, every backend refuses with the same message, because all of them
are reached through the one validation of containers
(``helmholtz._codec.container.check_components``).
"""

from __future__ import annotations

import dataclasses
import io
import re
from typing import Any, Callable, NamedTuple

import numpy as np
import pytest

from helmholtz import info, jpeg
from helmholtz.errors import BackendUnavailable, DataError
from _gpu import needs_gpu


BACKENDS = ["numpy", "cpu", pytest.param("cuda", marks=[needs_gpu, pytest.mark.cuda])]


class Case(NamedTuple):
    id: str
    call: Callable[..., Any]
    exc: type
    match: str


def _on(x: np.ndarray, backend: str) -> Any:
    """The array where ``backend`` computes (CuPy for cuda)."""
    if backend == "cuda":
        import cupy

        return cupy.asarray(x)
    return x


_RNG = np.random.default_rng(12)
_COLOUR = _RNG.integers(0, 256, (2, 19, 23, 3), dtype=np.uint8)
_GRAY = _RNG.integers(0, 256, (9, 30), dtype=np.uint8)


def _images(backend: str) -> Any:
    return _on(_COLOUR, backend)


def _list(backend: str) -> list:
    return [_on(_COLOUR[0], backend), _on(_GRAY, backend)]


def _container(backend: str) -> jpeg.Coefficients:
    return jpeg.coefficients(_images(backend), 50, backend=backend)


def _with_tables(co: jpeg.Coefficients, value: Any, dtype: Any) -> jpeg.Coefficients:
    tables = np.asarray(co.tables).astype(dtype)
    tables[0, 0, 0, 0] = value
    return dataclasses.replace(co, tables=tables)


# ---- bad containers: every function that takes one, on every backend -------------------------------

_SUBSAMPLING_CHOICES = r"must be one of '4:4:4', '4:2:2', '4:2:0'"

BAD_CONTAINERS = [
    # int32 65537 would wrap to 1 in a uint16 cast (and in the 8-bit DQT encode writes)
    Case("table_65537_int32", lambda co: _with_tables(co, 65537, np.int32), ValueError, r"coefs\.tables entries must be .*1\.\.255.*got 65537"),
    Case("table_256_too_wide_for_dqt", lambda co: _with_tables(co, 256, np.uint16), ValueError, r"coefs\.tables .*1\.\.255.*got 256"),
    Case("table_zero", lambda co: _with_tables(co, 0, np.uint16), ValueError, r"coefs\.tables .*1\.\.255.*got 0"),
    Case("table_negative", lambda co: _with_tables(co, -3, np.int32), ValueError, r"coefs\.tables .*1\.\.255.*got -3"),
    Case("table_nan", lambda co: _with_tables(co, np.nan, np.float64), TypeError, r"coefs\.tables must hold integers"),
    Case("tables_a_list", lambda co: dataclasses.replace(co, tables=np.asarray(co.tables).tolist()), TypeError,
         r"coefs\.tables must be an integer array of shape \(2, 2, 8, 8\)"),
    Case("tables_wrong_shape", lambda co: dataclasses.replace(co, tables=np.asarray(co.tables)[:1]), ValueError,
         r"coefs\.tables must have shape \(2, 2, 8, 8\)"),
    Case("zero_height", lambda co: dataclasses.replace(co, shape=(2, 0, 23, 3)), ValueError, r"coefs\.shape must have every size >= 1"),
    Case("shape_a_list", lambda co: dataclasses.replace(co, shape=list(co.shape)), ValueError, r"coefs\.shape must be an image shape tuple"),
    Case("subsampling_411", lambda co: dataclasses.replace(co, subsampling="4:1:1"), ValueError, r"coefs\.subsampling " + _SUBSAMPLING_CHOICES),
    Case("subsampling_none", lambda co: dataclasses.replace(co, subsampling=None), TypeError, r"coefs\.subsampling " + _SUBSAMPLING_CHOICES),
    Case("components_none", lambda co: dataclasses.replace(co, components=None), TypeError,
         r"coefs\.components must be a tuple of 3 int16 arrays"),
    Case("components_empty", lambda co: dataclasses.replace(co, components=()), ValueError,
         r"coefs\.components holds 0 arrays but image shape \(2, 19, 23, 3\) needs 3"),
    Case("components_int32", lambda co: dataclasses.replace(co, components=(co.components[0].astype("int32"),) + co.components[1:]),
         TypeError, r"coefs\.components\[0\] must have dtype int16"),
    Case("components_wrong_shape", lambda co: dataclasses.replace(co, components=(co.components[0], co.components[1][:, :1]) + co.components[2:]),
         ValueError, r"coefs\.components\[1\] has shape .* expected"),
    Case("not_a_container", lambda co: {"components": co.components}, TypeError, r"coefs must be a helmholtz\.jpeg\.Coefficients"),
]

CONSUMERS = {
    "reconstruct": lambda c, be: jpeg.reconstruct(c, backend=be),
    "encode": lambda c, be: jpeg.encode(c, backend=be),
    "bits": lambda c, be: jpeg.bits(c, backend=be),
    "symbol_frequencies": lambda c, be: jpeg.symbol_frequencies(c, backend=be),
    "zero_fraction": lambda c, be: info.zero_fraction(c),
    "coefficient_entropy": lambda c, be: info.coefficient_entropy(c),
}
# bits and encode read a dict as images; their container cases are the others
_TAKES_ONLY_CONTAINERS = {"reconstruct", "symbol_frequencies", "zero_fraction", "coefficient_entropy"}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("consumer", sorted(CONSUMERS))
@pytest.mark.parametrize("case", BAD_CONTAINERS, ids=[c.id for c in BAD_CONTAINERS])
def test_a_bad_container_is_refused_naming_the_part(case, consumer, backend):
    if case.id == "not_a_container" and consumer not in _TAKES_ONLY_CONTAINERS:
        pytest.skip("bits and encode take images too")
    bad = case.call(_container(backend))
    with pytest.raises(case.exc, match=case.match):
        CONSUMERS[consumer](bad, backend)


@pytest.mark.parametrize("case", BAD_CONTAINERS, ids=[c.id for c in BAD_CONTAINERS])
def test_numpy_and_cpu_refuse_the_same_containers_with_the_same_message(case):
    messages = {}
    for backend in ("numpy", "cpu"):
        with pytest.raises(case.exc) as err:
            jpeg.reconstruct(case.call(_container(backend)), backend=backend)
        messages[backend] = (type(err.value), str(err.value))
    assert messages["numpy"] == messages["cpu"]


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_the_tables_checked_are_those_encode_writes_and_reconstruct_reads(backend):
    """A valid table of any integer dtype works; 255 is the largest step (8-bit DQT)."""
    co = _container(backend)
    ok = _with_tables(co, 255, np.int32)
    jpeg.reconstruct(ok, backend=backend)
    f = jpeg.encode(ok, backend=backend)[0]
    dqt = f.index(b"\xff\xdb")
    assert f[dqt + 5] == 255  # the first (DC) entry of table 0, in zigzag order


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_a_container_may_name_its_subsampling_as_np_str_and_list_its_components(backend):
    co = _container(backend)
    want = jpeg.reconstruct(co, backend=backend)
    as_np_str = dataclasses.replace(co, subsampling=np.str_(co.subsampling), components=list(co.components))
    np.testing.assert_array_equal(jpeg.reconstruct(as_np_str, backend=backend), want)
    assert jpeg.encode(as_np_str, backend=backend) == jpeg.encode(co, backend=backend)
    np.testing.assert_array_equal(jpeg.bits(as_np_str, backend=backend), jpeg.bits(co, backend=backend))


# ---- bad arguments: every codec function that takes them, on every backend --------------------------

# function name -> call(images, backend, **overrides); each takes quality or qualities, subsampling
_Q = {
    "roundtrip": lambda x, be, quality=50, **kw: jpeg.roundtrip(x, quality, backend=be, **kw),
    "coefficients": lambda x, be, quality=50, **kw: jpeg.coefficients(x, quality, backend=be, **kw),
    "bits": lambda x, be, quality=50, **kw: jpeg.bits(x, quality, backend=be, **kw),
    "encode": lambda x, be, quality=50, **kw: jpeg.encode(x, quality, backend=be, **kw),
    "roundtrip_float": lambda x, be, quality=50, **kw: jpeg.roundtrip_float(x, quality, backend=be, **kw),
    "info.scan_bits_per_pixel": lambda x, be, quality=50, **kw: info.scan_bits_per_pixel(x, quality, backend=be, **kw),
    "info.file_bits_per_pixel": lambda x, be, quality=50, **kw: info.file_bits_per_pixel(x, quality, backend=be, **kw),
}
_MANY = {
    "roundtrip_many": lambda x, be, qualities=(5, 50), **kw: jpeg.roundtrip_many(x, qualities, backend=be, **kw),
    "coefficients_many": lambda x, be, qualities=(5, 50), **kw: jpeg.coefficients_many(x, qualities, backend=be, **kw),
    "bits_many": lambda x, be, qualities=(5, 50), **kw: jpeg.bits_many(x, qualities, backend=be, **kw),
    "info.dataset_report": lambda x, be, qualities=(5, 50), **kw: info.dataset_report(x, qualities, backend=be, **kw),
}
_RAGGED = {"roundtrip", "coefficients", "bits", "encode", "roundtrip_many", "bits_many"}  # these take lists too
_NO_THREADS = {"info.scan_bits_per_pixel", "info.file_bits_per_pixel", "info.dataset_report"}

_QUALITY_RANGE = r"quality must be in 1\.\.100; got "
_QUALITIES_RANGE = r"qualities must be in 1\.\.100; got "
_THREADS_RANGE = r"num_threads must be None or an int in 1\.\.4096; got 2147483648"
_SUBSAMPLING = r"subsampling must be None \(Pillow's default\) or one of '4:4:4', '4:2:2', '4:2:0'; got "


def _argument_cases() -> list[Case]:
    cases = []
    for name, fn in {**_Q, **_MANY}.items():
        for ragged in ((False, True) if name in _RAGGED else (False,)):
            make = _list if ragged else _images
            tag = f"{name}{'[list]' if ragged else ''}"

            def call(be, fn=fn, make=make, **kw):
                return fn(make(be), be, **kw)

            if name in _Q:
                cases += [
                    # 2**63 overflows int64: the message names quality and its range, not OverflowError
                    Case(f"{tag}-quality_2**63", lambda be, c=call: c(be, quality=2**63), ValueError, _QUALITY_RANGE + "9223372036854775808"),
                    Case(f"{tag}-quality_0", lambda be, c=call: c(be, quality=0), ValueError, _QUALITY_RANGE + "0"),
                    Case(f"{tag}-per_image_quality_2**63", lambda be, c=call: c(be, quality=[2**63, 50]), ValueError,
                         _QUALITY_RANGE + "9223372036854775808"),
                    Case(f"{tag}-per_image_quality_uint64", lambda be, c=call: c(be, quality=np.array([2**63, 5], np.uint64)),
                         ValueError, _QUALITY_RANGE + "9223372036854775808"),
                    Case(f"{tag}-quality_float", lambda be, c=call: c(be, quality=50.0), TypeError, r"quality must be an int in 1\.\.100"),
                    Case(f"{tag}-quality_per_image_count", lambda be, c=call: c(be, quality=[5, 6, 7]), ValueError,
                         r"quality has 3 entries but there are 2 images"),
                ]
            else:
                cases += [
                    Case(f"{tag}-qualities_2**63", lambda be, c=call: c(be, qualities=[2**63]), ValueError, _QUALITIES_RANGE),
                    Case(f"{tag}-qualities_empty", lambda be, c=call: c(be, qualities=[]), ValueError, r"qualities must be a non-empty"),
                ]
            if name not in _NO_THREADS:
                cases.append(Case(f"{tag}-num_threads_2**31", lambda be, c=call: c(be, num_threads=2**31), ValueError, _THREADS_RANGE))
                cases.append(Case(f"{tag}-num_threads_zero", lambda be, c=call: c(be, num_threads=0), ValueError,
                                  r"num_threads must be None or an int in 1\.\.4096; got 0"))
            cases += [
                Case(f"{tag}-subsampling_411", lambda be, c=call: c(be, subsampling="4:1:1"), ValueError, _SUBSAMPLING + "'4:1:1'"),
                Case(f"{tag}-subsampling_int", lambda be, c=call: c(be, subsampling=5), TypeError, _SUBSAMPLING + "5"),
                Case(f"{tag}-subsampling_bytes", lambda be, c=call: c(be, subsampling=b"4:2:0"), TypeError, _SUBSAMPLING + "b'4:2:0'"),
            ]
    cases += [
        Case("bits-container_and_quality", lambda be: jpeg.bits(_container(be), 50, backend=be), ValueError,
             r"quality must be None when a Coefficients container is given"),
        Case("encode-container_other_subsampling", lambda be: jpeg.encode(_container(be), subsampling="4:4:4", backend=be), ValueError,
             r"subsampling='4:4:4' does not fit the Coefficients container"),
        Case("bits-container_bad_subsampling", lambda be: jpeg.bits(_container(be), subsampling=7, backend=be), TypeError, _SUBSAMPLING + "7"),
        Case("bits-no_quality", lambda be: jpeg.bits(_images(be), backend=be), TypeError, r"quality is required when images are given"),
        Case("encode-list_mixing_images_and_containers", lambda be: jpeg.encode([_container(be), _COLOUR[0]], backend=be), TypeError,
             r"images_or_coefficients must be a list of images or a list of Coefficients containers"),
        Case("reconstruct-num_threads_2**31", lambda be: jpeg.reconstruct(_container(be), num_threads=2**31, backend=be), ValueError,
             _THREADS_RANGE),
        Case("symbol_frequencies-num_threads_2**31", lambda be: jpeg.symbol_frequencies(_container(be), num_threads=2**31, backend=be),
             ValueError, _THREADS_RANGE),
        Case("encode-optimize_not_bool", lambda be: jpeg.encode(_images(be), 50, optimize="yes", backend=be), TypeError,
             r"optimize must be True or False"),
        Case("roundtrip-images_float", lambda be: jpeg.roundtrip(_images(be).astype("float32"), 50, backend=be), TypeError,
             r"images must have dtype uint8"),
        Case("roundtrip-empty_list", lambda be: jpeg.roundtrip([], 50, backend=be), ValueError, r"images is an empty list"),
    ]
    return cases


ARGUMENT_CASES = _argument_cases()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ARGUMENT_CASES, ids=[c.id for c in ARGUMENT_CASES])
def test_a_bad_argument_is_refused_naming_it(case, backend):
    if backend == "cuda" and case.id.startswith("info.dataset_report"):
        pytest.skip("dataset_report takes host images")
    with pytest.raises(case.exc, match=case.match):
        case.call(backend)


HOST_CASES = [
    Case("quant_tables-quality_2**63", lambda: jpeg.quant_tables(2**63), ValueError, _QUALITY_RANGE + "9223372036854775808"),
    Case("quant_tables-baseline_not_bool", lambda: jpeg.quant_tables(50, baseline=1), TypeError, r"baseline must be True or False"),
    Case("backend-unknown_name", lambda: jpeg.roundtrip(_COLOUR, 50, backend="gpu"), ValueError, r"backend must be 'auto' or one of"),
    Case("backend-not_a_string", lambda: jpeg.roundtrip(_COLOUR, 50, backend=None), TypeError, r"backend must be a string"),
]


@pytest.mark.parametrize("case", HOST_CASES, ids=[c.id for c in HOST_CASES])
def test_a_bad_argument_without_a_backend_is_refused_naming_it(case):
    with pytest.raises(case.exc, match=case.match):
        case.call()


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("name", sorted(_Q) + sorted(_MANY))
def test_subsampling_given_as_np_str_is_the_string_it_is(name, backend):
    fn = {**_Q, **_MANY}[name]
    if name == "info.dataset_report":
        got, want = fn(_COLOUR, backend, subsampling=np.str_("4:2:2")), fn(_COLOUR, backend, subsampling="4:2:2")
        assert got.equals(want)
        return
    got, want = fn(_COLOUR, backend, subsampling=np.str_("4:2:2")), fn(_COLOUR, backend, subsampling="4:2:2")
    if name == "encode":
        assert got == want
    elif name.startswith("coefficients"):
        for a, b in zip(got if isinstance(got, list) else [got], want if isinstance(want, list) else [want]):
            assert type(a.subsampling) is str and a.subsampling == "4:2:2"
            for x, y in zip(a.components, b.components):
                np.testing.assert_array_equal(x, y)
    else:
        np.testing.assert_array_equal(got, want)
    if name in _RAGGED:  # lists too, where one C call types its subsampling as str
        lst = [_COLOUR[0], _GRAY]
        got = fn(lst, backend, subsampling=np.str_("4:2:2"))
        want = fn(lst, backend, subsampling="4:2:2")
        if name == "encode":
            assert got == want
        elif name != "coefficients":
            for a, b in zip(got, want):
                np.testing.assert_array_equal(a, b)


# ---- loaders: a damaged file is a DataError naming it ------------------------------------------------

def _fsdd_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(
        buf, audio=np.arange(800, dtype=np.int16), offsets=np.array([0, 400]), lengths=np.array([400, 400]),
        labels=np.array([1, 2]), index=np.array([0, 7]), speaker=np.array([0, 1]), sample_rate=np.array(8000),
    )
    return buf.getvalue()


def _images_npz_bytes(shape: tuple) -> bytes:
    buf = io.BytesIO()
    x = np.zeros((4,) + shape, np.uint8)
    np.savez_compressed(buf, x_train=x, y_train=np.arange(4) % 10, x_test=x[:2], y_test=np.arange(2))
    return buf.getvalue()


def _truncated(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


def _corrupt(raw: bytes) -> bytes:
    """The compressed data of the first member scrambled, the zip directory intact."""
    out = bytearray(raw)
    for i in range(60, 90):
        out[i] ^= 0x5A
    return bytes(out)


def _fsdd(tmp_path, raw):
    from helmholtz._data.audio import load_fsdd

    (tmp_path / "fsdd.npz").write_bytes(raw)
    return load_fsdd(tmp_path)


def _cifar(tmp_path, raw):
    from helmholtz._data.images import load_cifar10

    (tmp_path / "cifar10.npz").write_bytes(raw)
    return load_cifar10(tmp_path)


def _mnist(tmp_path, raw):
    from helmholtz._data.images import load_mnist

    (tmp_path / "mnist.npz").write_bytes(raw)
    return load_mnist(tmp_path)


LOADER_CASES = [
    Case("fsdd-truncated", lambda t: _fsdd(t, _truncated(_fsdd_bytes())), DataError, r"fsdd: '.*fsdd\.npz' is not a readable \.npz file"),
    Case("fsdd-empty", lambda t: _fsdd(t, b""), DataError, r"fsdd: '.*fsdd\.npz' is not a readable \.npz file"),
    Case("fsdd-corrupt_member", lambda t: _fsdd(t, _corrupt(_fsdd_bytes())), DataError, r"fsdd: '.*fsdd\.npz'"),
    Case("cifar10-truncated", lambda t: _cifar(t, _truncated(_images_npz_bytes((32, 32, 3)))), DataError,
         r"cifar10: '.*cifar10\.npz' is not a readable \.npz file"),
    Case("cifar10-corrupt_member", lambda t: _cifar(t, _corrupt(_images_npz_bytes((32, 32, 3)))), DataError, r"cifar10: '.*cifar10\.npz'"),
    Case("mnist-truncated", lambda t: _mnist(t, _truncated(_images_npz_bytes((28, 28)))), DataError,
         r"mnist: '.*mnist\.npz' is not a readable \.npz file"),
]


@pytest.mark.parametrize("case", LOADER_CASES, ids=[c.id for c in LOADER_CASES])
def test_a_damaged_data_file_is_a_data_error_naming_the_file(case, tmp_path):
    with pytest.raises(case.exc, match=case.match) as err:
        case.call(tmp_path)
    assert str(tmp_path) in str(err.value)
    assert not isinstance(err.value.__context__, AssertionError)


def test_the_intact_files_of_the_loader_cases_load(tmp_path):
    """The damaged files above are damaged versions of files that load."""
    assert len(_fsdd(tmp_path, _fsdd_bytes())) == 2
    assert _cifar(tmp_path, _images_npz_bytes((32, 32, 3))).image_shape == (32, 32, 3)
    assert _mnist(tmp_path, _images_npz_bytes((28, 28))).image_shape == (28, 28, 1)


# ---- devices -------------------------------------------------------------------------------------------

torch = pytest.importorskip("torch")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")


def _device_dataset(device):
    from helmholtz.transforms import DeviceDataset

    return DeviceDataset(np.zeros((2, 4, 4, 3), np.uint8), [0, 1], 2, device=device)


def _compress_many(device):
    from helmholtz.transforms import compress_many

    return compress_many(np.zeros((2, 8, 8, 3), np.uint8), [50], device=device)


DEVICE_CASES = [
    Case("DeviceDataset-cuda_without_cuda", lambda: _device_dataset("cuda"), BackendUnavailable,
         r"device='cuda' needs CUDA, which is unavailable here"),
    Case("DeviceDataset-cuda_index_without_cuda", lambda: _device_dataset("cuda:1"), BackendUnavailable, r"device='cuda:1' needs CUDA"),
    Case("compress_many-cuda_without_cuda", lambda: _compress_many("cuda"), BackendUnavailable, r"device='cuda' needs CUDA"),
]


@no_cuda
@pytest.mark.parametrize("case", DEVICE_CASES, ids=[c.id for c in DEVICE_CASES])
def test_a_cuda_device_without_cuda_is_refused_naming_device(case):
    with pytest.raises(case.exc, match=case.match):
        case.call()


@pytest.mark.parametrize(
    "device, exc, match",
    [
        ("tpu", ValueError, r"device='tpu' is not a torch device name"),
        ("cuda:x", ValueError, r"device='cuda:x' is not a torch device name"),
        (None, TypeError, r"device must be a device name such as 'cpu' or 'cuda'"),
        (1.5, TypeError, r"device must be a device name"),
    ],
)
def test_a_device_that_is_no_device_is_refused_naming_device(device, exc, match):
    with pytest.raises(exc, match=match):
        _device_dataset(device)


def test_every_case_names_an_argument_or_file():
    """The table itself: each regex names what was wrong (an argument, a container part or a file)."""
    named = re.compile(r"coefs|quality|qualities|num_threads|subsampling|optimize|images|backend|baseline|device|npz")
    for case in BAD_CONTAINERS + ARGUMENT_CASES + HOST_CASES + LOADER_CASES + DEVICE_CASES:
        assert named.search(case.match), case.id
