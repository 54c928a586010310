"""The ``helmholtz`` command line as a whole: help texts, usage on errors, missing extras."""

from __future__ import annotations

import argparse
import importlib.util

import numpy as np
import pytest

from helmholtz import _extras
from helmholtz.cli import build_parser, main
from helmholtz.errors import MissingExtra


def _options(parser: argparse.ArgumentParser):
    """Every option and positional of ``parser`` but -h/--help."""
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def test_the_parser_knows_every_sub_command():
    assert sorted(build_parser().commands) == ["info", "report", "sweep"]


@pytest.mark.parametrize("command", ["sweep", "report", "info"])
def test_every_option_of_every_sub_command_has_a_plain_text_help(command):
    parser = build_parser().commands[command]
    texts = [parser.description or ""]
    for action in _options(parser):
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"helmholtz {command} {name} has no help text"
        texts.append(action.help)
    texts += [g.title or "" for g in parser._action_groups]
    for text in texts:
        assert "`" not in text, f"helmholtz {command}: RST markup in a help text: {text!r}"
        assert ":func:" not in text and ":class:" not in text, text


@pytest.mark.parametrize("command", ["sweep", "report", "info"])
def test_the_rendered_help_is_plain_text(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: helmholtz {command}") and "`" not in out


def test_an_unknown_option_prints_the_sub_commands_usage(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--out", str(tmp_path / "x"), "--bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: helmholtz sweep ") and "helmholtz sweep: error: unrecognized arguments: --bogus" in err
    with pytest.raises(SystemExit) as exc:
        main(["report", str(tmp_path / "x"), "--bogus", "7"])
    assert exc.value.code == 2
    assert "helmholtz report: error: unrecognized arguments: --bogus 7" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_an_unknown_top_level_option_prints_the_top_level_usage(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--bogus"])
    assert exc.value.code == 2
    assert "usage: helmholtz [-h]" in capsys.readouterr().err


# ------------------------------------------------------------------ missing extras, in this process
def _without(monkeypatch, *missing: str) -> None:
    """Make ``missing`` look uninstalled to helmholtz's extra checks."""
    real = importlib.util.find_spec
    monkeypatch.setattr(_extras.importlib.util, "find_spec", lambda name, *a: None if name in missing else real(name, *a))


def test_check_extra_names_every_missing_module_and_the_one_pip_line(monkeypatch):
    _without(monkeypatch, "torch", "tqdm")
    with pytest.raises(MissingExtra) as exc:
        _extras.check_extra("experiments", purpose="helmholtz sweep")
    assert str(exc.value) == "helmholtz sweep needs torch, tqdm, which are not installed: pip install 'helmholtz-ml[experiments]'"
    assert exc.value.extra == "experiments" and exc.value.module == "torch" and isinstance(exc.value, ImportError)
    _extras.check_extra("report")  # pandas and matplotlib are here
    with pytest.raises(MissingExtra) as exc:
        _extras.check_extras([("experiments", ("torch",)), ("report", None), ("audio", ("scipy",))], purpose="p")
    assert str(exc.value) == "p needs torch, which is not installed: pip install 'helmholtz-ml[experiments]'"
    _without(monkeypatch, "torch", "lameenc", "scipy")
    with pytest.raises(MissingExtra) as exc:
        _extras.check_extras([("experiments", ("torch",)), ("report", None), ("audio", None)], purpose="p")
    assert str(exc.value) == "p needs torch, lameenc, scipy, which are not installed: pip install 'helmholtz-ml[experiments,audio]'"
    assert exc.value.extra == "experiments,audio"
    with pytest.raises(ValueError, match="extra must be one of"):
        _extras.check_extra("bogus")


@pytest.fixture
def npz_dir(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cifar10.npz", x_train=rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), y_train=np.arange(4) % 2,
             x_test=rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8), y_test=np.arange(2))
    return tmp_path


@pytest.mark.parametrize(
    "missing, argv, hint",
    [
        (("tqdm",), ["sweep", "--models", "A", "--qualities", "50", "--epochs", "1", "--out", "{out}"], "experiments"),
        (("torch",), ["sweep", "--models", "A", "--qualities", "50", "--epochs", "1", "--out", "{out}"], "experiments"),
        (("ray",), ["sweep", "--models", "A", "--qualities", "50", "--executor", "ray", "--out", "{out}"], "ray"),
        (("lameenc",), ["sweep", "--dataset", "fsdd", "--models", "conv3", "--bitrates", "8", "--out", "{out}"], "audio"),
        (("torch", "miniaudio"), ["sweep", "--dataset", "fsdd", "--models", "conv3", "--bitrates", "8", "--out", "{out}"], "experiments,audio"),
        (("pandas",), ["info", "--csv", "{out}"], "report"),
        (("matplotlib",), ["info", "--plot", "{out}"], "report"),
        (("pandas",), ["report", "{out}"], "report"),
        (("matplotlib",), ["report", "{out}"], "report"),
    ],
)
def test_a_command_without_its_extra_exits_2_naming_the_pip_line_and_writes_nothing(monkeypatch, capsys, npz_dir, tmp_path, missing, argv, hint):
    monkeypatch.setenv("HELMHOLTZ_DATA", str(npz_dir))
    _without(monkeypatch, *missing)
    out = tmp_path / "out"
    assert main([a.format(out=out) for a in argv]) == 2
    err = capsys.readouterr().err
    assert f"pip install 'helmholtz-ml[{hint}]'" in err and missing[0] in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()
