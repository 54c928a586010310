import pytest

torch = pytest.importorskip("torch")

from helmholtz.models import MODEL_NAMES, PARAMETER_COUNTS, cifar_model, count_parameters

# the authors' Keras summaries (reference.md section 3), written out independently of the module
EXPECTED = {"A": 701_386, "B": 1_079_562, "C": 1_144_138, "D": 1_276_618, "E": 1_620_298, "F": 1_686_090}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameter_counts_match_the_authors(name):
    model = cifar_model(name)
    assert count_parameters(model) == EXPECTED[name] == PARAMETER_COUNTS[name]
    out = model.eval()(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_aliases_and_case():
    assert count_parameters(cifar_model("all-cnns")) == EXPECTED["A"]
    assert count_parameters(cifar_model("f")) == EXPECTED["F"]


def test_keras_initialisation():
    model = cifar_model("B")
    linears = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    for m in linears:
        assert torch.count_nonzero(m.bias) == 0
        fan_in = m.weight[0].numel()
        fan_out = m.weight.shape[0] * (m.weight[0, 0].numel() if m.weight.ndim == 4 else 1)
        limit = (6 / (fan_in + fan_out)) ** 0.5
        assert m.weight.abs().max() <= limit + 1e-6
        assert m.weight.abs().max() > 0.5 * limit


def test_same_padding_is_keras_style():
    # stride-2 "same" on an even size pads only bottom/right, like TensorFlow
    conv = cifar_model("A")[4]
    assert conv.stride == (2, 2)
    x = torch.zeros(1, 64, 32, 32)
    x[0, :, 0, 0] = 1.0  # top-left pixel: TF's window at output (0,0) covers rows/cols 0..2
    with torch.no_grad():
        conv.bias.zero_()
        conv.weight.zero_()
        conv.weight[:, :, 0, 0] = 1.0  # only the top-left tap
        y = conv(x)
    assert y.shape[-2:] == (16, 16)
    assert y[0, 0, 0, 0] == 64  # with symmetric padding the top-left tap would hit padding instead


def test_other_shapes():
    m = cifar_model("D", in_channels=1, num_classes=5, image_size=28)
    assert m.eval()(torch.rand(3, 1, 28, 28)).shape == (3, 5)


@pytest.mark.parametrize("bad, exc", [("G", ValueError), (3, TypeError), ("", ValueError)])
def test_unknown_model(bad, exc):
    with pytest.raises(exc, match="name"):
        cifar_model(bad)


def test_bad_sizes():
    with pytest.raises(ValueError, match="num_classes"):
        cifar_model("A", num_classes=0)
    with pytest.raises(TypeError, match="image_size"):
        cifar_model("A", image_size="32")


def test_importing_helmholtz_imports_no_heavy_dependency():
    import subprocess
    import sys

    code = "import sys, helmholtz, helmholtz.models, helmholtz.experiments.sweep, helmholtz.experiments.report, helmholtz.experiments.store, helmholtz.cli, helmholtz.data, helmholtz.transforms; print(any(m in sys.modules for m in ('torch', 'pandas', 'matplotlib', 'ray')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_model_name_builds_a_model_with_its_published_count():
    assert [count_parameters(cifar_model(n)) for n in MODEL_NAMES] == [PARAMETER_COUNTS[n] for n in MODEL_NAMES]
