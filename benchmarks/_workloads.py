"""The workloads and peers the speed targets are measured on (bench_targets.py, test_speed.py).

Workloads: the 10,000 CIFAR-10 test images; 512x512 crops of the photographs
scikit-image ships; a ragged list of mixed-size crops of those photographs.
Peers: Pillow, OpenCV and simplejpeg, each run in a plain loop and in a
thread pool (one thread per core, each thread looping over its own share of
the images: per-image tasks would drown in executor overhead). All three
release the GIL while they code.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from _common import best_time, cifar_path

from helmholtz._codec.registry import default_threads

QUALITY = 20
PAPER_QUALITIES = [1, 5, 10, 15, 20, 25, 50, 75, 100]


def cores() -> int:
    """The cores this process may use (the codec's own default thread count)."""
    return default_threads()


# ---- data ----------------------------------------------------------------------


def cifar_test(data_dir: str | None = None) -> np.ndarray | None:
    path = cifar_path(data_dir)
    if path is None:
        return None
    with np.load(path) as d:
        return np.ascontiguousarray(d["x_test"])


_PHOTO_NAMES = ["astronaut", "coffee", "chelsea", "motorcycle_left", "motorcycle_right", "rocket", "immunohistochemistry", "colorwheel"]


def _photos(min_side: int = 512) -> list[np.ndarray]:
    """The RGB photographs bundled with scikit-image, upscaled (bicubic) to at least min_side."""
    try:
        from skimage import data as skdata
    except ImportError:
        return []
    from PIL import Image

    out = []
    for name in _PHOTO_NAMES:
        try:
            img = np.asarray(getattr(skdata, name)())
        except Exception:  # some need a download: skip them
            continue
        if img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8:
            h, w = img.shape[:2]
            if min(h, w) < min_side:
                scale = min_side / min(h, w)
                img = np.asarray(Image.fromarray(img).resize((int(np.ceil(w * scale)), int(np.ceil(h * scale))), Image.BICUBIC))
            out.append(np.ascontiguousarray(img))
    return out


def photographs(count: int = 32, size: int = 512) -> np.ndarray | None:
    """count crops of size x size (every other round mirrored), from the photographs in turn."""
    photos = _photos(size)
    if not photos:
        return None
    rng = np.random.default_rng(0)
    out = []
    while len(out) < count:
        img = photos[len(out) % len(photos)]
        h, w = img.shape[:2]
        y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        crop = img[y : y + size, x : x + size]
        if (len(out) // len(photos)) % 2:
            crop = crop[:, ::-1]
        out.append(np.ascontiguousarray(crop))
    return np.stack(out)


def ragged_crops(count: int = 1000, smallest: int = 8, largest: int = 512) -> list[np.ndarray] | None:
    """count crops of the photographs, height and width each uniform in [smallest, largest]."""
    photos = _photos(largest)
    if not photos:
        return None
    rng = np.random.default_rng(1)
    out = []
    for k in range(count):
        img = photos[k % len(photos)]
        h, w = (int(v) for v in rng.integers(smallest, largest + 1, size=2))
        y, x = rng.integers(0, img.shape[0] - h + 1), rng.integers(0, img.shape[1] - w + 1)
        out.append(np.ascontiguousarray(img[y : y + h, x : x + w]))
    return out


# ---- peers -----------------------------------------------------------------------


def roundtrip_peers(quality: int = QUALITY) -> dict:
    """name -> fn(image) -> decoded image, 4:2:0 at `quality` (encode + decode)."""
    found = {}
    try:
        from PIL import Image

        def pillow(img):
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, "JPEG", quality=quality, subsampling="4:2:0")
            buf.seek(0)
            return np.asarray(Image.open(buf))

        found["Pillow"] = pillow
    except ImportError:
        pass
    try:
        import cv2

        cv2.setNumThreads(1)
        params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]

        def opencv(img):
            ok, buf = cv2.imencode(".jpg", img, params)
            return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)

        found["OpenCV"] = opencv
    except (ImportError, AttributeError):
        pass
    try:
        import simplejpeg

        def sj(img):
            return simplejpeg.decode_jpeg(simplejpeg.encode_jpeg(img, quality=quality, colorsubsampling="420"))

        found["simplejpeg"] = sj
    except ImportError:
        pass
    return found


def size_peers(qualities) -> dict:
    """name -> fn(image) -> [file size at each quality] (encode and take the length)."""
    found = {}
    try:
        from PIL import Image

        def pillow(img):
            sizes = []
            for q in qualities:
                buf = io.BytesIO()
                Image.fromarray(img).save(buf, "JPEG", quality=q, subsampling="4:2:0")
                sizes.append(buf.tell())
            return sizes

        found["Pillow"] = pillow
    except ImportError:
        pass
    try:
        import cv2

        cv2.setNumThreads(1)

        def opencv(img):
            return [cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])[1].size for q in qualities]

        found["OpenCV"] = opencv
    except ImportError:
        pass
    try:
        import simplejpeg

        def sj(img):
            return [len(simplejpeg.encode_jpeg(img, quality=q, colorsubsampling="420")) for q in qualities]

        found["simplejpeg"] = sj
    except ImportError:
        pass
    return found


def loop(fn, images):
    return [fn(im) for im in images]


def pooled(fn, images, pool: ThreadPoolExecutor, threads: int):
    """fn over images on the pool: each thread loops over an interleaved share (balanced for ragged lists)."""
    shares = [images[t::threads] for t in range(threads)]
    return [r for part in pool.map(lambda share: [fn(im) for im in share], shares) for r in part]


def time_peer(fn, images, repeats: int, threads: int) -> tuple[str, float]:
    """The better of a loop and a pool of `threads` threads: (how, seconds)."""
    fn(images[0])  # warm-up
    t_loop = best_time(lambda: loop(fn, images), repeats)
    if threads < 2:
        return "loop", t_loop
    with ThreadPoolExecutor(threads) as pool:
        t_pool = best_time(lambda: pooled(fn, images, pool, threads), repeats)
    return ("loop", t_loop) if t_loop <= t_pool else (f"{threads} threads", t_pool)
