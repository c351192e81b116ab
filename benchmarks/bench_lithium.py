"""The lithium chain of Nepal et al. (2023) on the mock survey: HR15N -> Teff, log g, [Fe/H], A(Li).

Draws mock survey disk stars observed in HR15N at S/N 30-150 (training-like), runs
`skstellar.preprocessing.lithium_preprocessor` (fitted on the training stars), trains a
`CNNLabelRegressor` (default recipe) on Teff, log g, [Fe/H], A(Li) and prints, per label, the bias
and scatter (std of prediction - truth) of held-out stars with the mean calibrated ensemble std,
next to the same figures of Nepal et al.'s own CNN on their test set. Then A(Li) apart for the
planted Li-rich giants (2 % of the stars), for stars whose Li line is weak (A(Li) < 1), and the
rest; and how many Li-rich giants `skstellar.science.select_li_rich` recovers from the predictions.

    python benchmarks/bench_lithium.py --quick        # 300 + 200 stars, 2 members x 5 epochs: checks it runs
    python benchmarks/bench_lithium.py                # 1500 + 1500 stars, 2 members x 20 epochs (~10 min, 2 cores)
    python benchmarks/bench_lithium.py --n-train 6000 --n-models 10 --n-keep 8 --max-epochs 300

The paper's figures are not typed in from the paper: they are computed from its released CNN
predictions on its 1758 test stars (``res_test_GIRAFFE_HR15N_v1.csv``) against the Gaia-ESO iDR6
labels (``labels_GIRAFFE_HR15N_training.csv``), both in ``../shared/data/labels`` (MIT, repository
Li_CNN_2022), matched by spectrum file name; the script recomputes them when those files are
there and otherwise prints the values recorded below.
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

LABELS = ("teff", "logg", "feh", "ali")
PAPER_COLUMNS = ("TEFF", "LOGG", "FEH", "LI1")
UNITS = ("K", "dex", "dex", "dex")
# Nepal et al. (2023), CNN on its test set (1758 stars): bias, scatter per label, and A(Li) of
# the 8 test stars with A(Li) > 2, log g < 3.5, Teff < 5500 K; computed as the docstring says.
PAPER_BIAS = (3.1, -0.004, 0.002, 0.002)
PAPER_SCATTER = (91.5, 0.176, 0.084, 0.153)
PAPER_LI_RICH = (8, -0.060, 0.286)
SHARED_LABELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "labels"


def paper_figures():
    """(bias, scatter, (n, bias, scatter) of Li-rich giants) of the paper's test set."""
    test = SHARED_LABELS / "res_test_GIRAFFE_HR15N_v1.csv"
    truth = SHARED_LABELS / "labels_GIRAFFE_HR15N_training.csv"
    if not (test.exists() and truth.exists()):
        return PAPER_BIAS, PAPER_SCATTER, PAPER_LI_RICH, "recorded"
    from astropy.table import Table, join

    pred = Table.read(test, format="ascii.csv")
    pred.rename_column("spectra", "ges_spec_names")
    m = join(pred, Table.read(truth, format="ascii.csv"), keys="ges_spec_names", table_names=["cnn", "true"])
    diff = np.column_stack([np.asarray(m[c + "_cnn"], float) - np.asarray(m[c + "_true"], float)
                            for c in PAPER_COLUMNS])
    rich = (np.asarray(m["LI1_true"]) > 2) & (np.asarray(m["LOGG_true"]) < 3.5) & (np.asarray(m["TEFF_true"]) < 5500)
    li = diff[rich, 3]
    return diff.mean(axis=0), diff.std(axis=0), (int(rich.sum()), li.mean(), li.std()), f"{len(m)} test stars"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 + 200 stars, 2 members x 5 epochs")
    parser.add_argument("--n-train", type=int, default=1500)
    parser.add_argument("--n-test", type=int, default=1500)
    parser.add_argument("--n-models", type=int, default=2)
    parser.add_argument("--n-keep", type=int, default=2)
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.n_train, args.n_test, args.n_models, args.n_keep, args.max_epochs = 300, 200, 2, 1, 5

    from skstellar.datasets import make_giraffe_survey
    from skstellar.models import CNNLabelRegressor
    from skstellar.preprocessing import lithium_preprocessor
    from skstellar.science import select_li_rich

    t0 = time.perf_counter()
    spectra, labels = make_giraffe_survey(
        args.n_train + args.n_test, setups=("HR15N",), population="disk", snr=(30.0, 150.0),
        random_state=args.seed,
    )
    print(f"mock survey: {len(spectra)} disk stars in HR15N, S/N 30-150: {time.perf_counter() - t0:.0f} s")
    t = time.perf_counter()
    prep = lithium_preprocessor()
    X_train = prep.fit_transform(spectra[: args.n_train])
    X_test = prep.transform(spectra[args.n_train:])
    print(f"preprocessing: {time.perf_counter() - t:.0f} s -> {X_train.shape[1]} pixels")
    y = np.column_stack([np.asarray(labels[c], dtype=float) for c in LABELS])
    y_train, y_test = y[: args.n_train], y[args.n_train:]
    test = labels[args.n_train:]

    t = time.perf_counter()
    model = CNNLabelRegressor(
        n_models=args.n_models, n_keep=args.n_keep, max_epochs=args.max_epochs,
        random_state=args.seed, label_names=list(LABELS),
    ).fit(X_train, y_train)
    print(f"training {args.n_models} members on {args.n_train} stars: {time.perf_counter() - t:.0f} s")
    mean, std = model.predict(X_test, return_std=True)
    diff = mean - y_test

    bias, scatter, li_rich, source = paper_figures()
    print(f"\nheld-out: {args.n_test} stars (S/N 30-150); paper: Nepal et al. 2023 CNN, {source}")
    print(f"{'label':<6} {'bias':>8} {'scatter':>8} {'ens std':>8} | {'paper bias':>10} {'scatter':>8}")
    for j, (name, unit) in enumerate(zip(LABELS, UNITS)):
        print(f"{name:<6} {diff[:, j].mean():+8.3f} {diff[:, j].std():8.3f} {std[:, j].mean():8.3f} | "
              f"{bias[j]:+10.3f} {scatter[j]:8.3f}  {unit}")

    print("\nA(Li) apart (dex):")
    rich = np.asarray(test["li_rich"], dtype=bool)
    weak = ~rich & (y_test[:, 3] < 1.0)
    groups = (("Li-rich giants", rich), ("A(Li) < 1 (weak line)", weak), ("the others", ~rich & ~weak))
    print(f"{'':<22} {'n':>5} {'bias':>8} {'scatter':>8} {'ens std':>8}")
    for name, rows in groups:
        if rows.any():
            d = diff[rows, 3]
            print(f"{name:<22} {rows.sum():5d} {d.mean():+8.3f} {d.std():8.3f} {std[rows, 3].mean():8.3f}")
        else:
            print(f"{name:<22} {0:5d}")
    print(f"{'paper Li-rich giants':<22} {li_rich[0]:5d} {li_rich[1]:+8.3f} {li_rich[2]:8.3f}")

    # The thesis' selection on the predictions: with the ensemble's calibrated std as the errors
    # and the catalogue S/N, as in the paper, and on the labels alone.
    table = {"id": np.asarray(test["id"]), "snr": np.asarray(test["snr"])}
    for j, c in enumerate(LABELS):
        table[c], table["e_" + c] = mean[:, j], std[:, j]
    planted = np.asarray(test["id"])[rich]
    print()
    for name, kwargs in (("all cuts (errors: ensemble std)", {}),
                         ("label cuts only", {"min_snr": None, "max_e_teff": None, "max_e_logg": None,
                                              "max_e_feh": None, "max_e_ali": None})):
        found = select_li_rich(table, **kwargs)
        hit = np.isin(found["id"], planted)
        precision = hit.mean() if hit.size else float("nan")
        print(f"select_li_rich, {name}: {hit.size} selected, {hit.sum()} of {planted.size} planted "
              f"Li-rich giants (precision {precision:.2f}, recall {hit.sum() / max(planted.size, 1):.2f})")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
