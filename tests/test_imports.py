"""Importing the data side of skstellar must not load TensorFlow (2 s, 670 MB) or numba
(0.5 s; the preprocessing kernels load it on first use)."""

import subprocess
import sys

import pytest

LIGHT_MODULES = ["skstellar", "skstellar.spectra", "skstellar.io", "skstellar.preprocessing",
                 "skstellar.datasets", "skstellar.filters", "skstellar.science", "skstellar.predict"]


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_import_does_not_load_tensorflow_or_numba(module):
    code = (
        f"import sys, {module}\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'numba') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import {module} loaded {out.stdout.strip()}"


def test_unknown_attribute():
    import skstellar

    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        skstellar.nonsense  # noqa: B018 (the attribute access is the test)
