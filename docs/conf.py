"""Sphinx configuration of the skstellar documentation.

Built offline and strict: ``sphinx-build -W -b html docs docs/_build`` (or ``make -C docs html``).
No extension fetches anything from the network (no intersphinx), so the build works on a machine
without internet.

The example gallery (``examples/plot_*.py``) is executed by sphinx-gallery. ``SKSTELLAR_GALLERY``
chooses which examples run: ``all`` (the default), ``none`` (pages without figures), ``fast`` (the
examples listed in ``FAST_EXAMPLES``, those that do not train a network), or any other value, a
regular expression matched against the example paths. The order and the fast examples are in
``docs/sphinxext/gallery_order.py``. Examples that do not run still get their
page, with the code but without figures.
"""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "sphinxext"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

from gallery_order import FAST_EXAMPLES  # noqa: E402

import skstellar  # noqa: E402

project = "skstellar"
author = "the skstellar developers"
copyright = "2026, the skstellar developers"
release = skstellar.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip"]
templates_path = ["_templates"]

autosummary_generate = True
autodoc_default_options = {"inherited-members": False}
numpydoc_show_class_members = False
numpydoc_validation_checks = set()

# Offline: MathJax is the one asset a page loads from a CDN; the build itself fetches nothing.
html_theme = "pydata_sphinx_theme"
html_title = f"skstellar {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path = []


def _gallery_settings(choice):
    """Return (plot_gallery, filename_pattern) for a value of SKSTELLAR_GALLERY."""
    if choice == "all":
        return True, r"/plot_"
    if choice == "none":
        return False, r"/plot_"
    if choice == "fast":
        return True, "/(" + "|".join(FAST_EXAMPLES) + r")\.py$"
    re.compile(choice)
    return True, choice


_plot_gallery, _pattern = _gallery_settings(os.environ.get("SKSTELLAR_GALLERY", "all"))

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": _pattern,
    "plot_gallery": _plot_gallery,
    "within_subsection_order": "gallery_order.GalleryOrder",
    "download_all_examples": False,
    "abort_on_example_error": True,
    "remove_config_comments": True,
    "min_reported_time": 1,
}

# The module pages list what each module's ``__all__`` names (docs/_templates/autosummary/module.rst).
autosummary_ignore_module_all = False


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn generates set_{fit,predict,score}_request on every estimator; their docstrings refer
    # to scikit-learn's glossary, which an offline build cannot link to.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
