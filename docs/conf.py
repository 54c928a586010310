"""Sphinx configuration of the helmholtz documentation (``make docs``).

The API reference comes from the numpydoc docstrings (autodoc + autosummary);
the guide pages are Markdown (myst-parser). The command-line reference
includes ``helmholtz ... --help`` as generated here, at build time, so it
cannot drift from the parser.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import helmholtz  # noqa: E402

project = "helmholtz"
author = "the helmholtz authors"
copyright = "the helmholtz authors, BSD-3-Clause"
release = helmholtz.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_generated/*.txt"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autosummary_generate = True
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
autodoc_mock_imports: list[str] = []
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# No network at build time: intersphinx only resolves from inventories on disk.
intersphinx_mapping: dict = {}

html_theme = "pydata_sphinx_theme"
html_title = f"helmholtz {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []


def _cli_help() -> None:
    """Write ``helmholtz [COMMAND] --help`` into docs/_generated/ for cli.md to include."""
    out = HERE / "_generated"
    out.mkdir(exist_ok=True)
    env = dict(os.environ, COLUMNS="100", PYTHONPATH=str(ROOT))
    from helmholtz.cli import COMMANDS

    for name in [None, *COMMANDS]:
        args = [sys.executable, "-m", "helmholtz", *([name] if name else []), "--help"]
        text = subprocess.run(args, capture_output=True, text=True, check=True, env=env, cwd=ROOT).stdout
        (out / f"cli_{name or 'main'}.txt").write_text(text)


_cli_help()

# The public modules of the API reference, in reading order.
API_MODULES = {
    "helmholtz.jpeg": "The codec: round trips, coefficients, exact bits and files.",
    "helmholtz.info": "Information measures of compressed batches.",
    "helmholtz.transforms": "The torch layer: the exact JPEG transform, torch ops, device data.",
    "helmholtz.models": "The papers' networks in PyTorch.",
    "helmholtz.data": "Data sets by name, readers, prepared sets that stream, audio data sets.",
    "helmholtz.audio": "MP3 round trips with LAME, mel spectrograms.",
    "helmholtz.errors": "Every exception helmholtz raises on purpose.",
}


def _api_pages() -> None:
    """Write docs/api/<module>.rst from each module's ``__all__`` (so the reference follows the code).

    Names a module re-exports from :mod:`helmholtz.errors` are documented there
    only, so that every object has one page and cross-references are unambiguous.
    """
    import importlib

    folder = HERE / "api"
    folder.mkdir(exist_ok=True)
    for name, summary in API_MODULES.items():
        mod = importlib.import_module(name)
        members = []
        for attr in mod.__all__:
            obj = getattr(mod, attr)
            home = getattr(obj, "__module__", None)
            if name != "helmholtz.errors" and home == "helmholtz.errors" and isinstance(obj, type):
                continue
            members.append(attr)
        title = f"``{name}``"
        lines = [
            f".. This file is written by docs/conf.py from {name}.__all__; edit the docstrings instead.",
            "",
            title,
            "=" * len(title),
            "",
            f".. automodule:: {name}",
            "   :no-members:",
            "",
            f".. currentmodule:: {name}",
            "",
            ".. autosummary::",
            "   :toctree: generated/",
            "",
            *[f"   {m}" for m in members],
            "",
        ]
        text = "\n".join(lines)
        page = folder / f"{name.split('.')[-1]}.rst"
        if not page.exists() or page.read_text() != text:
            page.write_text(text)


_api_pages()


def _constant_doc(app, what, name, obj, options, lines) -> None:
    """Give a re-exported constant the ``#:`` comment of the module that defines it.

    autodoc reads ``#:`` comments only in the documented module; for a constant
    imported from a private module it falls back to the docstring of the
    value's type (``ndarray``, ``int``, ...), which says nothing about it, so
    that docstring is replaced by the comment, or by nothing.
    """
    if what != "data" or not name.startswith("helmholtz."):
        return
    if (type(obj).__module__ or "").startswith("helmholtz"):
        return  # an instance of helmholtz's own class: its docstring is ours
    from sphinx.pycode import ModuleAnalyzer

    attr = name.rsplit(".", 1)[1]
    for modname, mod in sorted(sys.modules.items()):
        if not modname.startswith("helmholtz.") or getattr(mod, attr, None) is not obj:
            continue
        try:
            docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except Exception:  # a compiled module has no source to analyse
            continue
        if ("", attr) in docs:
            lines[:] = list(docs[("", attr)])
            return
    lines[:] = []


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _constant_doc, priority=400)
