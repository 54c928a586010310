"""The trial runner of audio data sets: MP3 at a bitrate, mel spectrograms, the authors' audio CNNs.

For one trial at ``bitrate`` kbps:

1. MP3 round trip of the train and test clips with the real LAME encoder
   (:func:`helmholtz.audio.mp3_roundtrip`: aligned, exact bits); the level
   ``pcm`` (``bitrate=None``) keeps the 16-bit PCM as the uncompressed baseline.
   The rate is the exact MP3 bits of train + test over their duration.
2. Each clip is cut or zero-padded at its end to ``clip_seconds`` and turned
   into a 96-band mel spectrogram in dB (:func:`helmholtz.audio.mel_spectrogram`)
   on the device; features are standardised with the training set's scalar
   mean and standard deviation.
3. One of the authors' CNNs (:func:`helmholtz.models.audio_model`) trains with
   the recipe's optimiser (``paper``: Adadelta, ``fast``: Adam; batch 50) in
   the one trainer (:func:`helmholtz._ml.trainer.fit`), testing after every epoch.

Besides the usual columns, the row's ``extra`` holds the authors' audio
accuracy (mean of the 10 best epochs, ``accuracy_top10``), the MPEG sample
rate, the input shape and the feature settings.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from .._audio.mp3 import check_bitrate
from .._ml.curves import authors_accuracy, best_epoch, convergence_epoch
from .._ml.trainer import EVAL_BATCH, fit
from ..data import AudioDataset
from ..errors import DataError
from .fingerprint import array_sha256
from .progress import progress_bar
from .recipes import AudioRecipe, get_audio_recipe
from .runners import Prepared, TrainOptions, TrialRunner
from .spec import TrialSpec

__all__ = [
    "FSDD_FEATURES",
    "RUNNER",
    "check_level",
    "compress_clips",
    "fix_length",
    "clip_features",
    "standardized_features",
    "train_and_evaluate",
]

#: Feature settings used for FSDD (8 kHz): 1 s clips (99.3 % of FSDD is shorter),
#: 64 ms windows, 8 ms hop -> 96 x 126 spectrograms.
FSDD_FEATURES = {"clip_seconds": 1.0, "n_mels": 96, "n_fft": 512, "hop_length": 64}


def compress_clips(waveforms: list, sample_rate: int, bitrate: int | None, workers: int | None = None) -> tuple[list, int, float, int]:
    """MP3 round trip of clips; returns (clips, exact bits, seconds, MPEG rate).

    ``bitrate=None`` returns the clips unchanged with 16 bits per sample.
    """
    seconds = float(sum(w.shape[0] for w in waveforms) / sample_rate)
    if bitrate is None:
        return list(waveforms), int(16 * sum(w.shape[0] for w in waveforms)), seconds, int(sample_rate)
    from ..audio import mp3_roundtrip

    r = mp3_roundtrip(list(waveforms), sample_rate, bitrate, workers=workers)
    return r.audio, r.total_bits, seconds, r.codec_rate


def fix_length(waveforms: list, n: int) -> np.ndarray:
    """Stack 1-D int16 clips into ``(N, n)``: longer ones are cut at the end, shorter ones zero-padded."""
    out = np.zeros((len(waveforms), n), dtype=np.int16)
    for i, w in enumerate(waveforms):
        m = min(n, w.shape[0])
        out[i, :m] = w[:m]
    return out


def clip_features(waveforms: list, sample_rate: int, *, clip_seconds: float, n_mels: int, n_fft: int, hop_length: int, device: Any = "cpu") -> Any:
    """Mel spectrograms in dB, ``(N, 1, n_mels, frames)`` float32 on ``device``."""
    from ..audio import mel_spectrogram

    n = int(round(clip_seconds * sample_rate))
    if n < 1:
        raise ValueError(f"clip_seconds must give at least one sample; got {clip_seconds}")
    x = fix_length(waveforms, n)
    return mel_spectrogram(x, sample_rate, n_mels=n_mels, n_fft=n_fft, hop_length=hop_length, device=device).unsqueeze(1)


def standardized_features(train_clips: list, test_clips: list, sample_rate: int, *, device: Any = "cpu", **feature_kwargs: Any) -> tuple[Any, Any, tuple[float, float]]:
    """:func:`clip_features` of both splits, standardised with the training set's scalar mean and std.

    Returns the two feature tensors and ``(mean, std)``, which evaluations
    reuse on test clips coded at other bitrates.
    """
    f_tr = clip_features(train_clips, sample_rate, device=device, **feature_kwargs)
    f_te = clip_features(test_clips, sample_rate, device=device, **feature_kwargs)
    mean, std = f_tr.mean(), f_tr.std().clamp_min(1e-6)
    stats = tuple(float(v) for v in _read_back(mean, std))
    return (f_tr - mean) / std, (f_te - mean) / std, stats


def _read_back(*scalars: Any) -> list[float]:
    """Several 0-d tensors read back in one call."""
    import torch

    return torch.stack(list(scalars)).tolist()


def train_and_evaluate(
    f_train: Any,
    y_train: Any,
    f_test: Any,
    y_test: Any,
    *,
    model: Any,
    num_classes: int,
    recipe: AudioRecipe,
    seed: int = 0,
    epochs: int = 200,
    device: Any = "cpu",
    compile: bool = False,
    on_epoch: Any = None,
) -> dict:
    """Train an authors' audio CNN on feature tensors ``(N, 1, n_mels, frames)``; test after every epoch.

    Batches are drawn on the device from a seeded device generator.

    Returns
    -------
    dict
        ``model, params (Keras count), test_accuracy, best_test_accuracy,
        best_epoch, accuracy (top-10 mean), convergence_epoch, accuracy_curve,
        loss_curve, train_time_s, images_per_s, state``; epochs count from 1.
    """
    import torch

    from ..models import audio_model, keras_parameter_count, resolve_audio_model

    key = resolve_audio_model(model)
    dev = torch.device(device)
    f_tr, f_te = f_train.to(dev), f_test.to(dev)
    yt_tr = torch.as_tensor(np.asarray(y_train, dtype=np.int64)).to(dev)
    yt_te = torch.as_tensor(np.asarray(y_test, dtype=np.int64)).to(dev)
    torch.manual_seed(seed)
    net = audio_model(key, tuple(int(v) for v in f_tr.shape[2:]), int(num_classes)).to(dev)
    params = keras_parameter_count(net)
    gen = torch.Generator(device=dev).manual_seed(seed)
    batch = recipe.batch_size

    def train_batches():
        order = torch.randperm(f_tr.shape[0], device=dev, generator=gen)
        for s in range(0, f_tr.shape[0], batch):
            idx = order[s : s + batch]
            yield f_tr[idx], yt_tr[idx]

    def test_batches():
        for s in range(0, f_te.shape[0], EVAL_BATCH):
            yield f_te[s : s + EVAL_BATCH], yt_te[s : s + EVAL_BATCH]

    result = fit(net, train_batches, test_batches, epochs=epochs, optimizer=recipe.make_optimizer(net), device=dev,
                 compile=compile, on_epoch=on_epoch, name=f"{key} seed={seed}")
    curve = result.accuracy_curve
    best = best_epoch(curve)
    return {
        "model": key,
        "params": params,
        "test_accuracy": curve[-1],
        "best_test_accuracy": curve[best - 1],
        "best_epoch": best,
        "accuracy": authors_accuracy(curve),
        "convergence_epoch": convergence_epoch(curve),
        "accuracy_curve": curve,
        "loss_curve": result.loss_curve,
        "train_time_s": result.train_time_s,
        "images_per_s": result.samples_per_s,
        "state": result.state,
    }


# ------------------------------------------------------------------------------ the runner
def check_level(level: Any) -> int | None:
    """A sweep level as an MPEG Layer III bitrate in kbps; None (or ``"pcm"``) is the uncompressed baseline."""
    if level is None or (isinstance(level, str) and level.strip().lower() == "pcm"):
        return None
    if isinstance(level, float) and level.is_integer():
        level = int(level)
    return check_bitrate(level)


def _check_data(ds: Any, levels: Sequence[Any]) -> None:
    """Every bitrate checked against the data set's sample rate before any coding."""
    from ..audio import codec_sample_rate

    if not isinstance(ds, AudioDataset):
        raise DataError(f"audio trials need an AudioDataset; got {type(ds).__name__}")
    for level in levels:
        br = check_level(level)
        if br is not None:
            try:
                codec_sample_rate(ds.sample_rate, br)
            except ValueError as exc:
                raise ValueError(f"bitrates: {exc} (data set {ds.name!r})") from None


def _prepare(ds: AudioDataset, level: Any, options: TrainOptions) -> Prepared:
    """MP3 round trip of both splits (one coding pass each), then standardised features on the device."""
    t0 = time.perf_counter()
    bitrate = check_level(level)
    x_tr, y_tr = ds.split("train")
    x_te, y_te = ds.split("test")
    workers = options.num_threads
    tr, tr_bits, tr_sec, codec_rate = compress_clips(x_tr, ds.sample_rate, bitrate, workers)
    te, te_bits, te_sec, _ = compress_clips(x_te, ds.sample_rate, bitrate, workers)
    f_tr, f_te, stats = standardized_features(tr, te, ds.sample_rate, device=options.device, **FSDD_FEATURES)
    return Prepared(
        train=(f_tr, y_tr),
        test=(f_te, y_te),
        rate={"bits_per_second": (tr_bits + te_bits) / (tr_sec + te_sec)},
        data_sha256=array_sha256([f_tr, y_tr, f_te, y_te]),
        compress_time_s=time.perf_counter() - t0,
        extra={"codec_sample_rate": codec_rate, "feature_mean": stats[0], "feature_std": stats[1]},
    )


def _describe(spec: TrialSpec, ds: AudioDataset) -> dict:
    return {**get_audio_recipe(spec.recipe).describe(spec.epochs), "features": dict(FSDD_FEATURES)}


def _train(spec: TrialSpec, ds: AudioDataset, prepared: Prepared, options: TrainOptions) -> dict:
    recipe = get_audio_recipe(spec.recipe)
    (f_tr, y_tr), (f_te, y_te) = prepared.train, prepared.test
    bar = progress_bar(spec.epochs, f"  {spec.label()}", options.progress, leave=False, position=1)

    def on_epoch(epoch: int, loss: float, acc: float) -> None:
        bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.3f}")
        bar.update(1)

    try:
        r = train_and_evaluate(f_tr, y_tr, f_te, y_te, model=spec.model, num_classes=ds.num_classes, recipe=recipe, seed=spec.seed,
                               epochs=spec.epochs, device=options.device, compile=options.compile, on_epoch=on_epoch)
    finally:
        bar.close()
    return {
        "params": r["params"],
        "test_accuracy": r["test_accuracy"],
        "best_test_accuracy": r["best_test_accuracy"],
        "best_epoch": r["best_epoch"],
        "convergence_epoch": r["convergence_epoch"],
        "accuracy_curve": r["accuracy_curve"],
        "loss_curve": r["loss_curve"],
        "train_images": len(y_tr),
        "test_images": len(y_te),
        "train_time_s": r["train_time_s"],
        "images_per_s": r["images_per_s"],
        "state": r["state"],
        "extra": {
            "accuracy_top10": r["accuracy"],
            "codec_sample_rate": prepared.extra.get("codec_sample_rate"),
            "input_shape": [int(v) for v in f_tr.shape[1:]],
            "optimizer": recipe.optimizer,
            "batch_size": recipe.batch_size,
            "features": dict(FSDD_FEATURES),
            "feature_mean": prepared.extra.get("feature_mean"),
            "feature_std": prepared.extra.get("feature_std"),
        },
    }


def _evaluate(spec: TrialSpec, ds: AudioDataset, record: dict, state: dict, requests: list, options: TrainOptions) -> list[tuple]:
    """Cross-bitrate accuracy: the test clips coded at each ``eval_bitrate``, standardised as the trial's training set was."""
    import torch

    from ..models import audio_model

    extra = record.get("extra") or {}
    if extra.get("feature_mean") is None or extra.get("feature_std") is None:
        raise ValueError(f"trial {spec.key()!r} has no stored feature statistics (trained by an older helmholtz); retrain it to evaluate")
    dev = torch.device(options.device)
    x_te, y_te = ds.split("test")
    yt = torch.as_tensor(np.asarray(y_te, dtype=np.int64)).to(dev)
    net = None
    out = []
    for req in requests:
        t0 = time.perf_counter()
        clips, _, _, _ = compress_clips(x_te, ds.sample_rate, None if req.eval_bitrate is None else int(req.eval_bitrate), options.num_threads)
        feats = (clip_features(clips, ds.sample_rate, device=dev, **{k: v for k, v in (extra.get("features") or FSDD_FEATURES).items()})
                 - extra["feature_mean"]) / extra["feature_std"]
        if net is None:
            net = audio_model(spec.model, tuple(int(v) for v in feats.shape[2:]), ds.num_classes)
            net.load_state_dict(state)
            net = net.to(dev).eval()
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        with torch.no_grad():
            for s in range(0, feats.shape[0], EVAL_BATCH):
                correct += (net(feats[s : s + EVAL_BATCH]).argmax(1) == yt[s : s + EVAL_BATCH]).sum()
        out.append((req, int(correct.item()) / max(1, len(y_te)), len(y_te), time.perf_counter() - t0))
    return out


def _check_model(name: Any) -> str:
    from ..models import resolve_audio_model

    return resolve_audio_model(name)


RUNNER = TrialRunner(
    level="bitrate",
    check_model=_check_model,
    check_level=check_level,
    prepare=_prepare,
    train=_train,
    describe_recipe=_describe,
    check_data=_check_data,
    evaluate=_evaluate,
    requires=(("audio", ("lameenc", "miniaudio", "scipy")),),  # LAME to encode, dr_mp3 to decode, resampling
)
