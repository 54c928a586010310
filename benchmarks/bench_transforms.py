"""JPEG as a training transform: helmholtz against the augmentation libraries, per sample and per batch.

One run times every contender on the same CIFAR-10 test images at one
quality (default 20, 4:2:0), interleaving the repeats so that the ratios are
fair on a busy machine, and reports images per second and the share of
outputs equal to Pillow's (``save(..., "JPEG", quality=q)`` then
``Image.open``), byte for byte.

Per sample (one call per 32x32 image, as a Dataset's ``transform`` runs):
``helmholtz.jpeg.roundtrip`` on a NumPy image (the reference the transform is
held to: at most 1.5x its time), ``helmholtz.transforms.JPEG`` on a uint8
tensor, a NumPy array, a PIL image and a float tensor, Pillow itself, OpenCV
(``imencode``/``imdecode``), albumentations' ``ImageCompression``, kornia's
``jpeg_codec_differentiable`` and torchvision's ``v2.JPEG``.

Per batch (256 images per call, as a ``collate_fn`` or a batch transform
runs): ``JPEG`` on a ``(N, C, H, W)`` tensor, :class:`JPEGCollate` on a list
of ``(image, label)`` samples (compression and collation), kornia and
torchvision on the batch tensor; libraries without a batch API in a loop.

Each peer is skipped, with a line saying so, when it is not installed.
Run: ``python benchmarks/bench_transforms.py [--quality 20] [--images 2000] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import io
import time
from typing import Callable

import numpy as np

from _common import cifar_path

from helmholtz import jpeg


def load_images(count: int, data_dir: str | None) -> np.ndarray:
    path = cifar_path(data_dir)
    if path is None:
        raise SystemExit("CIFAR-10 not found: set HELMHOLTZ_DATA to a folder holding cifar10.npz (or pass --data-dir)")
    with np.load(path) as d:
        return np.ascontiguousarray(d["x_test"][:count])


def pillow_reference(images: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    out = np.empty_like(images)
    for i, img in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=quality)
        out[i] = np.asarray(Image.open(buf))
    return out


class Contender:
    """A way to compress: ``run()`` does the timed work, ``outputs(result)`` gives uint8 NHWC for the check."""

    def __init__(self, name: str, how: str, run: Callable, outputs: Callable, images: int) -> None:
        self.name, self.how, self.run, self.outputs, self.images = name, how, run, outputs, images
        self.best = float("inf")
        self.result = None


def as_nhwc_uint8(x) -> np.ndarray:
    """Tensors (N, C, H, W) / (C, H, W), float in [0, 1] or uint8, or NumPy NHWC -> uint8 NHWC."""
    import torch

    if isinstance(x, torch.Tensor):
        x = x.detach().as_subclass(torch.Tensor)
        if x.is_floating_point():
            x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8)
        x = x.permute(0, 2, 3, 1) if x.ndim == 4 else x.permute(1, 2, 0)[None]
        return x.contiguous().numpy()
    return np.asarray(x)


def stack_outputs(results) -> np.ndarray:
    from PIL import Image

    return np.concatenate([np.asarray(r)[None] if isinstance(r, Image.Image) else as_nhwc_uint8(r) for r in results])


def per_sample(images: np.ndarray, quality: int) -> tuple[list[Contender], list[str]]:
    import torch
    from PIL import Image

    from helmholtz.transforms import JPEG

    skipped = []
    tensors = [torch.from_numpy(img).permute(2, 0, 1).contiguous() for img in images]
    floats = [t.float() / 255 for t in tensors]
    pils = [Image.fromarray(img) for img in images]
    n = len(images)
    t = JPEG(quality)
    out = [
        Contender("helmholtz jpeg.roundtrip", "NumPy HWC (reference)", lambda: [jpeg.roundtrip(im, quality) for im in images], np.stack, n),
        Contender("helmholtz JPEG", "uint8 tensor CHW", lambda: [t(x) for x in tensors], stack_outputs, n),
        Contender("helmholtz JPEG", "NumPy HWC", lambda: [t(im) for im in images], np.stack, n),
        Contender("helmholtz JPEG", "PIL image", lambda: [t(p) for p in pils], stack_outputs, n),
        Contender("helmholtz JPEG", "float tensor CHW", lambda: [t(x) for x in floats], stack_outputs, n),
    ]

    def pillow_one(p):
        buf = io.BytesIO()
        p.save(buf, "JPEG", quality=quality)
        buf.seek(0)
        return Image.open(buf).convert("RGB")

    out.append(Contender("Pillow", "PIL image", lambda: [pillow_one(p) for p in pils], stack_outputs, n))
    try:
        import cv2

        cv2.setNumThreads(1)
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]

        def opencv_one(img):
            ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], params)  # OpenCV's images are BGR
            return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]

        out.append(Contender("OpenCV", "NumPy HWC", lambda: [opencv_one(im) for im in images], np.stack, n))
    except ImportError:
        skipped.append("OpenCV (pip install opencv-python-headless)")
    try:
        import albumentations as A

        aug = A.ImageCompression(quality_range=(quality, quality), p=1.0)
        out.append(Contender("albumentations ImageCompression", "NumPy HWC", lambda: [aug(image=im)["image"] for im in images], np.stack, n))
    except ImportError:
        skipped.append("albumentations (pip install albumentations)")
    try:
        from kornia.enhance import jpeg_codec_differentiable

        kq = torch.tensor([float(quality)])
        few = floats[:256]  # kornia is slow per image: time it on fewer
        out.append(Contender("kornia jpeg_codec_differentiable", "float tensor (1, C, H, W)",
                             lambda: [jpeg_codec_differentiable(x[None], kq)[0] for x in few], stack_outputs, len(few)))
    except ImportError:
        skipped.append("kornia (pip install kornia)")
    try:
        from torchvision.transforms import v2

        tv = v2.JPEG(quality)
        out.append(Contender("torchvision v2.JPEG", "uint8 tensor CHW", lambda: [tv(x) for x in tensors], stack_outputs, n))
        out.append(Contender("torchvision v2.JPEG", "PIL image", lambda: [tv(p) for p in pils], stack_outputs, n))
    except Exception as exc:  # the index's torchvision is a CUDA build that a CPU torch cannot import
        skipped.append(f"torchvision ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})")
    return out, skipped


def per_batch(images: np.ndarray, quality: int, batch_size: int) -> tuple[list[Contender], list[str]]:
    import torch
    from PIL import Image

    from helmholtz.transforms import JPEG, JPEGCollate

    skipped = []
    n = len(images) // batch_size * batch_size
    nhwc = [images[i : i + batch_size] for i in range(0, n, batch_size)]
    nchw = [torch.from_numpy(b).permute(0, 3, 1, 2).contiguous() for b in nhwc]
    samples = [[(torch.from_numpy(img).permute(2, 0, 1).contiguous(), k) for k, img in enumerate(b)] for b in nhwc]
    t = JPEG(quality)
    collate = JPEGCollate(t)
    out = [
        Contender("helmholtz jpeg.roundtrip", "NHWC batch (reference)", lambda: [jpeg.roundtrip(b, quality) for b in nhwc], np.concatenate, n),
        Contender("helmholtz JPEG", "uint8 batch (N, C, H, W)", lambda: [t(b) for b in nchw], stack_outputs, n),
        Contender("helmholtz JPEGCollate", "list of (tensor, label), collated", lambda: [collate(s)[0] for s in samples], stack_outputs, n),
    ]
    pils = [[Image.fromarray(img) for img in b] for b in nhwc]

    def pillow_batch(batch):
        res = []
        for p in batch:
            buf = io.BytesIO()
            p.save(buf, "JPEG", quality=quality)
            buf.seek(0)
            res.append(np.asarray(Image.open(buf).convert("RGB")))
        return np.stack(res)

    out.append(Contender("Pillow", "loop over PIL images", lambda: [pillow_batch(b) for b in pils], np.concatenate, n))
    try:
        import cv2

        cv2.setNumThreads(1)
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]

        def opencv_batch(batch):
            return np.stack([cv2.imdecode(cv2.imencode(".jpg", im[:, :, ::-1], params)[1], cv2.IMREAD_COLOR)[:, :, ::-1] for im in batch])

        out.append(Contender("OpenCV", "loop over NumPy HWC", lambda: [opencv_batch(b) for b in nhwc], np.concatenate, n))
    except ImportError:
        skipped.append("OpenCV")
    try:
        import albumentations as A

        aug = A.ImageCompression(quality_range=(quality, quality), p=1.0)
        out.append(Contender("albumentations ImageCompression", "loop over NumPy HWC",
                             lambda: [np.stack([aug(image=im)["image"] for im in b]) for b in nhwc], np.concatenate, n))
    except ImportError:
        skipped.append("albumentations")
    try:
        from kornia.enhance import jpeg_codec_differentiable

        kq = torch.full((batch_size,), float(quality))
        fl = [b.float() / 255 for b in nchw]
        out.append(Contender("kornia jpeg_codec_differentiable", "float batch (N, C, H, W)",
                             lambda: [jpeg_codec_differentiable(b, kq) for b in fl], stack_outputs, n))
    except ImportError:
        skipped.append("kornia")
    try:
        from torchvision.transforms import v2

        tv = v2.JPEG(quality)
        out.append(Contender("torchvision v2.JPEG", "uint8 batch (N, C, H, W)", lambda: [tv(b) for b in nchw], stack_outputs, n))
    except Exception as exc:
        skipped.append(f"torchvision ({type(exc).__name__})")
    return out, skipped


def measure(contenders: list[Contender], repeats: int) -> None:
    for c in contenders:  # warm-up, and the outputs for the equality check
        c.result = c.run()
    for _ in range(repeats):  # interleaved: every contender sees the same machine load
        for c in contenders:
            t0 = time.perf_counter()
            c.run()
            c.best = min(c.best, time.perf_counter() - t0)


def report(title: str, contenders: list[Contender], reference: np.ndarray, skipped: list[str]) -> None:
    base = contenders[0].best
    print(f"\n### {title}\n")
    print("| contender | input | img/s | time vs jpeg.roundtrip | equal to Pillow |")
    print("| --- | --- | ---: | ---: | ---: |")
    for c in contenders:
        got = c.outputs(c.result)
        equal = float(np.mean([np.array_equal(a, b) for a, b in zip(got, reference[: len(got)])]))
        print(f"| {c.name} | {c.how} | {c.images / c.best:,.0f} | {c.best / base:.2f}x | {equal:.1%} |")
    for s in skipped:
        print(f"\nskipped: {s}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", type=int, default=20)
    parser.add_argument("--images", type=int, default=2048, help="CIFAR-10 test images to use")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (helmholtz's C core follows it)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    images = load_images(args.images, args.data_dir)
    reference = pillow_reference(images, args.quality)
    import PIL

    print(f"torch {torch.__version__}, Pillow {PIL.__version__}, threads {torch.get_num_threads()}; "
          f"{len(images)} CIFAR-10 test images, q={args.quality}, 4:2:0, best of {args.repeats} interleaved runs")
    sample, skipped = per_sample(images, args.quality)
    measure(sample, args.repeats)
    report("Per sample (one call per image)", sample, reference, skipped)
    batch, skipped = per_batch(images, args.quality, args.batch_size)
    measure(batch, args.repeats)
    report(f"Per batch ({args.batch_size} images per call)", batch, reference, skipped)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
