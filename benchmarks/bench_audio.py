"""MP3 round-trip throughput: helmholtz.audio against the ``lame`` command line per file.

Measures seconds of audio round-tripped (encode + decode, aligned) per second
of wall time, side by side in one run:

* ``helmholtz, 1 thread`` / ``helmholtz, N threads``: :func:`helmholtz.audio.mp3_roundtrip`
  (LAME via lameenc, dr_mp3 via miniaudio, a thread pool);
* ``lame CLI, 1 process`` / ``lame CLI, N processes``: for every clip,
  ``lame -b B`` (WAV -> MP3) then ``lame --decode`` (MP3 -> WAV), the way a
  shell script over a data set runs. WAV files are written before the clock
  starts; the decoded WAVs are read back inside it. Skipped cleanly when
  ``lame`` is not on the PATH.

Clips are FSDD recordings when ``fsdd.npz`` is found (``--data-dir``,
``$HELMHOLTZ_DATA`` or ``../shared/data``), else synthetic 0.4 s clips at 8 kHz.

    python benchmarks/bench_audio.py --clips 300 --bitrates 8,32,128 --workers 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helmholtz import audio as A  # noqa: E402


def load_clips(n: int, data_dir: str | None) -> tuple[list[np.ndarray], int, str]:
    try:
        from helmholtz.data import load_fsdd

        ds = load_fsdd(data_dir)
        idx = np.random.default_rng(0).choice(len(ds), size=min(n, len(ds)), replace=False)
        return [ds.waveforms[i] for i in idx], ds.sample_rate, "FSDD"
    except FileNotFoundError:
        rng = np.random.default_rng(0)
        t = np.arange(3200) / 8000
        clips = [(4000 * np.sin(2 * np.pi * (200 + 50 * i % 700) * t) + rng.normal(0, 500, t.size)).astype(np.int16) for i in range(n)]
        return clips, 8000, "synthetic"


def write_wav(path: Path, x: np.ndarray, sr: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(x.tobytes())


def lame_cli(paths: list[Path], bitrate: int, codec_rate: int, workers: int) -> float:
    """Round trip every WAV with two ``lame`` runs; returns wall seconds."""

    def one(p: Path) -> int:
        mp3, out = p.with_suffix(".mp3"), p.with_suffix(".out.wav")
        subprocess.run(["lame", "--quiet", "-m", "m", "-b", str(bitrate), "--resample", f"{codec_rate / 1000:g}", str(p), str(mp3)], check=True)
        subprocess.run(["lame", "--quiet", "--decode", str(mp3), str(out)], check=True)
        with wave.open(str(out), "rb") as w:
            return w.getnframes()

    t = time.perf_counter()
    if workers == 1:
        for p in paths:
            one(p)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, paths))
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=300)
    ap.add_argument("--bitrates", default="8,32,128")
    ap.add_argument("--workers", type=int, default=2, help="threads / processes for the parallel rows (2 cores here)")
    ap.add_argument("--repeat", type=int, default=2, help="best of this many runs for the helmholtz rows")
    ap.add_argument("--data-dir", default=None)
    a = ap.parse_args(argv)
    clips, sr, source = load_clips(a.clips, a.data_dir)
    seconds = sum(c.shape[0] for c in clips) / sr
    have_lame = shutil.which("lame") is not None
    print(f"{len(clips)} {source} clips, {seconds:.1f} s of audio at {sr} Hz; {os.cpu_count()} CPUs; lame CLI: {'yes' if have_lame else 'not installed (rows skipped)'}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, c in enumerate(clips):
            p = Path(tmp) / f"c{i}.wav"
            write_wav(p, c, sr)
            paths.append(p)
        for br in (int(b) for b in a.bitrates.split(",")):
            rate = A.codec_sample_rate(sr, br)
            A.mp3_roundtrip(clips[:4], sr, br, workers=1)  # warm up
            timing = {}
            for w in sorted({1, a.workers}):
                best = min(_timed(lambda: A.mp3_roundtrip(clips, sr, br, workers=w)) for _ in range(a.repeat))
                timing[f"helmholtz, {w} thread{'s' if w > 1 else ''}"] = best
            if have_lame:
                for w in sorted({1, a.workers}):
                    timing[f"lame CLI, {w} process{'es' if w > 1 else ''}"] = lame_cli(paths, br, rate, w)
            ref = timing.get(f"lame CLI, {a.workers} process{'es' if a.workers > 1 else ''}")
            for name, t in timing.items():
                rows.append((name, br, rate, t, seconds / t, (ref / t) if ref else None))
    print()
    print("| contender | kbps | MPEG rate (Hz) | wall s | audio s per s | x lame CLI (parallel) |")
    print("|---|---|---|---|---|---|")
    for name, br, rate, t, speed, ratio in rows:
        print(f"| {name} | {br} | {rate} | {t:.2f} | {speed:,.0f} | {'-' if ratio is None else f'{ratio:.1f}'} |")
    return 0


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    sys.exit(main())
