"""``skstellar demo``: the thesis' whole workflow on the built-in mock survey, and a report.

Two chains are trained on mock Gaia-ESO GIRAFFE spectra of disk stars at S/N >= 30:

- chain A (Ambrosch et al. 2023): HR10 + HR21 -> similarity filter -> CNN ensemble for
  Teff, log g, [Fe/H], [Mg/Fe], [Al/Fe];
- chain B (Nepal et al. 2023): HR15N -> similarity filter -> CNN ensemble for Teff, log g,
  [Fe/H], A(Li).

Both predict an "inner" test set (disk stars, S/N 10-150) and an "outer" one (stars outside
the training box and broken spectra); then the thin and thick disks are separated in chain
A's labels, Li-rich giant candidates are selected from chain B's, and the saliency of both
ensembles is attributed to spectral lines. Everything lands in one folder with a
self-contained ``report.html``.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np

from .._labels import LABEL_TITLES as TITLES
from .._labels import LABEL_UNITS as UNITS

__all__ = ["add_parser", "run"]

CHAIN_A_LABELS = ("teff", "logg", "feh", "mgfe", "alfe")
CHAIN_B_LABELS = ("teff", "logg", "feh", "ali")
# What the papers report, for the closing table: chain A, the training precision of Ambrosch
# et al. (2023; [Al/Fe] quoted as a range); chain B, the scatter of Nepal et al.'s (2023) CNN on
# their 1758 test stars, computed from their released predictions (benchmarks/bench_lithium.py).
PUBLISHED = {
    "A": {"teff": "37 K", "logg": "0.06", "feh": "0.04", "mgfe": "0.05", "alfe": "0.06-0.08"},
    "B": {"teff": "91.5 K", "logg": "0.176", "feh": "0.084", "ali": "0.153"},
}
SETS = ("training", "validation", "inner S/N>=30", "inner S/N<30", "outer")

# Settings of the default run (<= 15 min on 2 cores), of --full (the thesis'), and of the
# tiny run the test suite uses (SKSTELLAR_DEMO_TINY=1, seconds).
DEFAULT = {"n_train": 1500, "n_inner": 1200, "n_outer": 150, "n_models": 4, "n_keep": 3, "max_epochs": 40,
           "patience": 10, "n_saliency": 200}
FULL = {"n_train": 8800, "n_inner": 4000, "n_outer": 700, "n_models": 10, "n_keep": 8, "max_epochs": 300,
        "patience": 30, "n_saliency": 1000}
TINY = {"n_train": 120, "n_inner": 60, "n_outer": 14, "n_models": 2, "n_keep": 2, "max_epochs": 2,
        "patience": 2, "n_saliency": 20}


def add_parser(subparsers):
    """Register the ``demo`` command on an argparse sub-parser collection."""
    p = subparsers.add_parser(
        "demo",
        help="the whole workflow on the built-in mock survey, with an HTML report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="skstellar-demo",
                   help="folder for the predictions, models, figures and report.html (default ./skstellar-demo)")
    p.add_argument("--cache", default=None,
                   help="folder caching the generated mock survey (default $SKSTELLAR_CACHE or ~/.cache/skstellar)")
    p.add_argument("--seed", type=int, default=0, help="seed of the survey, the splits and the networks (default 0)")
    p.add_argument("--n-train", type=int, default=None,
                   help=f"training stars (default {DEFAULT['n_train']}, --full {FULL['n_train']})")
    p.add_argument("--n-test", type=int, default=None,
                   help=f"inner test stars (default {DEFAULT['n_inner']}); the outer set is an eighth of it")
    p.add_argument("--n-models", type=int, default=None, help=f"ensemble members (default {DEFAULT['n_models']})")
    p.add_argument("--n-keep", type=int, default=None, help=f"members kept (default {DEFAULT['n_keep']})")
    p.add_argument("--max-epochs", type=int, default=None, help=f"epochs per member at most (default "
                   f"{DEFAULT['max_epochs']})")
    p.add_argument("--full", action="store_true",
                   help="the thesis' settings: 8800 training stars, 10 members keep 8, patience 30 (hours)")
    p.add_argument("--quiet", action="store_true", help="no progress output; only the final table")
    p.add_argument("--no-report", action="store_true", help="tables only: no figures and no report.html")
    p.set_defaults(func=run)
    return p


class _Steps:
    """Numbered step lines with their wall time, silent with --quiet."""

    def __init__(self, total, quiet):
        self.total, self.quiet, self.i, self.t0 = total, quiet, 0, None

    def start(self, text):
        self.i += 1
        self.t0 = time.perf_counter()
        if not self.quiet:
            print(f"[{self.i}/{self.total}] {text} ...", flush=True)

    def done(self, text=""):
        if not self.quiet:
            print(f"      done in {time.perf_counter() - self.t0:.1f} s{'; ' + text if text else ''}", flush=True)


def _settings(args):
    base = dict(FULL if args.full else DEFAULT)
    if os.environ.get("SKSTELLAR_DEMO_TINY"):
        base = dict(TINY)
    for key, value in (("n_train", args.n_train), ("n_models", args.n_models), ("n_keep", args.n_keep),
                       ("max_epochs", args.max_epochs)):
        if value is not None:
            base[key] = value
    if args.n_test is not None:
        base["n_inner"], base["n_outer"] = args.n_test, max(args.n_test // 8, 7)
    return base


def _check(settings, out):
    """Every argument checked before any expensive work; raises SystemExit with one line."""
    for key in ("n_train", "n_inner", "n_models", "n_keep", "max_epochs"):
        if settings[key] < 1:
            raise SystemExit(f"skstellar demo: --{key.replace('_', '-')} must be positive, got {settings[key]}.")
    if settings["n_train"] < 20:
        raise SystemExit(f"skstellar demo: --n-train {settings['n_train']} is too few to train and validate on; "
                         "give at least 20.")
    if settings["n_keep"] > settings["n_models"]:
        raise SystemExit(f"skstellar demo: --n-keep {settings['n_keep']} is more than --n-models "
                         f"{settings['n_models']}.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".skstellar-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise SystemExit(f"skstellar demo: cannot write to the output folder {out}: {exc.strerror}.") from None


def _setups(spectra, names):
    return spectra.with_setups({name: spectra.setup_data(name) for name in names})


def _chain(preprocessor, labels, settings, seed, verbose):
    from sklearn.pipeline import Pipeline

    from skstellar.filters import TSNESimilarityFilter
    from skstellar.models import CNNLabelRegressor

    # t-SNE needs perplexity < n / 3; small demo runs shrink it rather than fail
    perplexity = float(min(30.0, max(2.0, (settings["n_train"] - 1) / 3.5)))
    return Pipeline(
        list(preprocessor.steps)
        + [
            ("similarity", TSNESimilarityFilter(perplexity=perplexity, random_state=seed)),
            ("cnn", CNNLabelRegressor(n_models=settings["n_models"], n_keep=settings["n_keep"],
                                      max_epochs=settings["max_epochs"], patience=settings["patience"],
                                      random_state=seed, label_names=list(labels), verbose=verbose)),
        ]
    )


def _fit_and_predict(name, pipe, train, y_train, tests, settings):
    """Fit a chain; returns its predictions on the training stars and on ``tests`` (a SpectralSet)."""
    from skstellar import predict_table

    pipe.fit(train, y_train)
    train_table = predict_table(pipe, train)
    test_table = predict_table(pipe, tests)
    embedding = pipe.named_steps["similarity"].embed(pipe[:-2].transform(tests)).embedding
    return train_table, test_table, embedding


def _bias_scatter(pred, truth, rows):
    d = (np.asarray(pred, float) - np.asarray(truth, float))[rows]
    d = d[np.isfinite(d)]
    return (float(np.mean(d)), float(np.std(d)), int(d.size)) if d.size else (np.nan, np.nan, 0)


def run(args):
    """Run the demo with parsed arguments; returns the exit code."""
    settings = _settings(args)
    out = Path(args.out)
    _check(settings, out)
    quiet = args.quiet
    steps = _Steps(8 if not args.no_report else 7, quiet)
    t_start = time.perf_counter()

    import joblib

    from skstellar.datasets import make_giraffe_survey
    from skstellar.io import write_predictions
    from skstellar.preprocessing import giraffe_preprocessor, lithium_preprocessor
    from skstellar.spectra import SpectralSet

    cache = args.cache if args.cache is not None else True
    seed = args.seed
    steps.start(f"mock survey: {settings['n_train']} training, {settings['n_inner']} inner and "
                f"{settings['n_outer']} outer stars in HR10, HR15N, HR21 (cached)")
    all_setups = ("HR10", "HR15N", "HR21")
    train, truth_train = make_giraffe_survey(settings["n_train"], setups=all_setups, population="disk",
                                             snr=(30, 150), random_state=seed, cache=cache)
    inner, truth_inner = make_giraffe_survey(settings["n_inner"], setups=all_setups, population="disk",
                                             snr=(10, 150), random_state=seed + 1, cache=cache)
    outer, truth_outer = make_giraffe_survey(settings["n_outer"], setups=all_setups, population="edge",
                                             snr=(30, 150), random_state=seed + 2, cache=cache)
    tests = SpectralSet.concatenate([inner, outer])
    truth_test = _stack_truth(truth_inner, truth_outer)
    steps.done()

    from ._quiet import load_tensorflow_quietly

    load_tensorflow_quietly()
    verbose = 0 if quiet else 1
    results = {}
    for chain, setups, labels, pre in (
        ("A", ("HR10", "HR21"), CHAIN_A_LABELS, giraffe_preprocessor()),
        ("B", ("HR15N",), CHAIN_B_LABELS, lithium_preprocessor()),
    ):
        steps.start(f"chain {chain}: {' + '.join(setups)} -> filter -> {settings['n_models']} CNNs for "
                    f"{', '.join(TITLES[lab] for lab in labels)}")
        pipe = _chain(pre, labels, settings, seed, verbose)
        y = np.column_stack([np.asarray(truth_train[lab], float) for lab in labels])
        train_table, test_table, embedding = _fit_and_predict(
            chain, pipe, _setups(train, setups), y, _setups(tests, setups), settings)
        joblib.dump(pipe, out / f"chain_{chain.lower()}.joblib")
        results[chain] = {"pipe": pipe, "labels": labels, "train": train_table, "test": test_table,
                          "embedding": embedding}
        steps.done(f"{int((~np.asarray(test_table['training_like'])).sum())} of {len(test_table)} test "
                   "stars flagged unlike the training set")

    is_inner = np.arange(len(tests)) < len(inner)
    snr = np.asarray(truth_test["snr"], float)
    sets_test = {"inner S/N>=30": is_inner & (snr >= 30), "inner S/N<30": is_inner & (snr < 30),
                 "outer": ~is_inner}

    steps.start("science: thin/thick disks (chain A) and Li-rich giants (chain B)")
    predictions = _predictions_table(results, truth_test, is_inner)
    science = _science(predictions, sets_test)
    steps.done(science["summary"])

    steps.start(f"saliency of both ensembles on {settings['n_saliency']} inner spectra, line by line")
    saliency = _saliency(results, tests[np.flatnonzero(sets_test["inner S/N>=30"])[: settings["n_saliency"]]])
    steps.done()

    steps.start(f"writing predictions to {out}")
    write_predictions(predictions, out / "predictions.fits", overwrite=True)
    write_predictions(predictions, out / "predictions.ecsv", overwrite=True)
    science["li_rich"].write(out / "li_rich_candidates.ecsv", overwrite=True)
    steps.done("predictions.fits, predictions.ecsv, li_rich_candidates.ecsv, chain_a.joblib, chain_b.joblib")

    summary = _summary_rows(results, truth_train, predictions, sets_test, science)
    if not args.no_report:
        steps.start("figures and report.html")
        from ._demo_report import write_report

        report = write_report(out, results, truth_train, predictions, sets_test, science, saliency, summary,
                              settings)
        steps.done(f"{len(report.figures)} figures")

    _print_summary(summary, _flag_fractions(predictions, sets_test), science, settings,
                   time.perf_counter() - t_start)
    if not args.no_report:
        print(f"report: {(out / 'report.html').resolve()}")
    return 0


# The label check's residuals copied into predictions.fits (the line regions a GIRAFFE setup covers).
LABEL_CHECK_COLUMNS = ("explain_residual", "explain_local", "explain_local_wavelength", "explain_ca_triplet",
                       "explain_halpha", "explain_he_6678", "explain_li", "explain_mg", "explain_al")


def _stack_truth(*tables):
    from astropy.table import vstack

    keep = ("id", "teff", "logg", "feh", "mgfe", "alfe", "ali", "snr", "population", "edge_kind", "li_rich")
    return vstack([t[keep] for t in tables], metadata_conflicts="silent")


def _predictions_table(results, truth, is_inner):
    """One row per test star: both chains' labels, errors and flags, and the mock's truth."""
    from astropy import units as u
    from astropy.table import Table

    table = Table()
    table["id"] = truth["id"]
    table["set"] = np.where(is_inner, "inner", "outer")
    table["snr"] = np.asarray(truth["snr"], float)
    for chain, suffix in (("A", ""), ("B", "_hr15n")):
        part, labels = results[chain]["test"], results[chain]["labels"]
        for lab in labels:
            # A(Li) exists in chain B only, so it keeps its plain name
            name = lab if (suffix == "" or lab == "ali") else lab + suffix
            unit = u.K if lab == "teff" else u.dex
            table[name] = np.asarray(part[lab], float) * unit
            table[f"e_{name}"] = np.asarray(part[f"e_{lab}"], float) * unit
        for flag in ("training_like", "filter_score", "labels_explained", *LABEL_CHECK_COLUMNS, "status", "flags"):
            if flag in part.colnames:
                table[flag + suffix] = part[flag]
    for lab in ("teff", "logg", "feh", "mgfe", "alfe", "ali"):
        table[f"true_{lab}"] = np.asarray(truth[lab], float) * (u.K if lab == "teff" else u.dex)
    table["true_population"] = truth["population"]
    table["true_edge_kind"] = truth["edge_kind"]
    table["true_li_rich"] = np.asarray(truth["li_rich"], bool)
    table.meta["comments"] = [  # short lines: FITS COMMENT cards hold 72 characters
        "skstellar demo on the mock Gaia-ESO survey.",
        "Chain A (HR10+HR21): teff logg feh mgfe alfe.",
        "Chain B (HR15N): teff_hr15n logg_hr15n feh_hr15n ali.",
        "e_*: calibrated ensemble std (1 sigma); true_*: the mock's truth.",
    ]
    return table


def _science(predictions, sets_test):
    """Thin/thick disks on chain A's S/N >= 30 training-like inner stars; Li-rich giants from chain B."""
    from skstellar.science import DiskSeparator, select_li_rich

    good = sets_test["inner S/N>=30"] & np.asarray(predictions["training_like"], bool)
    disk_rows = np.flatnonzero(good)
    sub = predictions[disk_rows]
    separator = DiskSeparator().fit(np.column_stack([sub["feh"], sub["mgfe"]]))
    population = np.asarray(separator.labels_)
    truth = np.asarray(sub["true_population"])
    on_disk = np.isin(truth, ("thin", "thick"))
    assigned = np.isin(population, ("thin", "thick"))
    right = assigned & on_disk & (population == truth)
    disks = {"rows": disk_rows, "population": population,
             "assigned": float(assigned.mean()) if assigned.size else np.nan,
             "accuracy": float(right.sum() / (assigned & on_disk).sum()) if (assigned & on_disk).any() else np.nan,
             "n": len(disk_rows)}

    # The thesis' cuts, on chain B's labels of the stars its filter calls training-like; the
    # e_ columns are the calibrated ensemble std.
    candidates = predictions[np.asarray(predictions["training_like_hr15n"], bool)]
    selected = select_li_rich(candidates, columns={
        "teff": "teff_hr15n", "logg": "logg_hr15n", "e_teff": "e_teff_hr15n", "e_logg": "e_logg_hr15n",
        "e_feh": "e_feh_hr15n"})
    keep = [c for c in ("id", "set", "snr", "teff_hr15n", "e_teff_hr15n", "logg_hr15n", "e_logg_hr15n",
                        "feh_hr15n", "e_feh_hr15n", "ali", "e_ali", "true_teff", "true_logg", "true_ali",
                        "true_li_rich") if c in selected.colnames]
    selected = selected[keep]
    planted = int(np.sum(predictions["true_li_rich"]))
    found = int(np.sum(selected["true_li_rich"]))
    # The error cuts were set for 8 members' raw spread; the demo's few members and calibrated
    # e_ columns are wider, so the label cuts alone are shown too (what a user gets without them).
    loose = select_li_rich(candidates, max_e_teff=None, max_e_logg=None, max_e_feh=None, max_e_ali=None,
                           columns={"teff": "teff_hr15n", "logg": "logg_hr15n"})
    found_loose = int(np.sum(loose["true_li_rich"]))

    def ratio(a, b):
        return a / b if b else np.nan

    li = {"table": selected, "planted": planted, "found": found,
          "recall": ratio(found, planted), "precision": ratio(found, len(selected)),
          "n_label_cuts": len(loose), "found_label_cuts": found_loose,
          "recall_label_cuts": ratio(found_loose, planted), "precision_label_cuts": ratio(found_loose, len(loose))}
    summary = (f"disks: {disks['n']} stars, {_pct(disks['assigned'])} assigned, {_pct(disks['accuracy'])} right; "
               f"Li-rich: {len(selected)} candidates, {found} of {planted} planted")
    return {"disks": disks, "li": li, "li_rich": selected, "summary": summary}


def _saliency(results, spectra):
    """Mean saliency and its line attribution for each chain, on training-like inner spectra."""
    from skstellar.explain import line_attribution, saliency, saliency_correlation

    out = {}
    for chain, setups in (("A", ("HR10", "HR21")), ("B", ("HR15N",))):
        smap = saliency(results[chain]["pipe"], _setups(spectra, setups))
        out[chain] = {"map": smap, "lines": line_attribution(smap), "correlation": saliency_correlation(smap)}
    return out


def _summary_rows(results, truth_train, predictions, sets_test, science):
    """Per chain and label: bias and scatter of training-like inner S/N >= 30 stars, beside the papers."""
    rows = []
    for chain, suffix in (("A", ""), ("B", "_hr15n")):
        like = np.asarray(predictions["training_like" + suffix], bool)
        good = sets_test["inner S/N>=30"] & like
        for lab in results[chain]["labels"]:
            name = lab if (suffix == "" or lab == "ali") else lab + suffix
            bias, scatter, n = _bias_scatter(predictions[name], predictions[f"true_{lab}"], good)
            e = np.asarray(predictions[f"e_{name}"], float)[good]
            rows.append((chain, TITLES[lab], UNITS[lab], n, bias, scatter, float(np.nanmean(e)),
                         PUBLISHED[chain][lab]))
    return rows


def _flag_fractions(predictions, sets_test):
    rows = []
    for name, mask in sets_test.items():
        for chain, col in (("A", "training_like"), ("B", "training_like_hr15n")):
            flagged = ~np.asarray(predictions[col], bool)[mask]
            rows.append((name, chain, int(mask.sum()), float(flagged.mean()) if mask.any() else np.nan))
    return rows


def _print_summary(rows, flags, science, settings, seconds):
    print()
    print("Inner test stars, S/N >= 30, training-like: prediction - truth")
    print(f"  {'chain':5s} {'label':7s} {'n':>5s} {'bias':>9s} {'scatter':>9s} {'mean e_':>9s}   published")
    for chain, title, unit, n, bias, scatter, e, published in rows:
        print(f"  {chain:5s} {title:7s} {n:5d} {bias:+9.3f} {scatter:9.3f} {e:9.3f}   {published}  ({unit})")
    print("  (published: A, training precision of Ambrosch et al. 2023; B, scatter of Nepal et al. 2023's CNN on "
          "their test stars)")
    print("Flagged unlike the training set: " + "; ".join(
        f"{name} {chain} {_pct(frac)}" for name, chain, n, frac in flags))
    d, li = science["disks"], science["li"]
    print(f"Disks (chain A, HDBSCAN): {d['n']} stars, {100 * d['assigned']:.0f} % assigned to thin or thick, "
          f"{100 * d['accuracy']:.0f} % of those to their true population")
    print(f"Li-rich giants (chain B): {len(li['table'])} candidates with the thesis' cuts; {li['found']} of the "
          f"{li['planted']} planted found (recall {_pct(li['recall'])}, precision {_pct(li['precision'])}); "
          f"label and S/N cuts alone: {li['n_label_cuts']} candidates, recall {_pct(li['recall_label_cuts'])}, "
          f"precision {_pct(li['precision_label_cuts'])}")
    print(f"Wall time {seconds / 60:.1f} min ({settings['n_train']} training stars, {settings['n_models']} members "
          f"keep {settings['n_keep']})")


def _pct(x):
    return "n/a" if not np.isfinite(x) else f"{100 * x:.0f} %"
