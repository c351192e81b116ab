"""The documentation's API reference lists every public module, so every ``__all__`` name gets a page.

docs/api.rst lists modules; docs/_templates/autosummary/module.rst turns each module's
``__all__`` into pages. A public module missing from docs/api.rst would be missing from the
reference without any warning from Sphinx, hence this check (the Sphinx build itself runs in CI).
"""

import re
from pathlib import Path

import pytest

import skstellar

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _listed():
    return set(re.findall(r"^\s+(skstellar[\w.]*)\s*$", (DOCS / "api.rst").read_text(), flags=re.M))


@pytest.mark.parametrize("module", sorted(skstellar._SUBMODULES))
def test_public_module_is_in_the_api_reference(module):
    # Looked up in this tree: an editable install elsewhere may resolve modules this tree lacks.
    package = ROOT / "skstellar"
    if not ((package / module / "__init__.py").exists() or (package / f"{module}.py").exists()):
        pytest.skip(f"skstellar.{module} does not exist yet")
    assert f"skstellar.{module}" in _listed(), f"add skstellar.{module} to docs/api.rst"


def test_root_names_are_in_the_api_reference():
    listed = _listed()
    for name in skstellar.__all__:
        if name in skstellar._SUBMODULES or name == "__version__":
            continue  # modules have their own lines; the version is in the page text
        qualified = f"skstellar.{name}"
        obj = getattr(skstellar, name)
        home = f"{obj.__module__}.{obj.__qualname__}"
        assert qualified in listed or any(home.startswith(m + ".") for m in listed), (
            f"{qualified} is not in docs/api.rst")


def test_every_page_is_in_a_toctree():
    index = (DOCS / "index.rst").read_text()
    entries = set(re.findall(r"^   ([\w/]+)\s*$", index, flags=re.M))
    pages = {p.stem for p in DOCS.glob("*.rst")} - {"index", "sg_execution_times"}
    assert pages <= entries, f"pages not in docs/index.rst's toctrees: {sorted(pages - entries)}"
