"""Command line of skstellar: ``python -m skstellar demo``.

The demo is the whole method on the built-in mock Gaia-ESO survey: a training set of
"disk" stars (S/N >= 30) and a test set with stars outside the training box, the
GIRAFFE preprocessing chain, the t-SNE similarity filter and a CNN ensemble, then a
prediction table written to disk and a summary of the accuracy printed.
"""

import argparse
import os
import sys
import time

LABELS = ("teff", "logg", "feh", "mgfe", "alfe")
UNITS = {"teff": "K", "logg": "dex", "feh": "dex", "mgfe": "dex", "alfe": "dex"}


def _parser():
    parser = argparse.ArgumentParser(prog="python -m skstellar", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train, flag and predict on the built-in mock survey")
    demo.add_argument("--n-train", type=int, default=1200, help="training stars (default 1200)")
    demo.add_argument("--n-test", type=int, default=400, help="test stars, 10%% of them unlike the training set")
    demo.add_argument("--n-models", type=int, default=4, help="ensemble members (the paper: 10)")
    demo.add_argument("--n-keep", type=int, default=3, help="members kept (the paper: 8)")
    demo.add_argument("--max-epochs", type=int, default=60)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="predictions.ecsv", help="prediction table (.ecsv, .fits or .csv)")
    demo.add_argument("--model", default=None, help="also save the fitted pipeline here with joblib")
    return parser


def _summary(table, truth, label):
    import numpy as np

    lines = []
    for name, rows in (("training-like", table["training_like"]), ("flagged", ~table["training_like"])):
        rows = np.asarray(rows)
        if rows.sum() == 0:
            continue
        d = np.asarray(table[label][rows]) - np.asarray(truth[label][rows])
        e = np.asarray(table[f"e_{label}"][rows])
        lines.append(
            f"  {label:5s} {name:13s} n={rows.sum():4d}  bias {np.mean(d):+8.3f}  scatter {np.std(d):7.3f}"
            f"  mean ensemble std {np.mean(e):6.3f} {UNITS[label]}"
        )
    return "\n".join(lines)


def check_demo_args(args):
    """Refuse the demo's arguments before any expensive work; the ValueError says which.

    Synthesis and training take minutes: a perplexity the training set cannot carry or an
    output path that cannot be written must fail at once, not after them.
    """
    from pathlib import Path

    from skstellar.filters import TSNESimilarityFilter
    from skstellar.io._write import _format

    for name in ("n_train", "n_test", "n_models", "n_keep", "max_epochs"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1; got {getattr(args, name)}.")
    if args.n_keep > args.n_models:
        raise ValueError(f"--n-keep ({args.n_keep}) cannot exceed --n-models ({args.n_models}).")
    perplexity = TSNESimilarityFilter().perplexity
    needed = int(3 * perplexity) + 1
    if args.n_train < needed:
        raise ValueError(
            f"--n-train {args.n_train} is too few for the similarity filter (perplexity "
            f"{perplexity} needs at least {needed} training stars)."
        )
    for option, path in (("--out", args.out), ("--model", args.model)):
        if path is None:
            continue
        path = Path(path)
        if option == "--out":
            _format(path, None)  # an unknown suffix is an error naming it
        folder = path.parent
        if not folder.is_dir():
            raise ValueError(f"{option} {path}: the folder {folder} does not exist.")
        if not os.access(folder, os.W_OK):
            raise ValueError(f"{option} {path}: the folder {folder} is not writable.")
        if path.is_dir():
            raise ValueError(f"{option} {path} is a folder; give a file name.")


def demo(args):
    import joblib
    import numpy as np
    from sklearn.pipeline import Pipeline

    from skstellar import predict_table
    from skstellar.datasets import make_giraffe_survey
    from skstellar.filters import TSNESimilarityFilter
    from skstellar.io import write_predictions
    from skstellar.models import CNNLabelRegressor
    from skstellar.preprocessing import giraffe_preprocessor

    t0 = time.perf_counter()
    train, y_train = make_giraffe_survey(args.n_train, population="disk", snr=(30, 150), random_state=args.seed)
    test, y_test = make_giraffe_survey(args.n_test, population="mixed", snr=(30, 150), random_state=args.seed + 1)
    print(f"mock survey: {len(train)} training + {len(test)} test stars ({time.perf_counter() - t0:.1f} s)")

    pipe = Pipeline(
        list(giraffe_preprocessor().steps)
        + [
            ("similarity", TSNESimilarityFilter(random_state=args.seed)),
            (
                "cnn",
                CNNLabelRegressor(
                    n_models=args.n_models,
                    n_keep=args.n_keep,
                    max_epochs=args.max_epochs,
                    random_state=args.seed,
                    label_names=list(LABELS),
                    verbose=1,
                ),
            ),
        ]
    )
    y = np.column_stack([np.asarray(y_train[name], dtype=float) for name in LABELS])
    t0 = time.perf_counter()
    pipe.fit(train, y)
    print(f"trained {args.n_models} CNNs, kept {args.n_keep} ({time.perf_counter() - t0:.1f} s)")

    t0 = time.perf_counter()
    table = predict_table(pipe, test)
    print(f"predicted and flagged {len(table)} spectra ({time.perf_counter() - t0:.1f} s); "
          f"{int((~table['training_like']).sum())} flagged as unlike the training set")
    truth = y_test
    for label in LABELS:
        print(_summary(table, truth, label))
    write_predictions(table, args.out, overwrite=True)
    print(f"wrote {args.out}")
    if args.model:
        joblib.dump(pipe, args.model)
        print(f"saved the fitted pipeline to {args.model}")
    return 0


def main(argv=None):
    # TensorFlow's C++ start-up chatter (oneDNN notes, "no CUDA driver") is noise for a
    # command-line user; a user who wants it sets the variable.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        try:
            check_demo_args(args)
        except ValueError as exc:
            parser.error(str(exc))  # exit status 2 and the message, not a traceback
    return {"demo": demo}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
