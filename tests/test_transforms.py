import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from helmholtz.transforms import JPEG, DeviceDataset, compress_many, jpeg_tensor


def pillow_roundtrip(img_hwc: np.ndarray, q: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img_hwc.squeeze()).save(buf, "JPEG", quality=q)
    return np.asarray(Image.open(buf)).reshape(img_hwc.shape)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return torch.from_numpy(rng.integers(0, 256, (5, 3, 16, 24), dtype=np.uint8))


def test_fixed_quality_matches_pillow_uint8(batch):
    out = JPEG(20)(batch)
    assert out.dtype == torch.uint8 and out.shape == batch.shape
    for i in range(len(batch)):
        ref = pillow_roundtrip(batch[i].permute(1, 2, 0).numpy(), 20)
        np.testing.assert_array_equal(out[i].permute(1, 2, 0).numpy(), ref)


def test_single_image_and_float(batch):
    x = batch[0].float() / 255
    out = JPEG(50)(x)
    assert out.dtype == torch.float32 and out.shape == x.shape
    ref = pillow_roundtrip(batch[0].permute(1, 2, 0).numpy(), 50)
    np.testing.assert_allclose(out.permute(1, 2, 0).numpy() * 255, ref, atol=1e-3)


def test_random_quality_per_sample(batch):
    gen = torch.Generator().manual_seed(3)
    t = JPEG((5, 90), generator=gen)
    qs = JPEG((5, 90), generator=torch.Generator().manual_seed(3)).qualities(len(batch))
    assert len(set(qs.tolist())) > 1 and qs.min() >= 5 and qs.max() <= 90
    out = t(batch)
    for i, q in enumerate(qs):
        np.testing.assert_array_equal(out[i].permute(1, 2, 0).numpy(), pillow_roundtrip(batch[i].permute(1, 2, 0).numpy(), int(q)))


def test_grayscale_and_module(batch):
    g = batch[:, :1]
    out = jpeg_tensor(g, 10)
    np.testing.assert_array_equal(out[1, 0].numpy(), pillow_roundtrip(g[1, 0].numpy()[..., None], 10)[..., 0])
    seq = torch.nn.Sequential(JPEG(30))
    assert seq(batch).shape == batch.shape
    assert "quality=30" in repr(seq)


@pytest.mark.parametrize("q, exc", [(0, ValueError), (101, ValueError), ((50, 10), ValueError), ("20", TypeError), (True, TypeError)])
def test_bad_quality(q, exc):
    with pytest.raises(exc, match="quality"):
        JPEG(q)


def test_bad_tensor():
    with pytest.raises(ValueError, match="shape"):
        jpeg_tensor(torch.zeros(2, 4, 8, 8, dtype=torch.uint8), 20)
    with pytest.raises(TypeError, match="x must"):
        jpeg_tensor(np.zeros((3, 8, 8), np.uint8), 20)


def test_compress_many_equals_single(batch):
    nhwc = batch.permute(0, 2, 3, 1).contiguous()
    many = compress_many(nhwc, [5, 75])
    assert many.shape == (2,) + tuple(nhwc.shape)
    np.testing.assert_array_equal(many[1].numpy(), JPEG(75)(batch).permute(0, 2, 3, 1).numpy())


def test_device_dataset_covers_everything_once():
    x = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 4, 4, 3).contiguous()
    ds = DeviceDataset(x, np.arange(10), 3, shuffle=True, seed=0)
    seen = []
    for xb, yb in ds:
        assert xb.dtype == torch.float32 and xb.shape[1:] == (3, 4, 4)
        # images stay with their labels
        np.testing.assert_allclose(xb[:, 0, 0, 0].numpy() * 255, yb.numpy(), atol=1e-4)
        seen += yb.tolist()
    assert sorted(seen) == list(range(10)) and len(ds) == 4


def test_device_dataset_shift_and_flip_are_keras_like():
    h = w = 10
    ramp = torch.arange(w, dtype=torch.uint8).repeat(h, 1)  # value = column
    x = torch.stack([ramp, ramp.T, ramp], -1).expand(200, h, w, 3).contiguous()
    ds = DeviceDataset(x, np.zeros(200), 200, shuffle=False, shift=0.2, flip=True, seed=1)
    (xb, _), = list(ds)
    cols = (xb[:, 0] * 255).round().long()  # (N, H, W): column index sampled at each output pixel
    rows = (xb[:, 1] * 255).round().long()
    shifts_seen, flips = set(), 0
    for n in range(200):
        r = rows[n, :, 0]
        dy = int(r[h // 2]) - h // 2
        assert abs(dy) <= 2  # round(0.2 * 10)
        # rows move rigidly, edges replicated (fill_mode="nearest")
        assert torch.equal(r, (torch.arange(h) + dy).clamp(0, h - 1))
        c = cols[n, 0]
        flipped = bool(c[0] > c[-1])
        flips += flipped
        base = torch.arange(w).flip(0) if flipped else torch.arange(w)
        dx = int(c[w // 2]) - int(base[w // 2])
        assert torch.equal(c, (base + dx).clamp(0, w - 1))
        shifts_seen.add(dx)
    assert shifts_seen == {-2, -1, 0, 1, 2}
    assert 60 < flips < 140


def test_device_dataset_validates():
    with pytest.raises(ValueError, match="batch_size"):
        DeviceDataset(torch.zeros(2, 4, 4, 3, dtype=torch.uint8), [0, 1], 0)
    with pytest.raises(ValueError, match="labels"):
        DeviceDataset(torch.zeros(2, 4, 4, 3, dtype=torch.uint8), [0], 2)
    with pytest.raises(TypeError, match="images"):
        DeviceDataset(torch.zeros(2, 4, 4, 3), [0, 1], 2)


@pytest.mark.cuda
def test_cuda_tensors_stay_on_device(batch):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    from helmholtz import BackendUnavailable

    x = batch.cuda()
    try:
        out = JPEG(20, cuda_fallback=False)(x)
    except BackendUnavailable:
        pytest.skip("cuda JPEG backend not available")
    assert out.is_cuda
    np.testing.assert_array_equal(out.cpu().numpy(), JPEG(20)(batch).numpy())
