"""The codec as torch custom ops (torch.ops.helmholtz.*): results, fake kernels, torch.compile, torch.export."""

import io
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from helmholtz import jpeg
from helmholtz.transforms import JPEG, jpeg_tensor, register_ops

hz = register_ops()

SUBSAMPLINGS = ["4:2:0", "4:2:2", "4:4:4"]


def pillow(img_hwc: np.ndarray, q: int, subsampling: str = "4:2:0") -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img_hwc.squeeze(-1) if img_hwc.shape[-1] == 1 else img_hwc).save(buf, "JPEG", quality=q, subsampling=subsampling)
    return np.asarray(Image.open(buf)).reshape(img_hwc.shape)


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (4, 1, 1, 3))
    ramp = np.linspace(0, 80, 19 * 21).reshape(1, 19, 21, 1)
    noise = rng.integers(-30, 30, (4, 19, 21, 3))
    return torch.from_numpy(np.clip(base + ramp + noise, 0, 255).astype(np.uint8))


QUALITIES = torch.tensor([3, 20, 50, 95], dtype=torch.int32)


def test_importing_helmholtz_and_its_faces_does_not_import_torch():
    code = "import sys, helmholtz, helmholtz.jpeg, helmholtz.transforms; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr


def test_every_op_is_registered_in_the_helmholtz_namespace_with_its_schema():
    names = ["roundtrip", "roundtrip_many", "roundtrip_float", "coefficients", "reconstruct", "bits", "jpeg"]
    for name in names:
        schema = getattr(hz, name).default._schema
        assert schema.name == f"helmholtz::{name}"
    assert register_ops() is hz  # registering twice is harmless


@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
def test_roundtrip_op_equals_pillow_for_each_image_and_quality(images, subsampling):
    out = hz.roundtrip(images, QUALITIES, subsampling)
    assert out.dtype == torch.uint8 and out.shape == images.shape
    for i, q in enumerate(QUALITIES.tolist()):
        np.testing.assert_array_equal(out[i].numpy(), pillow(images[i].numpy(), q, subsampling))


def test_roundtrip_op_takes_one_quality_for_all_grayscale_and_single_images(images):
    gray = images[..., :1].contiguous()
    out = hz.roundtrip(gray, torch.tensor(30))
    for i in range(len(gray)):
        np.testing.assert_array_equal(out[i].numpy(), pillow(gray[i].numpy(), 30))
    single = hz.roundtrip(images[1], torch.tensor(40))
    np.testing.assert_array_equal(single.numpy(), pillow(images[1].numpy(), 40))


def test_roundtrip_many_op_equals_roundtrip_at_each_quality(images):
    out = hz.roundtrip_many(images, torch.tensor([5, 75]))
    assert out.shape == (2,) + tuple(images.shape)
    for k, q in enumerate([5, 75]):
        np.testing.assert_array_equal(out[k].numpy(), jpeg.roundtrip(images.numpy(), q))


def test_roundtrip_float_op_equals_jpeg_roundtrip_float_with_normalisation_and_bfloat16(images):
    out = hz.roundtrip_float(images, QUALITIES, "4:2:0", None, [0.5, 0.4, 0.3], [0.2, 0.25, 0.3])
    ref = jpeg.roundtrip_float(images.numpy(), QUALITIES.numpy(), mean=[0.5, 0.4, 0.3], std=[0.2, 0.25, 0.3])
    assert out.dtype == torch.float32 and out.shape == (4, 3, 19, 21)
    np.testing.assert_array_equal(out.numpy(), ref)
    bf = hz.roundtrip_float(images, QUALITIES, dtype=torch.bfloat16)
    assert bf.dtype == torch.bfloat16
    assert torch.equal(bf, torch.from_numpy(jpeg.roundtrip_float(images.numpy(), QUALITIES.numpy())).to(torch.bfloat16))


@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
def test_coefficients_op_equals_jpeg_coefficients_and_reconstruct_op_decodes_them(images, subsampling):
    comps = hz.coefficients(images, QUALITIES, subsampling)
    ref = jpeg.coefficients(images.numpy(), QUALITIES.numpy(), subsampling=subsampling)
    assert len(comps) == 3
    for got, want in zip(comps, ref.components):
        assert got.dtype == torch.int16
        np.testing.assert_array_equal(got.numpy(), want)
    tables = torch.from_numpy(ref.tables.astype(np.int32))
    pixels = hz.reconstruct(comps, tables, 19, 21, subsampling)
    np.testing.assert_array_equal(pixels.numpy(), jpeg.roundtrip(images.numpy(), QUALITIES.numpy(), subsampling=subsampling))


def test_reconstruct_op_refuses_coefficients_no_baseline_encoder_produces(images):
    comps = [c.clone() for c in hz.coefficients(images, QUALITIES)]
    tables = torch.from_numpy(jpeg.coefficients(images.numpy(), QUALITIES.numpy()).tables.astype(np.int32))
    comps[0][0, 0, 0, 0, 0] = 30000
    with pytest.raises(ValueError, match="outside the range"):
        hz.reconstruct(comps, tables, 19, 21)
    with pytest.raises(ValueError, match="tables"):
        hz.reconstruct(hz.coefficients(images, QUALITIES), torch.zeros_like(tables), 19, 21)


@pytest.mark.parametrize("optimize", [False, True])
def test_bits_op_equals_jpeg_bits(images, optimize):
    out = hz.bits(images, QUALITIES, "4:2:0", optimize)
    assert out.dtype == torch.int64
    np.testing.assert_array_equal(out.numpy(), jpeg.bits(images.numpy(), QUALITIES.numpy(), optimize=optimize))


def test_jpeg_op_compresses_channels_first_images_and_leaves_quality_zero_unchanged(images):
    x = images.permute(0, 3, 1, 2)
    out = hz.jpeg(x, torch.tensor([0, 20, 0, 80]))
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert torch.equal(out[0], x[0]) and torch.equal(out[2], x[2])
    for i, q in [(1, 20), (3, 80)]:
        np.testing.assert_array_equal(out[i].permute(1, 2, 0).numpy(), pillow(images[i].numpy(), q))
    xf = x.double() / 255
    outf = hz.jpeg(xf, torch.tensor([0, 20, 0, 80]))
    assert outf.dtype == torch.float64 and torch.equal(outf[0], xf[0])
    np.testing.assert_array_equal(outf[1].numpy() * 255, out[1].double().numpy())


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda x: hz.roundtrip(x.float(), torch.tensor(20)), TypeError, "uint8"),
        (lambda x: hz.roundtrip(x, torch.tensor(0)), ValueError, "quality"),
        (lambda x: hz.roundtrip(x, torch.tensor(20.0)), TypeError, "integer"),
        (lambda x: hz.roundtrip(x, torch.tensor([20, 30])), ValueError, "quality"),
        (lambda x: hz.roundtrip(x, torch.tensor(20), "4:1:1"), ValueError, "subsampling"),
        (lambda x: hz.roundtrip(x[..., :2], torch.tensor(20)), ValueError, "channels"),
        (lambda x: hz.jpeg(x, torch.tensor(20)), ValueError, r"\(C, H, W\)"),
        (lambda x: hz.jpeg(x.permute(0, 3, 1, 2).float().fill_(float("nan")), torch.tensor(20)), ValueError, "NaN"),
        (lambda x: hz.jpeg(x.permute(0, 3, 1, 2), torch.tensor(101)), ValueError, "quality"),
    ],
)
def test_ops_refuse_bad_arguments_naming_them(images, call, exc, match):
    with pytest.raises(exc, match=match):
        call(images)


def _op_cases(images):
    x = images
    comps = hz.coefficients(x, QUALITIES)
    tables = torch.from_numpy(jpeg.coefficients(x.numpy(), QUALITIES.numpy()).tables.astype(np.int32))
    xf = (x.permute(0, 3, 1, 2).double() / 255).requires_grad_()
    return {
        "roundtrip": (x, QUALITIES, "4:2:0"),
        "roundtrip_many": (x, torch.tensor([10, 90]), "4:4:4"),
        "roundtrip_float": (x, QUALITIES, "4:2:2", torch.float32, [0.5], [0.25]),
        "coefficients": (x, QUALITIES, "4:2:0"),
        "reconstruct": (comps, tables, 19, 21, "4:2:0"),
        "bits": (x, QUALITIES, "4:2:0", True),
        "jpeg": (xf, torch.tensor([0, 20, 40, 60]), "4:2:0"),
    }


@pytest.mark.parametrize("name", ["roundtrip", "roundtrip_many", "roundtrip_float", "coefficients", "reconstruct", "bits", "jpeg"])
def test_torch_library_opcheck_passes_for_each_op(images, name):
    # schema, fake kernel against the real one, autograd registration, AOT dispatch
    torch.library.opcheck(getattr(hz, name).default, _op_cases(images)[name])


def test_fake_kernels_give_the_shapes_and_dtypes_of_the_real_ones(images):
    from torch._subclasses.fake_tensor import FakeTensorMode

    cases = _op_cases(images)
    real = {name: getattr(hz, name)(*args) for name, args in cases.items()}
    with FakeTensorMode() as mode:
        for name, args in cases.items():
            fake_args = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else [mode.from_tensor(t) for t in a] if isinstance(a, list) and a and isinstance(a[0], torch.Tensor) else a for a in args]
            fake = getattr(hz, name)(*fake_args)
            want = real[name] if isinstance(real[name], list) else [real[name]]
            got = fake if isinstance(fake, list) else [fake]
            assert [(t.shape, t.dtype) for t in got] == [(t.shape, t.dtype) for t in want], name


def test_torch_compile_fullgraph_with_inductor_equals_eager_and_follows_new_batch_sizes(images):
    def pipeline(x, q):
        y = hz.jpeg(x, q)  # the transform's op, then ordinary tensor code around the codec
        feats = y.float().mean(dim=(2, 3))
        nhwc = y.permute(0, 2, 3, 1).contiguous()
        return feats, hz.bits(nhwc, q), hz.coefficients(nhwc, q)[0].float().abs().sum()

    compiled = torch.compile(pipeline, fullgraph=True, dynamic=True)
    x = images.permute(0, 3, 1, 2).contiguous()
    for batch in (x, torch.cat([x, x.flip(0)])[:6]):
        q = torch.arange(10, 10 + 15 * len(batch), 15, dtype=torch.int32)[: len(batch)]
        for got, want in zip(compiled(batch, q), pipeline(batch, q)):
            assert torch.equal(got, want)


def test_torch_compile_fullgraph_over_the_transform_and_a_model_equals_eager(images):
    torch.manual_seed(0)
    model = torch.nn.Sequential(JPEG(25), torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    x = images.permute(0, 3, 1, 2).float() / 255
    eager = model(x)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x), eager)
    f = torch.compile(lambda t: jpeg_tensor(t, 60, grad="smooth"), fullgraph=True, backend="aot_eager")
    assert torch.equal(f(x), jpeg_tensor(x, 60))


def test_torch_compile_fullgraph_backward_is_straight_through(images):
    x = (images.permute(0, 3, 1, 2).float() / 255).requires_grad_()
    f = torch.compile(lambda t: (hz.jpeg(t, QUALITIES) * torch.arange(21.0)).sum(), fullgraph=True, backend="aot_eager")
    f(x).backward()
    assert torch.equal(x.grad, torch.arange(21.0).expand_as(x))


class _CodecModule(torch.nn.Module):
    def forward(self, images, quality):
        y = hz.roundtrip(images, quality)
        floats = hz.roundtrip_float(y, quality, "4:2:0", torch.float32, [0.5], [0.5])
        comps = hz.coefficients(images, quality)
        return floats, hz.reconstruct(comps, torch.ones(images.shape[0], 2, 8, 8, dtype=torch.int32) * 4, images.shape[1], images.shape[2]), hz.bits(images, quality)


def test_torch_export_traces_the_ops_runs_and_survives_save_and_load(images):
    module = _CodecModule()
    q = torch.tensor([5, 30, 60, 90], dtype=torch.int32)
    program = torch.export.export(module, (images, q))
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert {"helmholtz.roundtrip.default", "helmholtz.roundtrip_float.default", "helmholtz.coefficients.default", "helmholtz.bits.default"} <= targets
    buf = io.BytesIO()
    torch.export.save(program, buf)
    buf.seek(0)
    loaded = torch.export.load(buf)
    other_q = torch.tensor([50, 40, 20, 10], dtype=torch.int32)
    for prog in (program, loaded):
        for got, want in zip(prog.module()(images, other_q), module(images, other_q)):
            assert torch.equal(got, want)


def test_the_numpy_api_is_unchanged_by_the_ops(images):
    arr = images.numpy()
    out = jpeg.roundtrip(arr, 20)
    assert isinstance(out, np.ndarray)
    assert isinstance(jpeg.coefficients(arr, 20).components[0], np.ndarray)
    assert isinstance(jpeg.bits(arr, 20), np.ndarray)
    np.testing.assert_array_equal(out, hz.roundtrip(images, torch.tensor(20)).numpy())


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64, torch.bfloat16])
def test_the_device_kernel_of_the_jpeg_op_equals_the_cpu_kernel_with_the_codec_call_run_on_the_host(images, monkeypatch, dtype):
    # Without a GPU: run the CUDA kernel's own torch code on CPU tensors, with the codec call
    # (jpeg.roundtrip(..., backend="cuda")) answered by the CPU backend.
    from helmholtz._ml import ops

    asked = []
    real = jpeg.roundtrip

    def host_roundtrip(rows, quality, *, subsampling, backend):
        asked.append((backend, rows.is_contiguous(), tuple(rows.shape)))
        return real(rows, quality, subsampling=subsampling)

    monkeypatch.setattr(jpeg, "roundtrip", host_roundtrip)
    x = images.permute(0, 3, 1, 2)
    x = x if dtype == torch.uint8 else (x.double() / 255).to(dtype)
    for q in ([20, 40, 60, 80], [0, 35, 0, 70], [0, 0, 0, 0]):
        quality = np.array(q, np.int32)
        got = ops.jpeg_channels_first_device(x, quality, "4:2:2")
        want = ops.jpeg_channels_first_cpu(x, quality, "4:2:2", 1)
        assert got.dtype == dtype and torch.equal(got, want)
    assert asked == [("cuda", True, (4, 19, 21, 3)), ("cuda", True, (2, 19, 21, 3))]
    if dtype != torch.uint8:
        with pytest.raises(ValueError, match="NaN"):
            ops.jpeg_channels_first_device(x.clone().fill_(float("nan")), np.full(4, 20, np.int32), "4:2:0")


@pytest.mark.cuda
def test_ops_on_cuda_equal_the_cpu_ops(images):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    from helmholtz import BackendUnavailable

    try:
        jpeg.roundtrip(images.cuda(), 20, backend="cuda")
    except BackendUnavailable:
        pytest.skip("cuda JPEG backend not available")
    x = images.cuda()
    assert torch.equal(hz.roundtrip(x, QUALITIES.cuda()).cpu(), hz.roundtrip(images, QUALITIES))
    assert torch.equal(hz.roundtrip_many(x, torch.tensor([5, 90])).cpu(), hz.roundtrip_many(images, torch.tensor([5, 90])))
    assert torch.equal(hz.roundtrip_float(x, QUALITIES).cpu(), hz.roundtrip_float(images, QUALITIES))
    for got, want in zip(hz.coefficients(x, QUALITIES), hz.coefficients(images, QUALITIES)):
        assert torch.equal(got.cpu(), want)
    assert torch.equal(hz.bits(x, QUALITIES).cpu(), hz.bits(images, QUALITIES))
    xc = x.permute(0, 3, 1, 2)
    q = torch.tensor([0, 20, 40, 0])
    assert torch.equal(hz.jpeg(xc, q).cpu(), hz.jpeg(images.permute(0, 3, 1, 2), q))
    assert torch.equal(hz.jpeg(xc.float() / 255, q).cpu(), hz.jpeg(images.permute(0, 3, 1, 2).float() / 255, q))
    compiled = torch.compile(lambda t, qq: hz.jpeg(t, qq), fullgraph=True)
    assert torch.equal(compiled(xc, q).cpu(), hz.jpeg(images.permute(0, 3, 1, 2), q))


def test_torch_compile_fullgraph_over_a_random_transform_draws_qualities_in_the_graph(images):
    x = images.permute(0, 3, 1, 2).contiguous()
    compiled = torch.compile(JPEG((5, 50), p=0.5), fullgraph=True, backend="aot_eager")
    every_quality = jpeg.roundtrip_many(images.numpy(), list(range(5, 51)))  # (46, N, H, W, C)
    torch.manual_seed(0)
    kept = compressed = 0
    for _ in range(4):
        out = compiled(x).permute(0, 2, 3, 1).numpy()
        for i in range(len(x)):
            # each image is either left alone or compressed at one quality of the range
            if np.array_equal(out[i], images[i].numpy()):
                kept += 1
            else:
                assert any(np.array_equal(out[i], every_quality[k, i]) for k in range(46))
                compressed += 1
    assert kept > 0 and compressed > 0


def test_a_missing_torch_is_reported_with_the_pip_line(monkeypatch):
    from helmholtz import MissingExtra
    from helmholtz._ml import ops, transforms

    monkeypatch.setitem(sys.modules, "torch", None)  # what an environment without torch looks like
    monkeypatch.setattr(ops, "_namespace", None)
    with pytest.raises(MissingExtra, match=r"pip install 'helmholtz-ml\[torch\]'"):
        ops.register()
    with pytest.raises(MissingExtra, match="torch"):
        transforms._build_jpeg_class()
