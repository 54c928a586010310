"""Information measures and ``helmholtz info``: formulas checked by hand and against Pillow."""

from __future__ import annotations

import argparse
import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from helmholtz._codec import entropy as E

try:
    from helmholtz._codec import native as NATIVE
except ImportError:  # a build without the C core
    NATIVE = None
from helmholtz import info, jpeg
from helmholtz.cli import info as info_cli
from helmholtz.errors import DataError

BACKEND = "cpu" if NATIVE is not None else "numpy"


def _images(n=3, h=16, w=24, c=3, seed=0):
    rng = np.random.default_rng(seed)
    ramp = np.add.outer(np.arange(h), np.arange(w))[None, ..., None] * 4
    return (ramp + rng.integers(0, 40, (n, h, w, c))).astype(np.uint8)


def _data_dir():
    env = os.environ.get("HELMHOLTZ_DATA")
    cand = [Path(env)] if env else []
    cand.append(Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    for d in cand:
        if (d / "cifar10.npz").exists():
            return d
    return None


def test_shannon_entropy_by_hand():
    assert info.shannon_entropy(np.array([0, 0, 0, 0])) == 0.0
    assert info.shannon_entropy(np.array([1, 2, 3, 4])) == pytest.approx(2.0)
    p = np.array([0.5, 0.25, 0.25])
    rows = np.array([[5, 5, -7, 9], [0, 1, 0, 1]])
    assert np.allclose(info.shannon_entropy(rows), [-(p * np.log2(p)).sum(), 1.0])
    assert info.shannon_entropy(rows.T, axis=0).shape == (2,)
    with pytest.raises(TypeError, match="integers"):
        info.shannon_entropy(np.zeros(3))


def test_coefficient_entropy_matches_direct_count():
    imgs = _images()
    coefs = jpeg.coefficients(imgs, 40, backend="numpy")
    overall = info.coefficient_entropy(coefs)
    per_comp = info.coefficient_entropy(coefs, by="component")
    per_freq = info.coefficient_entropy(coefs, by="frequency")
    assert overall.shape == (3,) and per_comp.shape == (3, 3) and per_freq.shape == (3, 3, 8, 8)
    for i in range(3):
        values = np.concatenate([c[i].ravel() for c in coefs.components])
        _, counts = np.unique(values, return_counts=True)
        p = counts / counts.sum()
        assert overall[i] == pytest.approx(-(p * np.log2(p)).sum())
        dc = coefs.components[0][i][..., 0, 0].ravel()
        _, counts = np.unique(dc, return_counts=True)
        p = counts / counts.sum()
        assert per_freq[i, 0, 0, 0] == pytest.approx(-(p * np.log2(p)).sum())
    pooled = info.coefficient_entropy(coefs, pooled=True)
    values = np.concatenate([c.ravel() for c in coefs.components])
    _, counts = np.unique(values, return_counts=True)
    p = counts / counts.sum()
    assert pooled == pytest.approx(-(p * np.log2(p)).sum())
    with pytest.raises(ValueError, match="by must be"):
        info.coefficient_entropy(coefs, by="block")


def test_zero_fraction_and_pixel_entropy():
    imgs = _images()
    coefs = jpeg.coefficients(imgs, 10, backend="numpy")
    zf = info.zero_fraction(coefs)
    total = sum(c[0].size for c in coefs.components)
    assert zf[0] == pytest.approx(sum((c[0] == 0).sum() for c in coefs.components) / total)
    flat = np.zeros((2, 8, 8, 3), np.uint8)
    flat[1, :4] = 255
    assert np.allclose(info.pixel_entropy(flat), [0.0, 1.0])


def test_psnr_formula():
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = a.copy()
    b[0] = 10  # MSE 100
    out = info.psnr(a, b)
    assert out[0] == pytest.approx(10 * math.log10(255**2 / 100))
    assert out[1] == np.inf
    with pytest.raises(ValueError, match="shape"):
        info.psnr(a, b[:, :2])


def test_bits_per_pixel_against_pillow_files():
    from PIL import Image

    imgs = _images(2, 13, 21)
    scan = info.scan_bits_per_pixel(imgs, 30, backend=BACKEND)
    whole = info.file_bits_per_pixel(imgs, 30, backend=BACKEND)
    for i in range(2):
        buf = io.BytesIO()
        Image.fromarray(imgs[i]).save(buf, "JPEG", quality=30, subsampling="4:2:0")
        assert whole[i] == pytest.approx(8 * len(buf.getvalue()) / (13 * 21))
        assert scan[i] * 13 * 21 == E.bits(imgs[i], 30, backend=BACKEND)[0]
        assert scan[i] < whole[i]


def test_dataset_report_columns_and_monotonicity():
    pytest.importorskip("pandas")
    imgs = _images(4, 16, 16)
    df = info.dataset_report(imgs, [5, 50, 95], backend=BACKEND)
    assert list(df.index) == [5, 50, 95]
    for col in ("bpp_scan", "bpp_file", "coef_entropy", "entropy_Y", "entropy_Cr", "zero_fraction", "psnr_db", "pixel_entropy"):
        assert col in df.columns
    assert df["bpp_scan"].is_monotonic_increasing and df["psnr_db"].is_monotonic_increasing
    assert df["zero_fraction"].is_monotonic_decreasing
    assert (df["bpp_file"] > df["bpp_scan"]).all()
    bits = E.bits(imgs, 50, backend=BACKEND)
    assert df.loc[50, "bpp_scan"] == pytest.approx(bits.mean() / 256)
    decoded = jpeg.roundtrip(imgs, 50, backend="numpy")
    mse = ((imgs.astype(float) - decoded) ** 2).mean()
    assert df.loc[50, "psnr_db"] == pytest.approx(10 * math.log10(255**2 / mse))


def _parser():
    p = argparse.ArgumentParser(prog="helmholtz")
    info_cli.register(p.add_subparsers(dest="command"))
    return p


def test_cli_on_a_small_npz(tmp_path, capsys):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "cifar10.npz", x_test=rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8), x_train=np.zeros((1, 32, 32, 3), np.uint8),
             y_test=np.zeros(3, np.uint8), y_train=np.zeros(1, np.uint8))
    args = _parser().parse_args(
        ["info", "--data-dir", str(tmp_path), "--qualities", "1,20", "--csv", str(tmp_path / "t.csv"),
         "--json", str(tmp_path / "t.json"), "--plot", str(tmp_path / "t.png"), "--backend", BACKEND]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "bpp_scan" in out and "3 images" in out
    assert (tmp_path / "t.csv").read_text().startswith("quality,")
    records = json.loads((tmp_path / "t.json").read_text())
    assert [r["quality"] for r in records] == [1, 20]
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("HELMHOLTZ_DATA", raising=False)
    p = _parser()
    args = p.parse_args(["info", "--qualities", "1,20"])
    with pytest.raises(DataError, match="HELMHOLTZ_DATA"):
        args.func(args)
    args = p.parse_args(["info", "--data-dir", str(tmp_path), "--qualities", "1,x"])
    with pytest.raises(ValueError, match="qualities"):
        args.func(args)
    args = p.parse_args(["info", "--data-dir", str(tmp_path), "--qualities", "0,20"])
    with pytest.raises(ValueError, match="1..100"):
        args.func(args)
    args = p.parse_args(["info", "--data-dir", str(tmp_path)])
    with pytest.raises(DataError, match="cifar10.npz"):
        args.func(args)
    with pytest.raises(ValueError, match="limit"):
        info_cli.load_images("cifar10", tmp_path, limit=0)
    with pytest.raises(ValueError, match="dataset"):
        info_cli.load_images("imagenet1k", tmp_path)


def test_cifar10_q20_is_near_one_bit_per_pixel():
    d = _data_dir()
    if d is None:
        pytest.skip("cifar10.npz not found (set HELMHOLTZ_DATA)")
    x = info_cli.load_images("cifar10", d, "test", limit=64)
    bpp = info.scan_bits_per_pixel(x, 20, backend=BACKEND)
    assert 0.6 < bpp.mean() < 1.3


# ------------------------------------------------------------------ every image data set, mixed sizes, outputs
def _mixed_folder(root, sizes=((20, 24), (33, 17), (16, 40))):
    from PIL import Image

    rng = np.random.default_rng(3)
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            for i, (h, w) in enumerate(sizes):
                ramp = np.add.outer(np.arange(h), np.arange(w))[..., None] * 3
                im = (ramp + rng.integers(0, 60, (h, w, 3))).astype(np.uint8)
                Image.fromarray(im).save(root / split / cls / f"{i}.png")
    return root


def test_info_reads_mnist_through_the_data_registry(tmp_path, capsys):
    pytest.importorskip("pandas")
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "mnist.npz", x_train=rng.integers(0, 256, (2, 28, 28), dtype=np.uint8), y_train=np.arange(2),
             x_test=rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), y_test=np.arange(3))
    args = _parser().parse_args(["info", "--dataset", "mnist", "--data-dir", str(tmp_path), "--qualities", "50", "--backend", BACKEND])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "mnist test: 3 images" in out and "entropy_Y" in out and "entropy_Cb" not in out


def test_info_measures_a_folder_of_mixed_sizes_image_by_image(tmp_path, capsys):
    pytest.importorskip("pandas")
    pytest.importorskip("PIL")
    folder = _mixed_folder(tmp_path / "imgs")
    args = _parser().parse_args(["info", "--dataset", "folder", "--data-dir", str(folder), "--qualities", "10,75",
                                 "--csv", str(tmp_path / "t.csv"), "--backend", BACKEND])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "folder test: 6 images, 3 sizes" in out
    images = info_cli.load_images("folder", folder)
    assert isinstance(images, list) and len({im.shape for im in images}) == 3
    table = np.genfromtxt(tmp_path / "t.csv", delimiter=",", names=True)
    for row in table:
        q = int(row["quality"])
        by_hand = np.mean([jpeg.bits(im[None], q, backend=BACKEND)[0] / (im.shape[0] * im.shape[1]) for im in images])
        assert row["bpp_scan"] == pytest.approx(by_hand)
        decoded = [jpeg.roundtrip(im[None], q, backend=BACKEND)[0] for im in images]
        sq = sum(((im.astype(float) - d) ** 2).sum() for im, d in zip(images, decoded))
        assert row["psnr_db"] == pytest.approx(10 * math.log10(255**2 / (sq / sum(im.size for im in images))))


def test_dataset_report_of_a_list_of_one_size_equals_the_array_report():
    pd = pytest.importorskip("pandas")
    x = _images(n=4, h=24, w=16)
    pd.testing.assert_frame_equal(info.dataset_report(x, [5, 50], backend=BACKEND), info.dataset_report(list(x), [5, 50], backend=BACKEND))


def test_info_refuses_an_audio_data_set_naming_the_image_ones(tmp_path):
    with pytest.raises(ValueError, match=r"'fsdd' is of kind 'audio'.*image data sets \(.*cifar10"):
        info_cli.load_images("fsdd", tmp_path)


@pytest.mark.parametrize("option", ["--csv", "--json", "--plot"])
def test_an_unwritable_output_fails_before_the_data_is_read(tmp_path, option, capsys):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_folder").mkdir()
    cases = {
        tmp_path / "missing" / "t.out": "does not exist",
        tmp_path / "a_file" / "t.out": "is not a folder",
        tmp_path / "a_folder": "is a folder",
    }
    # The data folder is empty: had the data been read first, the error would be a DataError about cifar10.npz.
    empty = tmp_path / "no_data"
    empty.mkdir()
    for path, why in cases.items():
        args = _parser().parse_args(["info", "--data-dir", str(empty), option, str(path)])
        with pytest.raises(ValueError, match=why) as exc:
            args.func(args)
        assert not isinstance(exc.value, DataError) and option in str(exc.value) and str(path) in str(exc.value)
    from helmholtz.cli import main

    assert main(["info", "--data-dir", str(empty), option, str(tmp_path / "missing" / "t.out")]) == 2
    assert f"helmholtz info: error: {option} " in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write into a read-only folder")
def test_an_output_in_a_read_only_folder_fails_before_the_work(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="permission denied"):
            info_cli.check_output_path(locked / "t.csv", "--csv")
    finally:
        locked.chmod(0o700)


def test_dataset_report_streams_chunks_and_workers_without_changing_a_number():
    pd = pytest.importorskip("pandas")
    x = _images(n=23, h=16, w=24, seed=4)
    whole = info.dataset_report(x, [5, 50], backend=BACKEND)
    chunked = info.dataset_report(x, [5, 50], backend=BACKEND, chunk_images=4)
    parallel = info.dataset_report(x, [5, 50], backend=BACKEND, chunk_images=4, workers=2)
    pd.testing.assert_frame_equal(chunked, parallel, check_exact=True)
    pd.testing.assert_frame_equal(whole, chunked, rtol=1e-12)

    class Batches:  # anything with batches(n), as a data reader has
        image_shape = x.shape[1:]

        def batches(self, n):
            for s in range(0, len(x), n):
                yield x[s : s + n], None

    pd.testing.assert_frame_equal(whole, info.dataset_report(Batches(), [5, 50], backend=BACKEND, chunk_images=5), rtol=1e-12)
    with pytest.raises(ValueError, match="workers"):
        info.dataset_report(x, [5], workers=0)


def test_info_limit_draws_a_seeded_sample_across_classes_and_decodes_only_it(tmp_path, capsys, monkeypatch):
    pytest.importorskip("pandas")
    Image = pytest.importorskip("PIL.Image")
    from helmholtz._data import readers

    rng = np.random.default_rng(5)
    for c in ("a", "b", "c"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    decoded = []
    real = readers.decode_image
    monkeypatch.setattr(readers, "decode_image", lambda path, **kw: decoded.append(path) or real(path, **kw))
    sample = info_cli.open_images("folder", tmp_path / "imgs", "train", limit=6, seed=3)
    assert len(sample) == 6 and set(sample.labels.tolist()) == {0, 1, 2}  # not the first six of class a
    args = _parser().parse_args(["info", "--dataset", "folder", "--data-dir", str(tmp_path / "imgs"), "--split", "train", "--limit", "6",
                                 "--seed", "3", "--qualities", "50", "--workers", "1", "--backend", BACKEND])
    assert args.func(args) == 0
    assert "6 images (a seeded sample, seed 3)" in capsys.readouterr().out
    assert sorted(decoded) == sorted(sample.base.files[i] for i in sample.indices)
    again = info_cli.open_images("folder", tmp_path / "imgs", "train", limit=6, seed=3)
    assert again.indices.tolist() == sample.indices.tolist()
