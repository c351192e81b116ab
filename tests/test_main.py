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


def test_demo_refuses_bad_arguments_before_any_work(tmp_path, capsys):
    import pytest

    from skstellar.__main__ import main

    cases = [
        (["--n-train", "50"], r"--n-train 50 is too few.*at least 91"),
        (["--n-keep", "5", "--n-models", "2"], r"--n-keep \(5\) cannot exceed --n-models \(2\)"),
        (["--out", str(tmp_path / "nowhere" / "p.ecsv")], r"the folder .*nowhere does not exist"),
        (["--out", str(tmp_path / "p.xlsx")], r"cannot tell the format from the suffix"),
        (["--model", str(tmp_path)], r"is a folder"),
        (["--max-epochs", "0"], r"--max-epochs must be at least 1"),
    ]
    for argv, match in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(["demo", *argv])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert __import__("re").search(match, err), (argv, err)
        assert "Traceback" not in err
