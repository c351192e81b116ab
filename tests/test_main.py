"""`python -m skstellar demo`, the README's first command, end to end with tiny settings."""

import subprocess
import sys

import numpy as np
from astropy.table import Table


def test_demo_writes_a_row_for_every_test_star(tmp_path):
    out = tmp_path / "pred.ecsv"
    args = ["--n-train", "200", "--n-test", "40", "--n-models", "2", "--n-keep", "2",
            "--max-epochs", "2", "--out", str(out)]
    run = subprocess.run([sys.executable, "-m", "skstellar", "demo", *args],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"wrote {out}" in run.stdout
    table = Table.read(out)
    assert len(table) == 40 and len(set(table["id"])) == 40  # no star dropped
    for label in ("teff", "logg", "feh", "mgfe", "alfe"):
        assert np.isfinite(table[label]).all()
        assert (table[f"e_{label}"] > 0).all()  # two kept members: a spread
    assert table["training_like"].dtype == bool
    # predictions come back in physical units (K), not standardised ones
    assert 4000 < np.median(table["teff"]) < 7000
