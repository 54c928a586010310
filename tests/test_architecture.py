"""The package's architecture rules, checked on its source: layers, private names, one errors module."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "helmholtz"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def underscore_uses() -> list[str]:
    """Every place a helmholtz module uses another helmholtz module's underscore name."""
    modules = _modules()
    problems = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        bound: dict[str, str] = {}  # local name -> helmholtz module it stands for
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _absolute(module, is_package, node)
                if not source.startswith("helmholtz"):
                    continue
                for alias in node.names:
                    target = f"{source}.{alias.name}"
                    if _private(alias.name):
                        problems.append(f"{path.name}:{node.lineno} imports {alias.name} from {source}")
                    if target in modules:
                        bound[alias.asname or alias.name] = target
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("helmholtz") and alias.asname:
                        bound[alias.asname] = alias.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound and _private(node.attr):
                problems.append(f"{path.name}:{node.lineno} uses {bound[node.value.id]}.{node.attr}")
    return problems


def test_no_module_uses_another_modules_underscore_names():
    assert underscore_uses() == []


def test_the_underscore_check_finds_a_planted_violation(tmp_path, monkeypatch):
    plant = PACKAGE / "_codec" / "zz_planted_for_test.py"
    plant.write_text("from .lossy import _prepare\nfrom . import registry\nregistry._instances\n")
    try:
        found = underscore_uses()
    finally:
        plant.unlink()
    assert any("imports _prepare" in p for p in found) and any("registry._instances" in p for p in found)


def test_every_exception_class_is_defined_in_helmholtz_errors():
    defined = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name) and (b.id.endswith("Error") or b.id.endswith("Exception") or b.id == "BackendUnavailable") for b in node.bases
            ):
                defined.append(f"{module}.{node.name}")
    assert all(d.startswith("helmholtz.errors.") for d in defined), defined


def test_argparse_appears_only_in_the_cli():
    users = [m for m, p in _modules().items() if "argparse" in p.read_text() and not m.startswith("helmholtz.cli")]
    assert users == []


@pytest.mark.skipif(shutil.which("lint-imports", path=str(Path(sys.executable).parent)) is None, reason="import-linter is not installed")
def test_import_linter_contracts_are_kept():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    done = subprocess.run([exe, "--no-cache"], cwd=PACKAGE.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "broken" not in done.stdout.lower().split("contracts:")[-1].replace("0 broken", "")
