"""Benchmark: exact JPEG sizes by counting bits vs by encoding with Pillow, OpenCV, simplejpeg.

Run::

    PYTHONPATH=. python benchmarks/bench_entropy.py --data-dir ../shared/data [--peer-limit 5000]

Part 1 (issue 3, item 6): the scan bits of the CIFAR-10 training images at
the paper's nine qualities. ``helmholtz`` counts them with ``jpeg.bits`` on
the coefficients (``jpeg.coefficients_many`` when the C lossy path is built;
otherwise the coefficients are precomputed with a batched NumPy transform
that equals ``jpeg.coefficients`` and only the bit counting is timed). The
peers encode every image and take ``len(bytes)``, in a loop and in a thread
pool with one thread per core; the best of both counts. Peers run on the
first ``--peer-limit`` images and their rate is compared per image.

Part 2: ``jpeg.encode`` (C) against Pillow and OpenCV encoding a CIFAR batch.

Prints a Markdown table of images/s and MP/s and the ratios.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from _common import best_time, cifar_path

QUALITIES = [1, 5, 10, 15, 20, 25, 50, 75, 100]


def batched_coefficients(images: np.ndarray, qualities: list[int], chunk: int = 2000):
    """Quantised 4:2:0 coefficients of (N, H, W, 3) images with H, W multiples of 16.

    The islow transform of :mod:`helmholtz._codec.reference` vectorised over the
    batch; equals ``jpeg.coefficients(images, q)`` (checked on a sample).
    Returns, per quality, a tuple (Y, Cb, Cr) of int16 (N, bh, bw, 8, 8).
    """
    from helmholtz._codec import reference as ref
    from helmholtz.jpeg import quant_tables

    n, h, w, _ = images.shape
    raw = [np.empty((n, h // 8, w // 8, 8, 8), np.int16)]
    raw += [np.empty((n, h // 16, w // 16, 8, 8), np.int16) for _ in range(2)]
    bias = np.arange(w // 2) % 2
    for s in range(0, n, chunk):
        ycc = ref.rgb_to_ycbcr(images[s : s + chunk])
        planes = [ycc[..., 0]]
        for c in (1, 2):
            p = ycc[..., c]
            total = p[:, 0::2, 0::2] + p[:, 0::2, 1::2] + p[:, 1::2, 0::2] + p[:, 1::2, 1::2]
            planes.append((total + 1 + bias) >> 2)
        for k, p in enumerate(planes):
            m, ph, pw = p.shape
            blocks = p.reshape(m, ph // 8, 8, pw // 8, 8).swapaxes(2, 3) - 128
            raw[k][s : s + chunk] = ref.fdct_islow(blocks)
    out = []
    for q in qualities:
        luma, chroma = quant_tables(q)
        comps = []
        for k, r in enumerate(raw):
            d = 8 * (luma if k == 0 else chroma).astype(np.int32)
            r32 = r.astype(np.int32)
            comps.append((np.sign(r32) * ((np.abs(r32) + d // 2) // d)).astype(np.int16))
        out.append(tuple(comps))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--limit", type=int, default=50000, help="training images for helmholtz (default all 50,000)")
    ap.add_argument("--peer-limit", type=int, default=5000, help="training images the peers encode")
    ap.add_argument("--encode-batch", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    from PIL import Image

    from helmholtz import jpeg
    from helmholtz._codec import registry

    try:
        from helmholtz._codec import native
    except ImportError:
        sys.exit("helmholtz._codec.native (the C entropy core) is not built")
    threads = registry.default_threads()
    path = cifar_path(args.data_dir)
    if path is None:
        sys.exit("cifar10.npz not found: pass --data-dir or set HELMHOLTZ_DATA")
    with np.load(path) as z:
        x = np.ascontiguousarray(z["x_train"][: args.limit])
    n = len(x)
    mp = x.shape[1] * x.shape[2] / 1e6
    rows = []

    # ---- helmholtz: bits -------------------------------------------------
    from helmholtz._codec import registry as backends

    try:
        lossy_native = backends.get("cpu") is not None
    except Exception:  # the C lossy path is not built yet
        lossy_native = False
    t0 = time.perf_counter()
    coefs = batched_coefficients(x, QUALITIES)
    prep = time.perf_counter() - t0
    check = jpeg.coefficients(x[:20], 20, backend="numpy")
    assert all(np.array_equal(a, b[:20]) for a, b in zip(check.components, coefs[QUALITIES.index(20)]))

    def count_bits():
        return [native.entropy_bits(c, 2, 2, False, threads) for c in coefs]

    t_bits = best_time(count_bits, args.repeat)
    bits = np.stack(count_bits())
    rows.append(("helmholtz bits (C, from coefficients)", n * len(QUALITIES), t_bits))

    def count_bits_opt():
        return [native.entropy_bits(c, 2, 2, True, threads) for c in coefs]

    rows.append(("helmholtz bits optimize=True (C)", n * len(QUALITIES), best_time(count_bits_opt, 1)))
    if lossy_native:
        t_e2e = best_time(lambda: jpeg.bits_many(x, QUALITIES), 1)
        rows.append(("helmholtz bits_many (C lossy + bits)", n * len(QUALITIES), t_e2e))

    # ---- peers: encode and take the size -----------------------------------
    px = x[: args.peer_limit]
    m = len(px)
    peers = {}

    def pil_size(img, q):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=q, subsampling="4:2:0")
        return buf.tell()

    peers["Pillow"] = pil_size
    try:
        import cv2

        cv2.setNumThreads(1)

        def cv_size(img, q):
            ok, enc = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
            return enc.size

        peers["OpenCV"] = cv_size
    except ImportError:
        print("OpenCV not installed: skipped", file=sys.stderr)
    try:
        import simplejpeg

        def sj_size(img, q):
            return len(simplejpeg.encode_jpeg(img, quality=q, colorspace="RGB", colorsubsampling="420"))

        peers["simplejpeg"] = sj_size
    except ImportError:
        print("simplejpeg not installed: skipped", file=sys.stderr)

    header = 623 + 2  # header + EOI of a colour Pillow file (reference.md, section 5)
    for name, fn in peers.items():

        def loop(fn=fn):
            return [[fn(img, q) for img in px] for q in QUALITIES]

        def pool(fn=fn):
            with ThreadPoolExecutor(threads) as ex:
                return [list(ex.map(lambda img, q=q: fn(img, q), px, chunksize=256)) for q in QUALITIES]

        t_loop = best_time(loop, 1)
        t_pool = best_time(pool, 1)
        sizes = np.array(pool())
        rows.append((f"{name} encode + len ({'pool' if t_pool < t_loop else 'loop'})", m * len(QUALITIES), min(t_loop, t_pool)))
        if name == "Pillow":  # sizes agree with the bit counts (stuffing is the only unknown)
            lower = header + (bits[:, :m] + 7) // 8
            assert (sizes >= lower).all() and (sizes - lower < 0.05 * sizes + 8).all()

    # ---- encode ------------------------------------------------------------------
    eb = min(args.encode_batch, n)
    q20 = tuple(c[:eb] for c in coefs[QUALITIES.index(20)])
    tables = np.ascontiguousarray(np.broadcast_to(np.stack(jpeg.quant_tables(20)), (eb, 2, 8, 8)))
    t_enc = best_time(lambda: native.entropy_encode(q20, 2, 2, 32, 32, tables, False, threads), args.repeat)
    files = native.entropy_encode(q20, 2, 2, 32, 32, tables, False, threads)
    ref_file = io.BytesIO()
    Image.fromarray(x[0]).save(ref_file, "JPEG", quality=20, subsampling="4:2:0")
    assert files[0] == ref_file.getvalue()
    enc_rows = [("helmholtz encode (C entropy from coefficients)", eb, t_enc)]
    ex_imgs = x[:eb]
    if lossy_native:
        enc = jpeg.encode
        assert enc(ex_imgs[:1], 20)[0] == ref_file.getvalue()
        enc_rows.append(("helmholtz jpeg.encode (C lossy + entropy)", eb, best_time(lambda: enc(ex_imgs, 20), args.repeat)))

    def pil_enc_loop():
        return [pil_size(img, 20) for img in ex_imgs]

    def pil_enc_pool():
        with ThreadPoolExecutor(threads) as ex:
            return list(ex.map(lambda img: pil_size(img, 20), ex_imgs, chunksize=256))

    enc_rows.append(("Pillow encode", eb, min(best_time(pil_enc_loop, 1), best_time(pil_enc_pool, 1))))
    if "OpenCV" in peers:
        cvf = peers["OpenCV"]

        def cv_enc_pool():
            with ThreadPoolExecutor(threads) as ex:
                return list(ex.map(lambda img: cvf(img, 20), ex_imgs, chunksize=256))

        enc_rows.append(("OpenCV encode", eb, min(best_time(lambda: [cvf(i, 20) for i in ex_imgs], 1), best_time(cv_enc_pool, 1))))

    def table(title, rs):
        fastest_peer = max(cnt / t for name, cnt, t in rs if not name.startswith("helmholtz"))
        print(f"\n### {title}\n")
        print("| method | images | seconds | images/s | MP/s | vs fastest peer |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, cnt, t in rs:
            rate = cnt / t
            print(f"| {name} | {cnt} | {t:.3f} | {rate:,.0f} | {rate * mp:,.1f} | {rate / fastest_peer:.2f}x |")

    print(f"\ncores: {threads}; images {x.shape[1]}x{x.shape[2]} RGB, 4:2:0; qualities {QUALITIES}")
    print(f"(coefficient precompute, batched NumPy, not timed in the rows: {prep:.1f} s; C lossy path built: {lossy_native})")
    table("Exact sizes of CIFAR-10 train at nine qualities", rows)
    table(f"Encoding a CIFAR batch of {eb} at q=20", enc_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
