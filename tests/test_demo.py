"""`skstellar demo`, the README's first command, end to end with tiny settings, and its report."""

import base64
import os
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest
from astropy.table import Table

TINY = {"n_inner": 60, "n_outer": 14}  # the demo's TINY settings (SKSTELLAR_DEMO_TINY)
FIGURES = ["one_to_one_a", "one_to_one_b", "calibration_a", "calibration_b", "kiel_a", "kiel_b", "tsne_a",
           "tsne_b", "saliency_a", "saliency_b", "saliency_correlation_a", "saliency_correlation_b", "disks",
           "li_rich"]


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tables, self.figure_ids = [], 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        elif tag == "table":
            self.tables += 1
        elif tag == "figure":
            self.figure_ids.append(attrs.get("id", ""))


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    env = dict(os.environ, SKSTELLAR_DEMO_TINY="1", SKSTELLAR_CACHE=str(out / "cache"), TF_CPP_MIN_LOG_LEVEL="")
    env.pop("TF_CPP_MIN_LOG_LEVEL")  # the command itself must keep TensorFlow quiet
    run = subprocess.run([sys.executable, "-m", "skstellar", "demo", "--out", str(out / "result")],
                         capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out / "result", run


def test_demo_writes_every_file_with_a_row_per_test_star(demo_run):
    out, _ = demo_run
    n = TINY["n_inner"] + TINY["n_outer"]
    for name in ("predictions.fits", "predictions.ecsv"):
        table = Table.read(out / name)
        assert len(table) == n and len(set(table["id"])) == n  # no star dropped, none twice
        assert sorted(set(table["set"])) == ["inner", "outer"]
        for col in ("teff", "logg", "feh", "mgfe", "alfe", "teff_hr15n", "ali"):
            assert np.isfinite(np.asarray(table[col], float)).all(), col
            assert f"e_{col}" in table.colnames and f"true_{col.removesuffix('_hr15n')}" in table.colnames
        assert table["training_like"].dtype == bool and table["training_like_hr15n"].dtype == bool
        # the label check's residuals per line, where the chain covers the line
        assert np.isfinite(np.asarray(table["explain_ca_triplet"], float)).all()
        assert np.isnan(np.asarray(table["explain_ca_triplet_hr15n"], float)).all()
        assert np.isfinite(np.asarray(table["explain_halpha_hr15n"], float)).all()
        assert np.isfinite(np.asarray(table["explain_li_hr15n"], float)).all()
        assert 3500 < np.median(table["teff"]) < 7500  # physical units
    Table.read(out / "li_rich_candidates.ecsv")  # present and readable (may hold no row at this size)
    for name in ("chain_a.joblib", "chain_b.joblib"):
        assert (out / name).stat().st_size > 10_000


def test_demo_figures_are_real_images(demo_run):
    from PIL import Image

    out, _ = demo_run
    for name in FIGURES:
        with Image.open(out / f"{name}.png") as image:
            image.verify()
            assert image.size[0] > 200 and image.size[1] > 150, name


def test_report_embeds_every_figure_and_table(demo_run):
    out, _ = demo_run
    page = _Page()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    assert sorted(page.figure_ids) == sorted(f"fig-{name}" for name in FIGURES)
    assert len(page.images) == len(FIGURES)
    for src in page.images:  # embedded, not linked: the page opens with no other file
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    # accuracy, flag fractions, the label check per kind, two line-attribution tables, the Li-rich candidates
    assert page.tables == 6
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Ca II triplet" in html and "by the label check" in html


def test_demo_prints_the_summary_without_tensorflow_chatter(demo_run):
    out, run = demo_run
    text = run.stdout + run.stderr
    assert "Inner test stars, S/N >= 30" in run.stdout and "Li-rich giants (chain B)" in run.stdout
    assert f"report: {(out / 'report.html').resolve()}" in run.stdout
    for noise in ("oneDNN", "cuda", "TF-TRT", "absl"):
        assert noise not in text, noise


def test_demo_refuses_bad_arguments_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for args, message in ((["--out", str(blocker / "sub")], "cannot write to the output folder"),
                          (["--n-train", "5"], "too few"),
                          (["--n-models", "2", "--n-keep", "3"], "more than --n-models")):
        run = subprocess.run([sys.executable, "-m", "skstellar", "demo", *args], capture_output=True, text=True,
                             timeout=120)
        assert run.returncode != 0 and message in run.stderr, (args, run.stderr)
        assert "Traceback" not in run.stderr
