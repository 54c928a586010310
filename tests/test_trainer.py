"""The one trainer: device-side metrics (no host synchronisation inside an epoch) and the authors' curve summaries."""

import inspect
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helmholtz._ml.curves import authors_accuracy, best_epoch, convergence_epoch  # noqa: E402
from helmholtz._ml.trainer import fit  # noqa: E402
from helmholtz.errors import TrialError  # noqa: E402
from helmholtz.transforms import DeviceDataset  # noqa: E402

PACKAGE = Path(__file__).resolve().parents[1] / "helmholtz"
# Each of these makes the host wait for the device when called on a CUDA tensor.
SYNCING = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__")


class SyncCounter:
    """Counts syncing Tensor calls made from helmholtz's own code (not from torch internals)."""

    def __init__(self, monkeypatch):
        self.calls: list[str] = []
        for name in SYNCING:
            real = getattr(torch.Tensor, name)

            def counting(self_, *args, __real=real, __name=name, **kwargs):
                caller = inspect.currentframe().f_back
                if caller is not None and str(PACKAGE) in caller.f_code.co_filename:
                    self.calls.append(f"{__name} at {Path(caller.f_code.co_filename).name}:{caller.f_lineno}")
                return __real(self_, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, counting)


def _train_one_epoch(n_images, monkeypatch):
    torch.manual_seed(0)
    x = torch.randint(0, 256, (n_images, 8, 8, 3), dtype=torch.uint8)
    y = torch.arange(n_images) % 3
    data = DeviceDataset(x, y, batch_size=8, shift=0.1, flip=True, seed=0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    xt = x.permute(0, 3, 1, 2).float() / 255
    counter = SyncCounter(monkeypatch)
    marks = []
    result = fit(model, lambda: data, lambda: [(xt[i : i + 16], y[i : i + 16]) for i in range(0, n_images, 16)],
                 epochs=2, optimizer=opt, scheduler=sched, label_smoothing=0.1, on_epoch=lambda *a: marks.append(len(counter.calls)))
    monkeypatch.undo()
    return counter.calls[: marks[-1]], result  # what happened inside the epochs (the final weights are copied after them)


def test_a_training_epoch_reads_the_device_back_once_whatever_its_length(monkeypatch):
    short_calls, short = _train_one_epoch(16, monkeypatch)  # 2 training steps per epoch
    long_calls, long = _train_one_epoch(128, monkeypatch)  # 16 training steps per epoch
    assert len(short_calls) == len(long_calls) == 2, long_calls  # one read-back per epoch, not one per step
    assert all(call.startswith("tolist at trainer.py") for call in long_calls)
    assert short.train_samples == 2 * 16 and long.train_samples == 2 * 128


def test_fit_returns_curves_weights_and_throughput():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 4, 4)
    y = (x[:, 0, 0, 0] > 0.5).long()  # separable by one input
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    seen = []
    r = fit(model, lambda: [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)], lambda: [(x, y)], epochs=10, optimizer=opt,
            on_epoch=lambda e, loss, acc: seen.append((e, loss, acc)))
    assert [e for e, _, _ in seen] == list(range(1, 11)) and len(r.accuracy_curve) == len(r.loss_curve) == 10
    assert r.accuracy_curve == [acc for _, _, acc in seen] and all(0 <= a <= 1 for a in r.accuracy_curve)
    assert r.loss_curve[-1] < r.loss_curve[0]
    assert set(r.state) == set(model.state_dict()) and all(t.device.type == "cpu" for t in r.state.values())
    assert r.samples_per_s > 0 and r.train_samples == 10 * 64


def test_a_diverging_loss_fails_the_trial_by_name():
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=1e30)
    x, y = torch.ones(4, 2) * 1e20, torch.tensor([0, 1, 0, 1])
    with pytest.raises(TrialError, match="trial-x: the training loss diverged"):
        fit(model, lambda: [(x, y)], lambda: [(x, y)], epochs=3, optimizer=opt, name="trial-x")


@pytest.mark.slow
def test_compiled_training_gives_the_same_curve_shape():
    pytest.importorskip("torch._inductor")
    torch.manual_seed(0)
    x, y = torch.rand(32, 6), torch.arange(32) % 2
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    r = fit(model, lambda: [(x, y)], lambda: [(x, y)], epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), compile=True)
    assert len(r.accuracy_curve) == 2 and np.isfinite(r.loss_curve).all()


# ------------------------------------------------------------------ the authors' curve summaries
def test_convergence_epoch_is_the_first_window_above_99_percent_of_the_best():
    acc = [0.1, 0.5, 0.8, 0.9, 0.9, 0.91, 0.9, 0.9]
    # first i with mean(acc[i:i+10]) > 0.99 * 0.91 = 0.9009 is i = 3 (mean 0.902): epoch 4
    assert convergence_epoch(acc) == 4
    assert convergence_epoch(acc, window=1) == 6  # only 0.91 itself beats 0.9009
    assert convergence_epoch([0.2] * 5 + [0.8] * 20) == 6  # i=4: mean(0.2, 0.8 x 9) = 0.74 is not enough
    assert convergence_epoch([0.1, 0.2, 0.3]) == 3  # the window shrinks at the end: a curve ending on its best converges there


def test_convergence_epoch_edge_cases():
    assert convergence_epoch([0.0, 0.0]) is None  # an all-zero curve never converges (the comparison is strict)
    assert convergence_epoch([1.0] + [0.0] * 20) is None  # an early peak that falls away: no window qualifies
    assert convergence_epoch([0.5]) == 1
    with pytest.raises(ValueError, match="non-empty"):
        convergence_epoch([])
    with pytest.raises(ValueError, match="finite"):
        convergence_epoch([0.5, float("nan")])
    with pytest.raises(ValueError, match="window"):
        convergence_epoch([0.5], window=0)


def test_authors_accuracy_is_the_mean_of_the_ten_best_epochs():
    curve = [0.1, 0.5, 0.8, 0.9, 0.95] + [0.96] * 10 + [0.2]
    assert authors_accuracy(curve) == pytest.approx(0.96)
    assert authors_accuracy([0.5, 0.7]) == pytest.approx(0.6)
    assert best_epoch([0.1, 0.4, 0.4, 0.2]) == 2
