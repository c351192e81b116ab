"""The generative check on the labels: per edge kind and emission strength, what it flags.

Trains the default chain (giraffe_preprocessor -> TSNESimilarityFilter with its label check ->
CNNLabelRegressor) on mock-survey disk stars at S/N 30-150, then predicts, with
:func:`skstellar.predict_table`, held-out disk stars and edge stars of every kind at
S/N 30-150, with the emission of the ``emission`` kind drawn at three strengths (peak height
in continuum units): weak 0.05-0.15 (partly filled cores), moderate 0.15-0.3 and the mock's
default 0.3-1.5. It prints, per kind, the fraction flagged by the similarity filter's scores
(map, residual, pca), by the label check (``labels_explained`` False) and by either
(``training_like`` False); the in-box disk stars' false flags; and the time of the check.

    python benchmarks/bench_label_check.py                 # 3000 train, 1000 disk, 100 per edge kind
    python benchmarks/bench_label_check.py --quick         # 600 train, 2 members, 5 epochs
"""

import argparse
import os
import time

import joblib
import numpy as np
from astropy.table import Table

from skstellar import predict_table
from skstellar.datasets import make_giraffe_survey
from skstellar.filters import TSNESimilarityFilter
from skstellar.preprocessing import giraffe_preprocessor

LABELS = ("teff", "logg", "feh", "mgfe", "alfe")
STRENGTHS = {"weak": (0.05, 0.15), "moderate": (0.15, 0.3), "strong": (0.3, 1.5)}


def fit_chain(spectra, y, args):
    from sklearn.pipeline import make_pipeline

    from skstellar.models import CNNLabelRegressor

    return make_pipeline(
        giraffe_preprocessor(),
        TSNESimilarityFilter(random_state=0),
        CNNLabelRegressor(n_models=args.n_models, n_keep=args.n_keep, max_epochs=args.max_epochs,
                          label_names=list(LABELS), random_state=0),
    ).fit(spectra[: args.n_train], y[: args.n_train])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-disk", type=int, default=1000)
    parser.add_argument("--n-edge", type=int, default=700, help="edge stars per strength (7 kinds)")
    parser.add_argument("--n-models", type=int, default=3)
    parser.add_argument("--n-keep", type=int, default=2)
    parser.add_argument("--max-epochs", type=int, default=300)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", help="a joblib file: load the fitted chain from it if it exists, else save it there")
    parser.add_argument("--refit-check", action="store_true",
                        help="refit the loaded chain's label check (after a change to the emulator; the network stays)")
    args = parser.parse_args()
    if args.quick:
        args.n_train, args.n_disk, args.n_edge, args.n_models, args.n_keep, args.max_epochs = 600, 200, 140, 2, 2, 5

    spectra, truth = make_giraffe_survey(args.n_train + args.n_disk, population="disk", snr=(30, 150),
                                         random_state=31, cache=True)
    y = np.column_stack([np.asarray(truth[k], float) for k in LABELS])
    t0 = time.perf_counter()
    if args.model and os.path.exists(args.model):
        pipe = joblib.load(args.model)
        print(f"loaded the fitted chain from {args.model}")
        if args.refit_check:
            check = pipe[1].label_check_
            check.fit(y[: args.n_train], pipe[0].transform(spectra[: args.n_train]))
            print(f"refitted the label check: {time.perf_counter() - t0:.0f} s")
    else:
        pipe = fit_chain(spectra, y, args)
        print(f"trained on {args.n_train} disk stars (S/N 30-150): {time.perf_counter() - t0:.0f} s")
        if args.model:
            joblib.dump(pipe, args.model)

    sets = {"disk (in box)": (spectra[args.n_train:], truth[args.n_train:])}
    for name, strength in STRENGTHS.items():
        edge, edge_truth = make_giraffe_survey(args.n_edge, population="edge", snr=(30, 150), random_state=32,
                                               emission_strength=strength, cache=True)
        kinds = np.asarray(edge_truth["edge_kind"])
        if name == "strong":
            for kind in sorted(set(kinds)):
                label = f"emission {name} {strength[0]}-{strength[1]}" if kind == "emission" else kind
                sets[label] = (edge[kinds == kind], edge_truth[kinds == kind])
        else:
            sets[f"emission {name} {strength[0]}-{strength[1]}"] = (edge[kinds == "emission"],
                                                                   edge_truth[kinds == "emission"])

    rows = []
    filt = pipe[1]
    for name, (X, _) in sets.items():
        t0 = time.perf_counter()
        table = predict_table(pipe, X)
        seconds = time.perf_counter() - t0
        by_filter = np.asarray(table["filter_score"]) > 1
        by_check = ~np.asarray(table["labels_explained"])
        either = ~np.asarray(table["training_like"])
        rows.append((name, len(X), 100 * by_filter.mean(), 100 * by_check.mean(), 100 * either.mean(), seconds))
        if name.startswith("emission weak"):
            worst = np.asarray(table["explain_local_wavelength"])[by_check]
            print(f"weak emission: worst window at {np.round(np.sort(worst)[:12], 1).tolist()} ... A")
    out = Table(rows=rows, names=("kind", "n", "filter %", "label check %", "either %", "predict_table s"))
    for column in ("filter %", "label check %", "either %", "predict_table s"):
        out[column].format = ".1f"
    print()
    print("Flagged at S/N 30-150 (filter: map/residual/pca scores; label check: labels_explained False)")
    out.pprint(max_width=-1, max_lines=-1)

    X_disk = pipe[0].transform(sets["disk (in box)"][0])
    labels = pipe[-1].predict(X_disk, return_std=True)
    t0 = time.perf_counter()
    filt.check_labels(X_disk, labels[0], label_errors=labels[1], wavelength=pipe[0][-1].wavelength_)
    seconds = time.perf_counter() - t0
    print(f"\nlabel check alone: {len(X_disk) / seconds:.0f} spectra/s ({len(X_disk)} spectra, 8669 pixels); "
          f"emulator: degree {filt.label_check_.degree}, {filt.label_check_.coefficients_.shape[0]} terms, "
          f"median per-pixel scatter {np.median(filt.label_check_.scatter_):.4f}")


if __name__ == "__main__":
    main()
