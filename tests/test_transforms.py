"""The JPEG transform: Pillow's exact pixels for every input kind, torchvision v2's conventions, gradients, batches."""

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from torch.utils.data import DataLoader, Dataset

from helmholtz import jpeg
from helmholtz.transforms import JPEG, JPEGCollate, DeviceDataset, compress_many, jpeg_surrogate, jpeg_tensor
from helmholtz._ml import ops


def pillow(img: np.ndarray, q: int, subsampling: str = "4:2:0") -> np.ndarray:
    """Pillow's round trip of one uint8 HWC / HW image."""
    buf = io.BytesIO()
    Image.fromarray(img.squeeze(-1) if img.ndim == 3 and img.shape[-1] == 1 else img).save(buf, "JPEG", quality=q, subsampling=subsampling)
    return np.asarray(Image.open(buf)).reshape(img.shape)


def chw_pillow(x, q: int, subsampling: str = "4:2:0"):
    """Pillow's round trip of one uint8 (C, H, W) tensor, as a tensor."""
    return torch.from_numpy(pillow(x.permute(1, 2, 0).numpy(), q, subsampling).copy()).permute(2, 0, 1)


def photo(n: int, h: int = 24, w: int = 20, seed: int = 0) -> np.ndarray:
    """Structured uint8 (n, h, w, 3) images: gradients plus noise, unlike any quality's output."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (yy[None, :, :, None] * rng.uniform(2, 6, (n, 1, 1, 3)) + xx[None, :, :, None] * rng.uniform(2, 6, (n, 1, 1, 3)))
    return np.clip(base + rng.normal(0, 25, (n, h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def batch():
    return torch.from_numpy(photo(5)).permute(0, 3, 1, 2).contiguous()


# ---- every input kind: Pillow's exact pixels, the same kind back -------------------------------

@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_pil_image_comes_back_as_a_pil_image_with_pillows_exact_pixels(mode, subsampling):
    img = Image.fromarray(photo(1)[0]).convert(mode)
    out = JPEG(20, subsampling=subsampling)(img)
    assert isinstance(out, Image.Image) and out.mode == mode and out.size == img.size
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=20, subsampling=subsampling)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(Image.open(buf)))
    assert not np.array_equal(np.asarray(out), np.asarray(img))  # the bug this replaces: PIL came back untouched


def test_pil_images_in_modes_jpeg_cannot_hold_are_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"mode 'RGBA'.*convert\('RGB'\)"):
        JPEG(20)(Image.new("RGBA", (8, 8)))


def test_a_numpy_image_comes_back_as_numpy_with_pillows_pixels():
    imgs = photo(3)
    out = JPEG(30)(imgs[0])
    assert isinstance(out, np.ndarray) and out.shape == imgs[0].shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, pillow(imgs[0], 30))
    gray = np.ascontiguousarray(imgs[1, :, :, 0])
    np.testing.assert_array_equal(JPEG(30)(gray), pillow(gray, 30))
    np.testing.assert_array_equal(JPEG(30)(gray[:, :, None]), pillow(gray[:, :, None], 30))
    batch = JPEG(30)(imgs)
    assert batch.shape == imgs.shape
    for i in range(3):
        np.testing.assert_array_equal(batch[i], pillow(imgs[i], 30))


def test_float_numpy_images_are_rounded_to_8_bits_and_come_back_as_floats():
    img = photo(1)[0]
    for dtype in (np.float32, np.float64, np.float16):
        out = JPEG(40)(img.astype(dtype) / dtype(255))
        assert out.dtype == dtype and out.shape == img.shape
        np.testing.assert_array_equal(np.rint(out.astype(np.float64) * 255), pillow(img, 40))


def test_channels_first_numpy_arrays_are_refused_naming_the_layout():
    with pytest.raises(ValueError, match="channels-last"):
        JPEG(20)(np.zeros((3, 16, 16), np.uint8))
    with pytest.raises(TypeError, match="uint8 or floating"):
        JPEG(20)(np.zeros((16, 16, 3), np.int32))


def test_fixed_quality_matches_pillow_for_a_uint8_batch(batch):
    out = JPEG(20)(batch)
    assert out.dtype == torch.uint8 and out.shape == batch.shape and out.is_contiguous()
    for i in range(len(batch)):
        assert torch.equal(out[i], chw_pillow(batch[i], 20))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_float_tensors_keep_their_dtype_and_equal_pillows_pixels_over_255(batch, dtype):
    x = (batch[0].float() / 255).to(dtype)
    out = JPEG(50)(x)
    assert out.dtype == dtype and out.shape == x.shape
    ref = chw_pillow(batch[0], 50)
    want = ref.double() / 255 if dtype == torch.float64 else (ref.float() / 255).to(dtype)
    assert torch.equal(out, want)


def test_tensors_with_leading_dimensions_compress_every_image(batch):
    x = torch.stack([batch[:2], batch[2:4]])  # (2, 2, 3, H, W)
    out = JPEG(10)(x)
    assert out.shape == x.shape
    assert torch.equal(out[1, 0], chw_pillow(batch[2], 10))


def test_grayscale_tensors_and_the_module_repr(batch):
    g = batch[:, :1]
    out = jpeg_tensor(g, 10)
    np.testing.assert_array_equal(out[1, 0].numpy(), pillow(g[1, 0].numpy()[..., None], 10)[..., 0])
    seq = torch.nn.Sequential(JPEG(30))
    assert seq(batch).shape == batch.shape
    assert "quality=30" in repr(seq)


def test_values_outside_0_1_are_clipped_as_saving_would(batch):
    x = batch[0].float() / 255
    wild = x * 3 - 1  # values below 0 and above 1
    assert torch.equal(JPEG(60)(wild), JPEG(60)(wild.clamp(0, 1)))


def test_nan_input_raises_value_error(batch):
    x = batch[0].float() / 255
    x[1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        JPEG(20)(x)
    with pytest.raises(ValueError, match="NaN"):
        JPEG(20)(x.permute(1, 2, 0).numpy())
    with pytest.raises(ValueError, match="NaN"):
        JPEG(20)(x.requires_grad_())


# ---- samples: images compressed, the rest passed through, as v2 does ------------------------------

def test_an_image_label_tuple_compresses_the_image_and_passes_the_label(batch):
    img, label = JPEG(20)((batch[0], 7))
    assert label == 7 and torch.equal(img, chw_pillow(batch[0], 20))
    pil_img, pil_label = JPEG(20)((Image.fromarray(photo(1)[0]), 3))
    assert isinstance(pil_img, Image.Image) and pil_label == 3


def test_several_arguments_are_taken_as_one_sample(batch):
    img, label = JPEG(20)(batch[0], torch.tensor(4))
    assert torch.equal(img, chw_pillow(batch[0], 20)) and label.item() == 4


def test_dicts_lists_and_nested_samples_keep_their_structure(batch):
    pil = Image.fromarray(photo(1, seed=3)[0])
    sample = {"image": pil, "meta": {"id": "a", "size": [24, 20]}, "crops": [Image.fromarray(photo(1, seed=4)[0])]}
    out = JPEG(20)(sample)
    assert set(out) == {"image", "meta", "crops"} and out["meta"] == {"id": "a", "size": [24, 20]}
    np.testing.assert_array_equal(np.asarray(out["image"]), pillow(np.asarray(pil), 20))
    assert isinstance(out["crops"], list) and isinstance(out["crops"][0], Image.Image)
    np.testing.assert_array_equal(np.asarray(out["crops"][0]), pillow(photo(1, seed=4)[0], 20))


def test_with_a_pil_image_in_the_sample_plain_tensors_and_arrays_pass_through(batch):
    mask = torch.randint(0, 5, (24, 20), dtype=torch.uint8)
    heat = np.ones((24, 20, 3), np.uint8)
    pil = Image.fromarray(photo(1)[0])
    out_pil, out_mask, out_heat = JPEG(20)((pil, mask, heat))
    assert out_mask is mask and out_heat is heat
    np.testing.assert_array_equal(np.asarray(out_pil), pillow(photo(1)[0], 20))


def test_without_an_explicit_image_only_the_first_plain_tensor_is_compressed(batch):
    mask = batch[1].clone()
    img, out_mask, boxes = JPEG(20)((batch[0], mask, torch.tensor([[1.0, 2.0, 3.0, 4.0]])))
    assert torch.equal(img, chw_pillow(batch[0], 20))
    assert out_mask is mask and boxes.shape == (1, 4)


@pytest.mark.parametrize("value", [3, "a string", None, (3, "label"), {"label": 1}, [], object()])
def test_an_input_without_an_image_raises_type_error_never_passing_through(value):
    with pytest.raises(TypeError, match="no image"):
        JPEG(20)(value)


# ---- tv_tensors (skipped without torchvision) --------------------------------------------------------

def test_a_tv_image_keeps_its_type_and_gets_pillows_pixels(batch):
    tv = pytest.importorskip("torchvision.tv_tensors")
    out = JPEG(20)(tv.Image(batch[0]))
    assert type(out) is tv.Image
    assert torch.equal(out.as_subclass(torch.Tensor), chw_pillow(batch[0], 20))
    floats = JPEG(20)(tv.Image(batch[:2].float() / 255))
    assert type(floats) is tv.Image and floats.dtype == torch.float32


def test_a_tv_video_keeps_its_type_and_its_frames_share_one_quality(batch):
    tv = pytest.importorskip("torchvision.tv_tensors")
    frames = torch.stack([batch[0]] * 4)  # (T, C, H, W): four identical frames
    out = JPEG((1, 100), seed=0)(tv.Video(frames))
    assert type(out) is tv.Video and out.shape == frames.shape
    assert all(torch.equal(out[0], out[t]) for t in range(4))
    assert not torch.equal(out[0], frames[0])


def test_masks_and_boxes_pass_through_while_the_image_is_compressed(batch):
    tv = pytest.importorskip("torchvision.tv_tensors")
    sample = {
        "image": tv.Image(batch[0]),
        "mask": tv.Mask(batch[1, 0]),
        "boxes": tv.BoundingBoxes([[1, 2, 10, 12]], format="XYXY", canvas_size=(24, 20)),
        "plain": batch[2],
        "label": 3,
    }
    out = JPEG(20)(sample)
    assert torch.equal(out["image"].as_subclass(torch.Tensor), chw_pillow(batch[0], 20))
    assert out["mask"] is sample["mask"] and out["boxes"] is sample["boxes"] and out["plain"] is sample["plain"]
    assert out["label"] == 3


def test_a_mask_alone_is_not_an_image():
    tv = pytest.importorskip("torchvision.tv_tensors")
    with pytest.raises(TypeError, match="no image"):
        JPEG(20)(tv.Mask(torch.zeros(8, 8, dtype=torch.uint8)))


def test_v2_compose_with_pil_to_tensor_trains_on_compressed_pixels():
    v2 = pytest.importorskip("torchvision.transforms.v2")
    img = Image.fromarray(photo(1)[0])
    out = v2.Compose([JPEG(20), v2.PILToTensor()])(img)
    assert torch.equal(out, torch.from_numpy(pillow(photo(1)[0], 20).copy()).permute(2, 0, 1))
    pair = v2.Compose([v2.ToImage(), JPEG(20), v2.ToDtype(torch.float32, scale=True)])((img, 5))
    assert pair[1] == 5 and pair[0].dtype == torch.float32


# ---- quality, p and their randomness ---------------------------------------------------------------

def test_a_quality_range_draws_every_value_uniformly_within_its_bounds():
    q = JPEG((5, 9), seed=0).draw(2000)
    assert set(q.tolist()) == {5, 6, 7, 8, 9}
    assert np.all(np.abs(np.bincount(q)[5:] - 400) < 90)


def test_a_quality_list_chooses_only_its_values():
    assert set(JPEG([10, 50, 90], seed=0).draw(300).tolist()) == {10, 50, 90}
    assert set(JPEG([10, 50, 90]).draw(300).tolist()) == {10, 50, 90}
    assert set(JPEG(range(20, 23)).draw(300).tolist()) == {20, 21, 22}


def test_random_qualities_are_applied_to_each_image_as_drawn(batch):
    drawn = JPEG((5, 90), seed=3).draw(len(batch))
    assert len(set(drawn.tolist())) > 1
    out = JPEG((5, 90), seed=3)(batch)
    for i, q in enumerate(drawn):
        assert torch.equal(out[i], chw_pillow(batch[i], int(q)))


def test_p_zero_returns_inputs_unchanged_and_p_compresses_that_share_of_images(batch):
    pil = Image.fromarray(photo(1)[0])
    assert JPEG(20, p=0)(pil) is pil
    assert torch.equal(JPEG(20, p=0)(batch), batch)
    drawn = JPEG(20, p=0.3, seed=1).draw(1000)
    assert set(drawn.tolist()) == {0, 20} and 240 < np.count_nonzero(drawn) < 360
    q = JPEG(20, p=0.5, seed=2).draw(len(batch))
    out = JPEG(20, p=0.5, seed=2)(batch)
    for i in range(len(batch)):
        assert torch.equal(out[i], batch[i] if q[i] == 0 else chw_pillow(batch[i], 20))


def test_seeded_draws_are_reproducible_and_seeds_differ():
    assert np.array_equal(JPEG((1, 100), p=0.5, seed=7).draw(50), JPEG((1, 100), p=0.5, seed=7).draw(50))
    assert not np.array_equal(JPEG((1, 100), seed=7).draw(50), JPEG((1, 100), seed=8).draw(50))


@pytest.mark.parametrize("seed", [None, 3])
def test_drawing_for_n_images_at_once_equals_drawing_for_each_in_turn(seed):
    torch.manual_seed(0)
    together = JPEG([5, 20, 80], p=0.6, seed=seed).draw(40)
    torch.manual_seed(0)
    one = JPEG([5, 20, 80], p=0.6, seed=seed)
    assert np.array_equal(together, np.concatenate([one.draw(1) for _ in range(40)]))


def test_unseeded_draws_follow_torch_manual_seed():
    torch.manual_seed(11)
    a = JPEG((1, 100), p=0.5).draw(50)
    torch.manual_seed(11)
    b = JPEG((1, 100), p=0.5).draw(50)
    assert np.array_equal(a, b)


class _SameImage(Dataset):
    """Sixteen copies of one image, compressed by ``transform``: the outputs show the qualities drawn."""

    def __init__(self, transform):
        self.image = torch.from_numpy(photo(1)[0]).permute(2, 0, 1).contiguous()
        self.transform = transform

    def __len__(self):
        return 16

    def __getitem__(self, i):
        return self.transform(self.image)


@pytest.mark.parametrize("seed", [None, 5])
def test_dataloader_workers_draw_different_qualities_reproducibly(seed):
    def run(loader_seed):
        loader = DataLoader(_SameImage(JPEG((1, 100), seed=seed)), batch_size=4, num_workers=2,
                            generator=torch.Generator().manual_seed(loader_seed))
        return list(loader)

    first = run(0)
    # batches 0 and 1 come from workers 0 and 1: the same image compressed at their own qualities
    assert not torch.equal(first[0], first[1])
    assert all(torch.equal(a, b) for a, b in zip(first, run(0)))
    assert not all(torch.equal(a, b) for a, b in zip(first, run(1)))


def test_the_transform_and_the_collate_pickle_for_spawned_workers():
    import pickle

    t = JPEG((5, 50), p=0.5, seed=3)
    t.draw(3)
    copy = pickle.loads(pickle.dumps(JPEGCollate(t)))
    assert repr(copy.transform) == repr(t)
    assert np.array_equal(copy.transform.draw(4), JPEG((5, 50), p=0.5, seed=3).draw(7)[3:])  # the stream goes on


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"quality": 0}, ValueError),
        ({"quality": 101}, ValueError),
        ({"quality": (50, 10)}, ValueError),
        ({"quality": (5, 10, 20)}, ValueError),
        ({"quality": []}, ValueError),
        ({"quality": "20"}, TypeError),
        ({"quality": True}, TypeError),
        ({"quality": [20, 2.5]}, TypeError),
        ({"quality": 20, "p": 1.5}, ValueError),
        ({"quality": 20, "p": "half"}, TypeError),
        ({"quality": 20, "grad": "exact"}, ValueError),
        ({"quality": 20, "subsampling": "4:1:1"}, ValueError),
        ({"quality": 20, "seed": 1.5}, TypeError),
    ],
)
def test_bad_arguments_are_refused_naming_them(kwargs, exc):
    name = next(k for k in ("p", "grad", "subsampling", "seed") if k in kwargs) if len(kwargs) > 1 else "quality"
    with pytest.raises(exc, match=name):
        JPEG(**kwargs)


def test_bad_tensors_are_refused(batch):
    with pytest.raises(ValueError, match="shape"):
        jpeg_tensor(torch.zeros(2, 4, 8, 8, dtype=torch.uint8), 20)
    with pytest.raises(TypeError, match="x must"):
        jpeg_tensor(np.zeros((3, 8, 8), np.uint8), 20)
    with pytest.raises(TypeError, match="uint8 or floating"):
        JPEG(20)(batch.int())
    with pytest.raises(ValueError, match="quality"):
        jpeg_tensor(batch, [20, 30])


# ---- gradients -------------------------------------------------------------------------------------

@pytest.mark.parametrize("grad", ["ste", "smooth", "none"])
@pytest.mark.parametrize("subsampling", ["4:2:0", "4:4:4"])
def test_a_float_input_that_requires_grad_gets_pillows_exact_pixels_in_every_grad_mode(batch, grad, subsampling):
    x = (batch.float() / 255).requires_grad_()
    out = JPEG(15, grad=grad, subsampling=subsampling)(x)
    want = torch.stack([chw_pillow(b, 15, subsampling) for b in batch]).float() / 255
    assert torch.equal(out.detach(), want)
    assert out.requires_grad == (grad != "none")


def test_the_straight_through_gradient_equals_the_upstream_gradient(batch):
    x = (batch.float() / 255).requires_grad_()
    upstream = torch.randn_like(x)
    JPEG((5, 50), p=0.5, seed=0)(x).backward(upstream)
    assert torch.equal(x.grad, upstream)


def test_the_smooth_gradient_is_the_surrogates_gradient(batch):
    x = (batch.double() / 255).requires_grad_()
    upstream = torch.randn_like(x)
    JPEG(30, grad="smooth", subsampling="4:2:2")(x).backward(upstream)
    y = x.detach().clone().requires_grad_()
    jpeg_surrogate(y, 30, subsampling="4:2:2").backward(upstream)
    assert torch.equal(x.grad, y.grad)
    assert not torch.allclose(x.grad, upstream)  # not the identity


@pytest.mark.parametrize("channels, subsampling", [(3, "4:2:0"), (3, "4:2:2"), (3, "4:4:4"), (1, "4:2:0")])
def test_the_surrogate_passes_gradcheck_in_float64(channels, subsampling):
    x = torch.rand(2, channels, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    # fast mode checks random projections of the Jacobian (the full one is 1536 x 1536 here)
    assert torch.autograd.gradcheck(lambda t: jpeg_surrogate(t, torch.tensor([20, 70]), subsampling=subsampling), (x,), fast_mode=True)


def test_the_surrogate_passes_the_full_gradcheck_on_a_small_image():
    x = torch.rand(1, 1, 8, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: jpeg_surrogate(t, 35), (x,))


@pytest.mark.parametrize("q", [10, 50, 90])
@pytest.mark.parametrize("subsampling", ["4:2:0", "4:4:4"])
def test_the_surrogate_with_hard_rounding_is_within_a_few_levels_of_pillow(q, subsampling):
    imgs = photo(16, 32, 32, seed=5)
    exact = jpeg.roundtrip(imgs, q, subsampling=subsampling).astype(np.float64)
    model = jpeg_surrogate(torch.from_numpy(imgs).permute(0, 3, 1, 2).double() / 255, q, subsampling=subsampling, rounding="hard")
    err = np.abs(model.permute(0, 2, 3, 1).numpy() * 255 - exact).mean()
    # float model against fixed-point libjpeg: quantiser decisions near half a step differ
    assert err < 2.5
    if q <= 50:
        assert err < 0.1 * np.abs(imgs - exact).mean()  # far closer to JPEG than no compression is


# ---- the batch path ---------------------------------------------------------------------------------

def test_collate_compresses_a_batch_in_one_codec_call_and_equals_the_per_sample_path(monkeypatch):
    imgs = photo(6)
    samples = [(torch.from_numpy(imgs[i]).permute(2, 0, 1).contiguous(), i) for i in range(6)]
    calls = []
    real = ops.roundtrip_rows_cpu
    monkeypatch.setattr(ops, "roundtrip_rows_cpu", lambda rows, *a: calls.append(rows.shape) or real(rows, *a))
    x, y = JPEGCollate(JPEG((5, 60), p=0.7, seed=4))(samples)
    assert calls == [(6, 24, 20, 3)]
    one = JPEG((5, 60), p=0.7, seed=4)
    want = torch.stack([one(s[0]) for s in samples])
    assert torch.equal(x, want) and y.tolist() == list(range(6))


def test_compress_batch_handles_pil_numpy_and_tensors_of_several_sizes(monkeypatch):
    small, large = photo(2, 16, 16, seed=1), photo(2, 24, 20, seed=2)
    samples = [
        {"img": Image.fromarray(small[0]), "y": 0},
        {"img": large[0], "y": 1},
        {"img": torch.from_numpy(small[1]).permute(2, 0, 1).float() / 255, "y": 2},
        {"img": torch.from_numpy(large[1]).permute(2, 0, 1).contiguous(), "y": 3},
    ]
    calls = []
    real = ops.roundtrip_rows_cpu
    monkeypatch.setattr(ops, "roundtrip_rows_cpu", lambda rows, *a: calls.append(rows.shape[:3]) or real(rows, *a))
    out = JPEG(25).compress_batch(samples)
    assert sorted(calls) == [(2, 16, 16), (2, 24, 20)]
    assert [s["y"] for s in out] == [0, 1, 2, 3]
    np.testing.assert_array_equal(np.asarray(out[0]["img"]), pillow(small[0], 25))
    np.testing.assert_array_equal(out[1]["img"], pillow(large[0], 25))
    assert out[2]["img"].dtype == torch.float32
    assert torch.equal((out[2]["img"] * 255).round().byte().permute(1, 2, 0), torch.from_numpy(pillow(small[1], 25)))
    assert torch.equal(out[3]["img"].permute(1, 2, 0), torch.from_numpy(pillow(large[1], 25)))


class _Pairs(Dataset):
    def __init__(self):
        self.images = photo(12)

    def __len__(self):
        return 12

    def __getitem__(self, i):
        return torch.from_numpy(self.images[i]).permute(2, 0, 1).contiguous(), i


def test_collate_runs_in_dataloader_workers_and_keeps_labels_with_their_images():
    loader = DataLoader(_Pairs(), batch_size=4, num_workers=2, collate_fn=JPEGCollate(JPEG(35)))
    seen = []
    for x, y in loader:
        assert x.shape == (4, 3, 24, 20) and x.dtype == torch.uint8
        for img, label in zip(x, y.tolist()):
            assert torch.equal(img.permute(1, 2, 0), torch.from_numpy(pillow(photo(12)[label], 35)))
        seen += y.tolist()
    assert seen == list(range(12))


def test_collate_refuses_samples_without_an_image_and_a_bad_transform():
    with pytest.raises(TypeError, match="no image"):
        JPEGCollate(JPEG(20))([(1, 2)])
    with pytest.raises(TypeError, match="JPEG"):
        JPEGCollate(lambda s: s)


# ---- compress_many and DeviceDataset ---------------------------------------------------------------

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


# ---- CUDA (needs a GPU) ------------------------------------------------------------------------------

@pytest.mark.cuda
def test_cuda_tensors_stay_on_device_with_every_grad_mode(batch):
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
    for grad in ("ste", "smooth"):
        xf = (x.float() / 255).requires_grad_()
        y = JPEG(20, grad=grad, p=0.5, seed=0)(xf)
        assert torch.equal(y.detach().cpu(), JPEG(20, p=0.5, seed=0)(batch.float() / 255))
        y.sum().backward()
        assert xf.grad.is_cuda
