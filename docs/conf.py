"""Sphinx configuration: the API reference (from the docstrings, numpydoc style) and the guide
pages beside it (Markdown, through MyST). Built by ``bash scripts/docs.sh`` with warnings as
errors."""

from __future__ import annotations

import genlab

project = "genlab"
author = "The genlab developers"
copyright = "2026, The genlab developers"  # noqa: A001 - Sphinx's name
release = version = genlab.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# Published result folders hold generated tables (ranking.md) that are data, not pages.
exclude_patterns = [
    "_build",
    "results/*/ranking.md",
    "results/*/report.html",
    "results/*/table.md",  # a script's output, compared byte for byte; the README shows it
]

autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc Parameters sections carry the types
autosummary_generate = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing"]

html_theme = "pydata_sphinx_theme"
html_title = f"genlab {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
