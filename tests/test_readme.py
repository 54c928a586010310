"""README.md runs as written: every Python block, in order per section, printing what the README shows.

The guide pages of docs/ (and benchmarks/TRANSFORMS.md, which one of them
includes) are held to the same rule by the same collector, in tests marked
``slow``.

The collector reads the Markdown itself (no plugin):

* every ```` ```python ```` block runs; the blocks of one ``##``/``###``
  section share one namespace, in order, in a fresh subprocess whose working
  directory is an empty temporary folder;
* a ```` ```text ```` block that directly follows a runnable block (nothing
  but blank lines between them) is that block's output, compared exactly
  (trailing spaces and blank lines aside);
* an HTML comment on the line(s) before a block marks it:
  ``<!-- requires: cuda -->`` (a CUDA GPU torch can use),
  ``<!-- requires: data -->`` (``HELMHOLTZ_DATA`` names a folder),
  ``<!-- requires: MODULE -->`` (an importable module), and ``<!-- run -->``
  makes a ```` ```bash ```` block run too (``set -euo pipefail``, this
  interpreter's ``bin`` first on ``PATH``). A block whose requirement is
  missing is skipped with the blocks after it in its section, and the test
  says which.

Run as ``python tests/test_readme.py --run BLOCKS.json RESULT.json`` this file
is also the subprocess that executes a section.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

_FENCE = re.compile(r"^(`{3,})\s*([^`\s]*)[^`]*$")  # the language is the first word of the info string
_COMMENT = re.compile(r"^<!--(.*)-->\s*$")
_RUNNABLE = {"python"}
_SHELLS = {"bash", "sh", "console", "shell"}


@dataclass
class Block:
    """One fenced block of a Markdown file that the collector runs."""

    section: str
    path: str
    lang: str
    code: str
    line: int
    requires: list[str] = field(default_factory=list)
    expected: str | None = None


def _markers(comments: list[str]) -> tuple[bool, list[str]]:
    """``(run, requires)`` from the HTML comments before a block (``run; requires: a, b``)."""
    run, requires = False, []
    for comment in comments:
        for part in comment.split(";"):
            key, _, value = part.strip().partition(":")
            key = key.strip().lower()
            if key == "run":
                run = True
            elif key == "requires":
                requires += [v.strip() for v in value.split(",") if v.strip()]
    return run, requires


def parse(text: str, path: str = "README.md") -> list[Block]:
    """The runnable blocks of a Markdown text (from ``path``), each with its section, markers and expected output."""
    blocks: list[Block] = []
    lines = text.split("\n")
    section = "(top)"
    comments: list[str] = []
    last: Block | None = None  # the runnable block just closed, if only blank lines followed it
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            ticks, lang = fence.group(1), fence.group(2).lower()
            body = []
            i += 1
            while i < len(lines) and lines[i].rstrip() != ticks:
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise ValueError(f"unclosed code fence opened at line {len(lines) - len(body)}")
            code = "\n".join(body) + "\n"
            run, requires = _markers(comments)
            if "HELMHOLTZ_DATA" in code and "data" not in requires:  # reading the data is needing it
                requires.append("data")
            if lang == "text" and last is not None and not comments:
                last.expected = code
                last = None
            elif lang in _RUNNABLE or (lang in _SHELLS and run):
                last = Block(section, path, "python" if lang in _RUNNABLE else "bash", code, i - len(body) + 1, requires)
                blocks.append(last)
            else:
                last = None
            comments = []
            i += 1
            continue
        if line.startswith("#"):
            section = line.lstrip("#").strip()
            last = None
            comments = []
        elif _COMMENT.match(line.strip()):
            comments.append(_COMMENT.match(line.strip()).group(1))
        elif line.strip():
            last = None
            comments = []
        i += 1
    return blocks


def sections(blocks: list[Block]) -> dict[str, list[Block]]:
    """Blocks grouped by section, in the order of the file."""
    out: dict[str, list[Block]] = {}
    for b in blocks:
        out.setdefault(b.section, []).append(b)
    return out


def missing(requirement: str) -> str | None:
    """Why ``requirement`` is not met here, or None when it is."""
    if requirement == "data":
        folder = os.environ.get("HELMHOLTZ_DATA")
        return None if folder and Path(folder).is_dir() else "HELMHOLTZ_DATA is not set to a folder"
    if requirement == "cuda":
        try:
            import torch
        except ImportError:
            return "torch is not installed"
        return None if torch.cuda.is_available() else "no CUDA GPU"
    if importlib.util.find_spec(requirement) is None:
        return f"{requirement} is not installed"
    return None


def _normal(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n"))


def run_blocks(blocks: list[Block], cwd: Path, timeout: float = 900) -> list[dict]:
    """Run ``blocks`` in order in one fresh interpreter in ``cwd``; one result per block run.

    A result holds ``line``, ``stdout`` and ``error`` (a traceback, or None);
    running stops at the first error.
    """
    spec, result = cwd / ".readme-blocks.json", cwd / ".readme-result.json"
    spec.write_text(json.dumps([asdict(b) for b in blocks]))
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run([sys.executable, __file__, "--run", str(spec), str(result)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if not result.exists():
        raise AssertionError(f"the block runner died (status {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(result.read_text())


def check_section(blocks: list[Block], cwd: Path) -> tuple[list[str], str | None]:
    """Run a section's blocks up to the first unmet requirement.

    Returns ``(failures, skipped)``: one message per failing block (an
    exception, or output that differs from the README's), and why the rest of
    the section was not run (None when all of it ran).
    """
    runnable, skipped = [], None
    for b in blocks:
        why = next((w for w in map(missing, b.requires) if w), None)
        if why:
            skipped = f"{b.path}: blocks from line {b.line} on not run: {why}"
            break
        runnable.append(b)
    failures = []
    if runnable:
        for b, r in zip(runnable, run_blocks(runnable, cwd)):
            if r["error"]:
                failures.append(f"{b.path} line {b.line} ({b.lang}) raised:\n{r['error']}")
            elif b.expected is not None and _normal(r["stdout"]) != _normal(b.expected):
                failures.append(f"{b.path} line {b.line} printed\n{r['stdout']}\ninstead of what it shows:\n{b.expected}")
    return failures, skipped


def _execute(spec_path: str, result_path: str) -> None:
    """The subprocess side: run the blocks in one namespace, capturing each one's output."""
    namespace: dict = {"__name__": "__main__"}
    results = []
    for b in json.loads(Path(spec_path).read_text()):
        out, error = io.StringIO(), None
        try:
            if b["lang"] == "python":
                with contextlib.redirect_stdout(out):
                    exec(compile(b["code"], f"{b['path']}:{b['line']}", "exec"), namespace)
            else:
                proc = subprocess.run(["bash", "-euo", "pipefail", "-c", b["code"]], capture_output=True, text=True)
                out.write(proc.stdout)
                if proc.returncode:
                    error = f"exit status {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        except BaseException:  # noqa: BLE001 -- a README block may raise anything; report it
            error = traceback.format_exc()
        results.append({"line": b["line"], "stdout": out.getvalue(), "error": error})
        if error:
            break
    Path(result_path).write_text(json.dumps(results))


if __name__ == "__main__" and sys.argv[1:2] == ["--run"]:
    _execute(sys.argv[2], sys.argv[3])
    sys.exit(0)

import pytest  # noqa: E402

_BLOCKS = parse(README.read_text())
_SECTIONS = sections(_BLOCKS)


def _slow_if_shell(name: str):
    shell = any(b.lang == "bash" for b in _SECTIONS[name])
    return pytest.param(name, id=name, marks=[pytest.mark.slow] if shell else [])


@pytest.mark.parametrize("name", [_slow_if_shell(n) for n in _SECTIONS])
def test_readme_section_runs_as_written_and_prints_what_it_shows(name, tmp_path):
    failures, skipped = check_section(_SECTIONS[name], tmp_path)
    assert not failures, "\n\n".join(failures)
    if skipped:
        pytest.skip(skipped)


_PAGES = sorted((ROOT / "docs" / "guide").glob("*.md")) + [ROOT / "benchmarks" / "TRANSFORMS.md"]
_PAGE_SECTIONS = [
    (page, name)
    for page in _PAGES
    for name in sections(parse(page.read_text(), str(page.relative_to(ROOT))))
]


@pytest.mark.slow
@pytest.mark.parametrize("page,name", [pytest.param(p, n, id=f"{p.name}::{n}") for p, n in _PAGE_SECTIONS])
def test_docs_guide_section_runs_as_written(page, name, tmp_path):
    blocks = sections(parse(page.read_text(), str(page.relative_to(ROOT))))[name]
    failures, skipped = check_section(blocks, tmp_path)
    assert not failures, "\n\n".join(failures)
    if skipped:
        pytest.skip(skipped)


def test_readme_tour_has_python_blocks_with_checked_output():
    assert len([b for b in _BLOCKS if b.lang == "python"]) >= 4
    assert all(b.expected is not None for b in _BLOCKS if b.lang == "python"), "every tour block shows its output"
    assert any("data" in b.requires for b in _BLOCKS)


def test_readme_relative_links_point_at_files_that_exist():
    text = README.read_text()
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in t and not t.startswith("#")]
    assert targets
    assert [t for t in targets if not (ROOT / t).exists()] == []


# The collector itself: these fail if it stops catching what it is for.

_SAMPLE = '''# demo
## one
```python
a = 2
```
```python
print(a * 21)
```

```text
42
```
## two
<!-- requires: no_such_module_xyz -->
```python
print("never")
```
## three
```python
print(undefined_name)
```
<!-- run -->
```bash
echo shell
```
```bash
not run: no marker
```
'''


def test_collector_groups_blocks_by_section_and_attaches_output_and_markers():
    blocks = parse(_SAMPLE)
    assert [(b.section, b.lang, b.line) for b in blocks] == [("one", "python", 4), ("one", "python", 7), ("two", "python", 16), ("three", "python", 20), ("three", "bash", 24)]
    assert blocks[0].expected is None and blocks[1].expected == "42\n"
    assert blocks[2].requires == ["no_such_module_xyz"]


def test_collector_passes_shared_namespace_and_matching_output(tmp_path):
    assert check_section(sections(parse(_SAMPLE))["one"], tmp_path) == ([], None)


def test_collector_reports_wrong_output(tmp_path):
    blocks = sections(parse(_SAMPLE.replace("42\n```", "43\n```")))["one"]
    failures, _ = check_section(blocks, tmp_path)
    assert len(failures) == 1 and "README.md line 7 printed\n42" in failures[0]


def test_collector_reports_an_undefined_name_and_stops_the_section(tmp_path):
    failures, skipped = check_section(sections(parse(_SAMPLE))["three"], tmp_path)
    assert len(failures) == 1 and "NameError" in failures[0] and "undefined_name" in failures[0]
    assert skipped is None


def test_collector_skips_blocks_whose_requirement_is_missing(tmp_path):
    failures, skipped = check_section(sections(parse(_SAMPLE))["two"], tmp_path)
    assert failures == [] and skipped == "README.md: blocks from line 16 on not run: no_such_module_xyz is not installed"


def test_collector_runs_blocks_in_an_empty_temporary_folder(tmp_path):
    blocks = parse("## s\n```python\nimport os\nprint(sorted(f for f in os.listdir() if not f.startswith('.')))\n```\n```text\n[]\n```\n")
    assert check_section(blocks, tmp_path) == ([], None)
