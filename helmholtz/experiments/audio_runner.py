"""One audio trial of the Helmholtz method, and a small FSDD sweep driver.

:func:`run_audio_trial` does everything for one (bitrate, model, seed):

1. MP3 round trip of the train and test clips at ``bitrate`` kbps
   (:func:`helmholtz.audio.mp3_roundtrip`: real LAME, aligned, exact bits);
   ``bitrate=None`` keeps the 16-bit PCM as the uncompressed baseline.
2. Each clip is cut or zero-padded at its end to ``clip_seconds`` and turned
   into a 96-band mel spectrogram in dB (:func:`helmholtz.audio.mel_spectrogram`)
   on ``device``; features are standardised with the training set's mean and
   standard deviation (one scalar each).
3. One of the authors' CNNs (:func:`helmholtz._audio_models.audio_model`) is
   trained with Adadelta (Keras 2 defaults: lr 1.0, rho 0.95, eps 1e-7) in
   batches of 50, as in the paper, or with ``optimizer="adam"`` (lr 1e-3), which
   gets there in fewer epochs; the test set is evaluated after every epoch.

It returns a flat dict (keys follow :data:`helmholtz.store.COLUMNS` where they
exist) with the authors' two summary numbers: ``accuracy`` = mean of the 10
best epoch accuracies (all of them when fewer than 10 epochs ran) and
``convergence_epoch`` = ``i + 1`` for the first 0-based epoch index ``i`` with
``mean(curve[i:i+10]) > 0.99 * max(curve)`` (epochs counted from 1, like
``best_epoch`` and like :mod:`helmholtz.sweep`).

:data:`RUNNER` (:func:`make_trial_runner`) plugs the same steps into
``helmholtz sweep`` (data-set kind ``"audio"``, level ``bitrate``).
"""

from __future__ import annotations

import socket
import time
from typing import Any, Callable, Sequence

import numpy as np

from .._ml.curves import authors_accuracy, convergence_epoch

__all__ = [
    "FSDD_FEATURES",
    "OPTIMIZERS",
    "standardized_features",
    "train_and_evaluate",
    "make_trial_runner",
    "RUNNER",
    "compress_clips",
    "fix_length",
    "clip_features",
    "run_audio_trial",
    "run_fsdd_trial",
    "sweep_fsdd",
]

#: Optimisers: the paper's Adadelta (Keras 2 defaults) and Adam (lr 1e-3, faster).
OPTIMIZERS = ("adadelta", "adam")

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


def _check_labels(y: Any, n: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must have one label per clip ({n}); got shape {y.shape}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer labels; got dtype {y.dtype}")
    return y.astype(np.int64)


def _check_clips(x: Any, name: str) -> list:
    if isinstance(x, np.ndarray) and x.ndim == 2:
        x = list(x)
    if not isinstance(x, (list, tuple)) or len(x) == 0:
        raise TypeError(f"{name} must be a non-empty list of 1-D int16 waveforms or an (N, T) int16 array")
    for i, w in enumerate(x):
        if not isinstance(w, np.ndarray) or w.dtype != np.int16 or w.ndim != 1 or w.size == 0:
            raise TypeError(f"{name}[{i}] must be a non-empty 1-D int16 array; got {getattr(w, 'dtype', type(w).__name__)} {getattr(w, 'shape', '')}")
    return list(x)


def run_audio_trial(
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    *,
    sample_rate: int,
    bitrate: int | None,
    model: Any = "conv3",
    seed: int = 0,
    epochs: int = 200,
    device: Any = "cpu",
    batch_size: int = 50,
    optimizer: str = "adadelta",
    lr: float | None = None,
    num_classes: int | None = None,
    clip_seconds: float = 1.0,
    n_mels: int = 96,
    n_fft: int = 512,
    hop_length: int = 64,
    workers: int | None = None,
    dataset: str = "audio",
    log: Callable[[str], None] | None = None,
) -> dict:
    """Compress, featurise, train and evaluate one audio model at one bitrate.

    Parameters
    ----------
    x_train, x_test : list of ndarray or ndarray
        Mono int16 clips (any lengths) or ``(N, T)`` int16 arrays.
    y_train, y_test : array_like
        Integer labels.
    sample_rate : int
        Hz of the clips.
    bitrate : int or None
        MP3 bitrate in kbps (see :func:`helmholtz.audio.supported_bitrates`), or
        None for the uncompressed 16-bit PCM baseline.
    model : str or int, optional
        An authors' variant (:data:`helmholtz._audio_models.AUDIO_MODELS`).
    seed : int, optional
        Seeds weights, dropout and batch order.
    epochs : int, optional
        200 in the paper.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ...; features and training live there.
    batch_size : int, optional
        50 in the paper.
    optimizer : {"adadelta", "adam"}, optional
        ``"adadelta"`` (the paper; lr 1.0) or ``"adam"`` (lr 1e-3; faster).
    lr : float, optional
        Override the learning rate.
    num_classes : int, optional
        Default ``max(label) + 1``.
    clip_seconds, n_mels, n_fft, hop_length : optional
        Feature settings (defaults: :data:`FSDD_FEATURES`).
    workers : int, optional
        Threads for the MP3 round trip.
    dataset : str, optional
        Name stored in the result.
    log : callable, optional
        Called with one line per epoch.

    Returns
    -------
    dict
        ``dataset, model, params (Keras count), bitrate, codec_sample_rate,
        bits_per_second (exact MP3 bits of train+test / their seconds),
        train_bits_per_second, test_bits_per_second, seed, epochs, recipe,
        test_accuracy (last epoch), best_test_accuracy, best_epoch (from 1),
        accuracy (mean of the top-10 epochs), convergence_epoch (from 1),
        accuracy_curve, loss_curve (training loss per epoch), train_clips,
        test_clips, input_shape, wall_time_s, compress_time_s, train_time_s,
        device, host, torch_version``.
    """
    import torch

    from ..models import resolve_audio_model

    t0 = time.perf_counter()
    x_train, x_test = _check_clips(x_train, "x_train"), _check_clips(x_test, "x_test")
    y_train, y_test = _check_labels(y_train, len(x_train), "y_train"), _check_labels(y_test, len(x_test), "y_test")
    _check_training_args(epochs, batch_size, seed, optimizer)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise TypeError(f"sample_rate must be an integer; got {type(sample_rate).__name__}")
    key = resolve_audio_model(model)
    if bitrate is not None:
        from ..audio import codec_sample_rate

        codec_sample_rate(sample_rate, bitrate)  # validate before any work
    k = int(num_classes) if num_classes is not None else int(max(y_train.max(), y_test.max())) + 1
    dev = torch.device(device)

    # 1. compression
    tc = time.perf_counter()
    tr, tr_bits, tr_sec, codec_rate = compress_clips(x_train, sample_rate, bitrate, workers)
    te, te_bits, te_sec, _ = compress_clips(x_test, sample_rate, bitrate, workers)
    compress_time = time.perf_counter() - tc

    # 2. features
    f_tr, f_te = standardized_features(tr, te, sample_rate, clip_seconds=clip_seconds, n_mels=n_mels, n_fft=n_fft, hop_length=hop_length, device=dev)

    # 3. training
    tag = f"{dataset} {key} bitrate={bitrate} seed={seed}"
    result = train_and_evaluate(
        f_tr, y_train, f_te, y_test, model=key, num_classes=k, seed=seed, epochs=epochs, device=dev,
        batch_size=batch_size, optimizer=optimizer, lr=lr, log=(lambda line: log(f"{tag} {line}")) if log else None,
    )
    return {
        "dataset": dataset,
        "model": key,
        "params": result["params"],
        "bitrate": bitrate,
        "codec_sample_rate": codec_rate,
        "bits_per_second": (tr_bits + te_bits) / (tr_sec + te_sec),
        "train_bits_per_second": tr_bits / tr_sec,
        "test_bits_per_second": te_bits / te_sec,
        "seed": int(seed),
        "epochs": int(epochs),
        "recipe": f"{optimizer}-b{batch_size}" + ("" if lr is None else f"-lr{lr:g}"),
        **{k2: result[k2] for k2 in ("test_accuracy", "best_test_accuracy", "best_epoch", "accuracy", "convergence_epoch", "accuracy_curve", "loss_curve")},
        "train_clips": len(x_train),
        "test_clips": len(x_test),
        "input_shape": tuple(int(v) for v in f_tr.shape[1:]),
        "wall_time_s": time.perf_counter() - t0,
        "compress_time_s": compress_time,
        "train_time_s": result["train_time_s"],
        "device": str(dev),
        "host": socket.gethostname(),
        "torch_version": torch.__version__,
    }


def _check_training_args(epochs: Any, batch_size: Any, seed: Any, optimizer: Any) -> None:
    for name, v in (("epochs", epochs), ("batch_size", batch_size), ("seed", seed)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an integer; got {type(v).__name__}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1; got {epochs}, {batch_size}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {optimizer!r}")


def standardized_features(train_clips: list, test_clips: list, sample_rate: int, *, device: Any = "cpu", **feature_kwargs: Any) -> tuple[Any, Any]:
    """:func:`clip_features` of both splits, standardised with the training set's scalar mean and std."""
    f_tr = clip_features(train_clips, sample_rate, device=device, **feature_kwargs)
    f_te = clip_features(test_clips, sample_rate, device=device, **feature_kwargs)
    mean, std = f_tr.mean(), f_tr.std().clamp_min(1e-6)
    return (f_tr - mean) / std, (f_te - mean) / std


def train_and_evaluate(
    f_train: Any,
    y_train: Any,
    f_test: Any,
    y_test: Any,
    *,
    model: Any,
    num_classes: int,
    seed: int = 0,
    epochs: int = 200,
    device: Any = "cpu",
    batch_size: int = 50,
    optimizer: str = "adadelta",
    lr: float | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Train an authors' audio CNN on feature tensors ``(N, 1, n_mels, frames)``; test after every epoch.

    Returns
    -------
    dict
        ``model, params (Keras count), test_accuracy, best_test_accuracy,
        best_epoch, accuracy (top-10 mean), convergence_epoch, accuracy_curve,
        loss_curve, train_time_s``; epochs are counted from 1.
    """
    import torch
    import torch.nn.functional as F

    from ..models import audio_model, keras_parameter_count, resolve_audio_model

    _check_training_args(epochs, batch_size, seed, optimizer)
    key = resolve_audio_model(model)
    dev = torch.device(device)
    f_tr, f_te = f_train.to(dev), f_test.to(dev)
    yt_tr = torch.as_tensor(np.asarray(y_train, dtype=np.int64)).to(dev)
    yt_te = torch.as_tensor(np.asarray(y_test, dtype=np.int64)).to(dev)
    torch.manual_seed(seed)
    net = audio_model(key, tuple(int(v) for v in f_tr.shape[2:]), int(num_classes)).to(dev)
    params = keras_parameter_count(net)
    if optimizer == "adadelta":
        opt = torch.optim.Adadelta(net.parameters(), lr=1.0 if lr is None else lr, rho=0.95, eps=1e-7)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=1e-3 if lr is None else lr)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    curve: list[float] = []
    losses: list[float] = []
    tt = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(f_tr.shape[0], generator=gen).to(dev)
        total, seen = 0.0, 0
        for s in range(0, order.numel(), batch_size):
            idx = order[s : s + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(f_tr[idx]), yt_tr[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.numel()
            seen += idx.numel()
        net.eval()
        correct = 0
        with torch.no_grad():
            for s in range(0, f_te.shape[0], 500):
                correct += int((net(f_te[s : s + 500]).argmax(1) == yt_te[s : s + 500]).sum())
        curve.append(correct / f_te.shape[0])
        losses.append(total / max(seen, 1))
        if log:
            log(f"epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f} test acc {curve[-1]:.4f}")
    return {
        "model": key,
        "params": params,
        "test_accuracy": curve[-1],
        "best_test_accuracy": max(curve),
        "best_epoch": int(np.argmax(curve)) + 1,
        "accuracy": authors_accuracy(curve),
        "convergence_epoch": convergence_epoch(curve),
        "accuracy_curve": curve,
        "loss_curve": losses,
        "train_time_s": time.perf_counter() - tt,
    }

def run_fsdd_trial(
    bitrate: int | None,
    model: Any = "conv3",
    seed: int = 0,
    epochs: int = 200,
    device: Any = "cpu",
    *,
    data_dir: Any = None,
    train_subset: int | None = None,
    test_subset: int | None = None,
    dataset: Any = None,
    **kwargs: Any,
) -> dict:
    """:func:`run_audio_trial` on FSDD (official split) with :data:`FSDD_FEATURES`.

    ``dataset`` may be a loaded :class:`helmholtz.audio_data.AudioDataset` to
    skip reloading; ``train_subset`` / ``test_subset`` draw that many clips
    (seeded by ``seed``). Other keyword arguments go to :func:`run_audio_trial`.
    """
    from ..data import load_fsdd

    ds = load_fsdd(data_dir) if dataset is None else dataset
    if train_subset is not None or test_subset is not None:
        ds = ds.subset(train_subset, test_subset, seed)
    x_tr, y_tr = ds.split("train")
    x_te, y_te = ds.split("test")
    opts = {**FSDD_FEATURES, **kwargs}
    result = run_audio_trial(
        x_tr, y_tr, x_te, y_te, sample_rate=ds.sample_rate, bitrate=bitrate, model=model, seed=seed, epochs=epochs, device=device,
        num_classes=ds.num_classes, dataset="fsdd", **opts,
    )
    result["train_subset"], result["test_subset"] = train_subset, test_subset
    return result


def sweep_fsdd(bitrates: Sequence[int | None], models: Sequence[Any] = ("conv3",), seeds: Sequence[int] = (0,), epochs: int = 200, device: Any = "cpu", **kwargs: Any) -> list[dict]:
    """Every (model, bitrate, seed) trial on FSDD, loading the data once."""
    from ..data import load_fsdd

    ds = load_fsdd(kwargs.pop("data_dir", None))
    rows = []
    for m in models:
        for b in bitrates:
            for s in seeds:
                rows.append(run_fsdd_trial(b, m, s, epochs, device, dataset=ds, **kwargs))
    return rows


# ------------------------------------------------------------------------------ helmholtz sweep
#: Audio recipes for ``helmholtz sweep --recipe``: optimiser and batch size.
AUDIO_RECIPES = {"paper": ("adadelta", 50), "fast": ("adam", 50)}

def _level_bitrate(level: Any) -> int | None:
    """A sweep level as an MPEG Layer III bitrate in kbps; None (or ``"pcm"``) is the uncompressed baseline."""
    from .._audio.mp3 import check_bitrate

    if level is None or (isinstance(level, str) and level.strip().lower() == "pcm"):
        return None
    if isinstance(level, float) and level.is_integer():
        level = int(level)
    return check_bitrate(level)


def _check_levels(ds: Any, levels: Sequence[Any]) -> list[int | None]:
    """The bitrates of ``levels``, each checked against the data set's sample rate before any coding."""
    from ..audio import codec_sample_rate

    out = []
    for level in levels:
        br = _level_bitrate(level)
        if br is not None:
            try:
                codec_sample_rate(ds.sample_rate, br)
            except ValueError as exc:
                raise ValueError(f"bitrates: {exc} (data set {getattr(ds, 'name', '?')!r})") from None
        out.append(br)
    return out


def _compressed(ds: Any, bitrate: int | None, workers: int | None = None) -> tuple[list, list, dict]:
    """MP3 round trip of both splits of an AudioDataset, done once per (data set, bitrate).

    The rate columns stay cached on the data set; the decoded clips are kept
    until the next call for that bitrate takes them, so that measuring the
    rate (``rate``) and building features (``compress``) share one coding pass.
    """
    clips = _clip_cache(ds)
    if bitrate in clips:
        tr, te = clips.pop(bitrate)
        return tr, te, _rate_cache(ds)[bitrate]
    x_tr, _ = ds.split("train")
    x_te, _ = ds.split("test")
    tr, tr_bits, tr_sec, rate = compress_clips(x_tr, ds.sample_rate, bitrate, workers)
    te, te_bits, te_sec, _ = compress_clips(x_te, ds.sample_rate, bitrate, workers)
    info = {"bits_per_second": (tr_bits + te_bits) / (tr_sec + te_sec), "codec_sample_rate": rate}
    _rate_cache(ds)[bitrate] = info
    return tr, te, info


def _rate_cache(ds: Any) -> dict:
    """Per-data-set cache of the measured rates, kept on the data set object itself."""
    return ds.__dict__.setdefault("_helmholtz_mp3_rates", {})


def _clip_cache(ds: Any) -> dict:
    """Decoded clips of bitrates whose rate was measured but whose features were not built yet."""
    return ds.__dict__.setdefault("_helmholtz_mp3_clips", {})


def make_trial_runner(features: dict | None = None, workers: int | None = None) -> Any:
    """A :class:`helmholtz.sweep.TrialRunner` for audio data sets (kind ``"audio"``).

    ``compress`` returns standardised mel features of both splits per bitrate
    (on the device), ``rate`` the exact ``bits_per_second`` of train + test,
    ``train`` the result columns of :data:`helmholtz.store.COLUMNS` (the
    authors' top-10 accuracy, the MPEG rate and the input shape go to
    ``extra``). Recipes: ``paper`` = Adadelta, batch 50; ``fast`` = Adam, batch 50.

    A level of None (or ``"pcm"``) is the uncompressed 16-bit PCM baseline.
    Every bitrate is checked against the data set's sample rate before any
    coding (a ValueError lists the supported ones), and coded once per data
    set: ``rate`` keeps the decoded clips for the ``compress`` that follows.
    """
    from ..models import resolve_audio_model
    from .runners import TrialRunner

    feats = {**FSDD_FEATURES, **(features or {})}

    def compress(ds: Any, levels: Sequence[Any], device: str) -> dict:
        out = {}
        for level, br in zip(levels, _check_levels(ds, levels)):
            tr, te, _ = _compressed(ds, br, workers)
            out[level] = standardized_features(tr, te, ds.sample_rate, device=device, **feats)
        return out

    def rate(ds: Any, levels: Sequence[Any]) -> dict:
        out = {}
        for level, br in zip(levels, _check_levels(ds, levels)):
            info = _rate_cache(ds).get(br)
            if info is None:  # code now and keep the clips for compress(): one coding pass per bitrate
                tr, te, info = _compressed(ds, br, workers)
                _clip_cache(ds)[br] = (tr, te)
            out[level] = {"bits_per_second": info["bits_per_second"]}
        return out

    def train(spec: Any, ds: Any, f_tr: Any, f_te: Any, device: str, progress: Any) -> dict:
        optimizer, batch = AUDIO_RECIPES.get(spec.recipe, AUDIO_RECIPES["paper"])
        _, y_tr = ds.split("train")
        _, y_te = ds.split("test")
        r = train_and_evaluate(f_tr, y_tr, f_te, y_te, model=spec.model, num_classes=ds.num_classes, seed=spec.seed, epochs=spec.epochs, device=device, batch_size=batch, optimizer=optimizer)
        info = _rate_cache(ds).get(_level_bitrate(spec.level), {})
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
            "extra": {
                "accuracy_top10": r["accuracy"],
                "codec_sample_rate": info.get("codec_sample_rate"),
                "input_shape": [int(v) for v in f_tr.shape[1:]],
                "optimizer": optimizer,
                "batch_size": batch,
                "features": {k: v for k, v in feats.items()},
            },
        }

    return TrialRunner(resolve_audio_model, _level_bitrate, compress, rate, train, level="bitrate")


RUNNER = make_trial_runner()
