"""Sphinx configuration for sophie-chat's documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html``.
Nothing here reaches the network: no intersphinx, no remote images.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

# Autodoc reads the contracts from the source tree being documented, not
# from whatever version happens to be installed.
sys.path.insert(0, str(SRC))


def _read_version() -> str:
    text = (SRC / "sophie_chat" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', text, re.MULTILINE)
    if not match:
        raise RuntimeError("__version__ not found in src/sophie_chat/__init__.py")
    return match.group(1)


def _configure_django() -> None:
    # The documented modules import Django lazily; configured settings make
    # any lazy translation or settings access during import safe.
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            SECRET_KEY="docs-build-only",  # noqa: S106
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
            USE_I18N=True,
        )


_configure_django()

project = "sophie-chat"
author = "The sophie-chat developers"
copyright = "The sophie-chat developers"
release = _read_version()
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "performance/**results.md"]
language = "en"

myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3

# Backend docstrings list their settings under "Options:" (Google style).
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = [("Options", "params_style")]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "furo"
html_title = f"sophie-chat {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
