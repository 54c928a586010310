"""The authors' audio CNNs: parameter counts, names, shapes, errors."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from helmholtz.models import (  # noqa: E402
    AUDIO_MODELS,
    audio_model,
    audio_model_names,
    keras_parameter_count,
    resolve_audio_model,
)

AUTHORS_COUNTS = {
    "conv3": 101_412,
    "conv4-dense128": 170_436,
    "conv3-dense64-128": 427_492,
    "conv3-dense128": 808_356,
    "conv3-dense128-128": 824_868,
    "conv2-dense128": 3_715_460,
}


@pytest.mark.parametrize("name,count", list(AUTHORS_COUNTS.items()))
def test_parameter_counts_equal_the_authors(name, count):
    model = audio_model(name, (96, 173), 12)
    assert keras_parameter_count(model) == count
    # torch's trainable count leaves out BatchNorm's moving mean and variance (2 x 94)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == count - 188


def test_names_order_and_aliases():
    assert audio_model_names() == list(AUTHORS_COUNTS) == list(AUDIO_MODELS)
    for i, name in enumerate(audio_model_names()):
        assert resolve_audio_model(i + 1) == name
        assert resolve_audio_model(str(i + 1)) == name
        assert resolve_audio_model(f"audio{i + 1}") == name
        assert resolve_audio_model("ABCDEF"[i]) == name
        assert resolve_audio_model("abcdef"[i]) == name
        assert resolve_audio_model(name.upper()) == name


def test_forwarded_from_helmholtz_models():
    from helmholtz import models

    m = models.audio_model("2", (96, 173), 12)
    assert keras_parameter_count(m) == AUTHORS_COUNTS["conv4-dense128"]


@pytest.mark.parametrize("name", list(AUTHORS_COUNTS))
def test_forward_shapes_and_training_step(name):
    torch.manual_seed(0)
    m = audio_model(name, (1, 96, 63), 10)
    x = torch.randn(4, 1, 96, 63)
    out = m(x)
    assert out.shape == (4, 10)
    assert m(x[:, 0]).shape == (4, 10)  # (N, H, W) is accepted too
    loss = torch.nn.functional.cross_entropy(out, torch.arange(4))
    loss.backward()
    assert all(p.grad is not None for p in m.parameters())


def test_batchnorm_normalises_rows_like_keras_axis_1():
    m = audio_model("conv3", (96, 173), 12)
    bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    assert len(bns) == 1 and bns[0].num_features == 94
    assert bns[0].eps == pytest.approx(1e-3) and bns[0].momentum == pytest.approx(0.01)
    # in training mode each row (mel band) of the first conv's output is normalised over batch, channels, time
    m.train()
    feats = m.features[:2](torch.randn(8, 1, 96, 173) * 5 + 3)
    per_row = feats.transpose(0, 2).reshape(94, -1)
    assert torch.allclose(per_row.mean(1), torch.zeros(94), atol=1e-4)
    assert torch.allclose(per_row.var(1, unbiased=False), torch.ones(94), atol=1e-2)


def test_keras_initialisation():
    m = audio_model("conv3-dense128", (96, 173), 12)
    for mod in m.modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            assert torch.count_nonzero(mod.bias) == 0
            fan_in = mod.weight[0].numel()
            fan_out = mod.weight.shape[0] * (mod.weight[0, 0].numel())
            assert float(mod.weight.detach().abs().max()) <= (6 / (fan_in + fan_out)) ** 0.5 + 1e-6


@pytest.mark.parametrize(
    "args,exc,msg",
    [
        (("conv9", (96, 173), 12), ValueError, "conv3"),
        ((0, (96, 173), 12), ValueError, "name"),
        ((7, (96, 173), 12), ValueError, "name"),
        (("G", (96, 173), 12), ValueError, "name"),
        ((None, (96, 173), 12), TypeError, "name"),
        ((True, (96, 173), 12), TypeError, "name"),
        (("conv3", (96,), 12), ValueError, "input_shape"),
        (("conv3", (2, 96, 173), 12), ValueError, "input_shape"),
        (("conv3", "96x173", 12), TypeError, "input_shape"),
        (("conv3", (96.0, 173), 12), TypeError, "input_shape"),
        (("conv4-dense128", (30, 173), 12), ValueError, "too small"),
        (("conv3", (96, 173), 0), ValueError, "num_classes"),
        (("conv3", (96, 173), 2.5), TypeError, "num_classes"),
    ],
)
def test_bad_arguments(args, exc, msg):
    with pytest.raises(exc, match=msg):
        audio_model(*args)


def test_keras_parameter_count_needs_a_module():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        keras_parameter_count(object())
