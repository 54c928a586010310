"""The ``helmholtz`` command line as a whole: help texts, usage on errors, missing extras."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from helmholtz import _extras
from helmholtz.cli import build_parser, main
from helmholtz.errors import MissingExtra


def _options(parser: argparse.ArgumentParser):
    """Every option and positional of ``parser`` but -h/--help."""
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def test_the_parser_knows_every_sub_command():
    assert sorted(build_parser().commands) == ["info", "prepare", "report", "sweep"]


@pytest.mark.parametrize("command", ["sweep", "report", "info", "prepare"])
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


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["sweep", "--models", "Z"], "error: --models must be one of A, B, C"),
        (["sweep", "--qualities", "0"], "error: --qualities must be in 1..100; got 0"),
        (["sweep", "--epochs", "0"], "error: --epochs must be an int >= 1"),
        (["sweep", "--train-subset", "0"], "error: --train-subset must be an int >= 1"),
        (["sweep", "--image-size", "32"], "error: --image-size must be 'HxW'"),
        (["sweep", "--trials-per-device", "0"], "error: --trials-per-device must be an int >= 1"),
        (["sweep", "--eval-qualities", "200"], "error: argument --eval-qualities: quality must be in 1..100; got 200"),
        (["sweep", "--attacks", "cw"], "error: argument --attacks: must be among fgsm, pgd; got cw"),
        (["info", "--limit", "0"], "error: --limit must be a positive int; got 0"),
    ],
)
def test_command_line_errors_name_the_flag_not_the_python_parameter(capsys, npz_dir, tmp_path, argv, expected):
    out = tmp_path / "out"
    extra = ["--data-dir", str(npz_dir)] + (["--out", str(out)] if argv[0] == "sweep" else [])
    with pytest.raises(SystemExit) if argv[1] in ("--eval-qualities", "--attacks") else _no_exit():
        assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err and not out.exists()


class _no_exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_missing_data_set_suggests_the_download_flag(capsys, tmp_path):
    assert main(["info", "--dataset", "mnist", "--data-dir", str(tmp_path), "--limit", "5"]) == 2
    err = capsys.readouterr().err
    assert "pass --download to fetch" in err and "download=True" not in err


def test_without_a_data_folder_info_names_the_flag_and_the_variable(capsys, monkeypatch):
    monkeypatch.delenv("HELMHOLTZ_DATA", raising=False)
    assert main(["info"]) == 2
    assert "no data folder: pass --data-dir or set HELMHOLTZ_DATA" in capsys.readouterr().err


def test_info_help_lists_only_image_data_sets(capsys):
    with pytest.raises(SystemExit):
        main(["info", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "image data set: cifar10, cifar100, fashion-mnist, folder, imagenet, imagenet32, imagenet64, mnist, places365, svhn, tiny-imagenet" in help_text
    assert "fsdd" not in help_text and "audio-folder" not in help_text


def test_command_line_message_replaces_parameters_only_where_they_are_names():
    from helmholtz.cli import command_line_message

    assert command_line_message("sweep", "data_dir 'x' is not a folder") == "--data-dir 'x' is not a folder"
    assert command_line_message("sweep", "quality must be in 1..100") == "--qualities must be in 1..100"
    assert command_line_message("sweep", "the quality must be in 1..100") == "the quality must be in 1..100"
    assert command_line_message("report", "quality must be in 1..100") == "quality must be in 1..100"
    assert command_line_message("sweep", "my_data_dir is set") == "my_data_dir is set"


def test_a_reader_that_closes_the_pipe_early_ends_the_command_quietly(npz_dir):
    import subprocess
    import sys

    proc = subprocess.Popen(
        # `true` has exited long before helmholtz has imported, so every write meets a closed pipe
        f"{sys.executable} -m helmholtz info --dataset cifar10 --data-dir {npz_dir} --qualities 5,20 | true",
        shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and out == ""
    assert "Traceback" not in err and "BrokenPipe" not in err, err


# ------------------------------------------------------------------ sweep: one rule for every coercion
LONG_NAME = "x" * 300


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--qualities", "20,20"], "error: argument --qualities: 20 is repeated; give each once"),
        (["--qualities", "20,,20"], "error: argument --qualities: expected comma-separated integers without empty items; got '20,,20'"),
        (["--qualities", "20,"], "error: argument --qualities: expected comma-separated integers without empty items"),
        (["--dataset", "fsdd", "--models", "conv3", "--bitrates", "8,8.0"], "error: argument --bitrates: 8.0 is repeated (as '8' and '8.0')"),
        (["--dataset", "fsdd", "--models", "conv3", "--bitrates", "pcm,PCM"], "error: argument --bitrates: PCM is repeated"),
        (["--seeds", "0,0"], "error: argument --seeds: 0 is repeated"),
        (["--models", "A,A"], "error: argument --models: A is repeated"),
        (["--models", "A,a"], "error: --models repeats model 'A' (given as 'A' and 'a'); give each once"),
        (["--seeds", "9223372036854775808"], "error: --seeds must be ints in 0..2**63-1 (what the results database holds); got 9223372036854775808"),
        (["--seeds", "18446744073709551616"], "error: --seeds must be ints in 0..2**63-1"),
        (["--ray-num-cpus", "0"], "error: --ray-num-cpus must be an int >= 1; got 0"),
        (["--ray-num-cpus", "2"], "error: --ray-num-cpus applies only to --executor ray; this sweep runs with --executor local"),
        (["--ray-address", "auto"], "error: --ray-address applies only to --executor ray"),
        (["--out", ""], "error: --out must name a folder; got an empty path ''"),
        (["--out", "existing-file"], "error: --out 'existing-file' is an existing file; it must be a folder"),
        (["--out", LONG_NAME], "error: --out has a name of 300 bytes"),
        (["--out", "out-\udcff\udcfe"], "error: --out must be valid UTF-8, which the results database stores; got b'out-\\xff\\xfe'"),
        (["--out", "existing-file/sub"], "error: --out 'existing-file/sub' lies under"),
    ],
    ids=lambda v: " ".join(a if len(a) < 20 else a[:12] + "..." for a in v) if isinstance(v, list) else "",
)
def test_sweep_refuses_what_it_would_coerce_naming_the_flag_and_creating_nothing(capsys, npz_dir, tmp_path, monkeypatch, argv, expected):
    work = tmp_path / "work"
    work.mkdir()
    (work / "existing-file").write_text("mine")
    monkeypatch.chdir(work)  # so that a sweep that wrote into the current folder would show
    base = ["sweep", "--data-dir", str(npz_dir), "--qualities", "50", "--epochs", "1", "--recipe", "fast", "--no-progress", "--out", "out"]
    argparse_level = "argument --" in expected
    with pytest.raises(SystemExit) if argparse_level else _no_exit() as raised:
        assert main([*base, *argv]) == 2
    if argparse_level:
        assert raised.value.code == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err
    assert err.startswith("usage: helmholtz sweep") if argparse_level else len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in work.iterdir()) == ["existing-file"] and (work / "existing-file").read_text() == "mine"


def test_sweep_refuses_the_root_folder_as_out_and_writes_nothing_there(capsys, npz_dir):
    existed = {p: p.exists() for p in (Path("/results.sqlite"), Path("/models"), Path("/.helmholtz-pending"))}
    assert main(["sweep", "--data-dir", str(npz_dir), "--qualities", "50", "--epochs", "1", "--out", "/"]) == 2
    assert "error: --out must be a folder for the results, not the root folder '/'" in capsys.readouterr().err
    assert {p: p.exists() for p in existed} == existed


def test_trials_per_device_is_capped_with_a_message_naming_the_flag(capsys, tmp_path, tiny_cifar_dir):
    out = tmp_path / "out"
    argv = ["sweep", "--data-dir", str(tiny_cifar_dir), "--qualities", "50", "--epochs", "1", "--train-subset", "32", "--test-subset", "16",
            "--recipe", "fast", "--no-progress", "--trials-per-device", "1000", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "note: --trials-per-device=1000 asks for 1000 worker(s); running 1, as this machine has" in captured.err
    assert "and the sweep has 1 trial(s) to run" in captured.err and "1 trial(s) run" in captured.out


def test_command_line_message_names_the_sweeps_new_flags():
    from helmholtz.cli import command_line_message

    assert command_line_message("sweep", "out must name a folder") == "--out must name a folder"
    assert command_line_message("sweep", "ray_num_cpus applies only to executor='ray'") == "--ray-num-cpus applies only to --executor ray"
    assert command_line_message("sweep", "models repeats model 'A'") == "--models repeats model 'A'"
    assert command_line_message("report", "out must name a folder") == "out must name a folder"
