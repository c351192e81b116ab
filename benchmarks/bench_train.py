"""Training speed of CNNLabelRegressor: seconds per epoch, the ridge solve, peak memory.

Seconds per epoch are the wall times Keras' epochs took inside one fit (``history_[0]
["epoch_seconds"]``, validation included); the first epoch, which also traces the training
step, is reported apart. The ridge solve of the default's linear skip path is timed apart
(``fit_ridge_skip`` on the same split, before TensorFlow is loaded), on all training stars
(one member) and on a bootstrap resample (a member of an ensemble), with the peak RSS it
reached. The 10-member wall time printed after that is an *estimate*: the measured epoch time
times ``--assume-epochs`` per member, plus a bootstrap ridge solve per member. ``--ensemble``
trains a real ensemble instead. Spectra are synthetic line spectra of the width of the
preprocessed GIRAFFE grid (``--source synthetic``, the default: flux linear in the labels, so
the ridge part of the default recipe fits them almost exactly and early stopping comes soon),
or the mock survey after the GIRAFFE chain (``--source survey``: the realistic case for the
number of epochs early stopping takes).

    python benchmarks/bench_train.py                                  # 8 800 x 8669, default recipe
    python benchmarks/bench_train.py --n 2000 --epochs 2 --preset thesis
    python benchmarks/bench_train.py --n 2000 --ensemble --n-models 2 --max-epochs 20
    python benchmarks/bench_train.py --source survey --epochs 1 --ensemble --n-models 1 --n-keep 1
"""

import argparse
import math
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from skstellar.models import PRESETS, CNNLabelRegressor  # noqa: E402
from skstellar.models._linear import bootstrap_counts, fit_ridge_skip  # noqa: E402

from _results import add_json_argument, write_json  # noqa: E402


def synthetic(n, p, rng):
    labels = rng.uniform(-1, 1, size=(n, 5))
    centres = rng.uniform(0, p, size=(5, 40))
    pixels = np.arange(p)
    profiles = np.zeros((5, p), dtype=np.float32)
    for k in range(5):
        for c in centres[k]:
            profiles[k] += np.exp(-0.5 * ((pixels - c) / 3.0) ** 2)
    flux = 1 - 0.1 * (labels + 1.5).astype(np.float32) @ profiles
    flux += rng.normal(0, 0.01, size=flux.shape).astype(np.float32)
    return flux.astype(np.float32), labels


LABELS = ("teff", "logg", "mgfe", "alfe", "feh")


def survey(n):
    """The mock survey's spectra after the GIRAFFE chain, its five labels and the stars' S/N."""
    from skstellar.datasets import make_giraffe_survey
    from skstellar.preprocessing import giraffe_preprocessor

    spectra, labels = make_giraffe_survey(n, random_state=0)
    X = giraffe_preprocessor().fit_transform(spectra)
    y = np.column_stack([np.asarray(labels[k], dtype=float) for k in LABELS])
    return X, y, np.asarray(labels["snr"], dtype=float)


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def time_ridge(X, y, validation_fraction=0.4):
    """The ridge solve of the estimator's default split, on all training stars and on a resample."""
    n_val = math.ceil(validation_fraction * len(X))
    order = np.random.RandomState(0).permutation(len(X))
    train, val = order[n_val:], order[:n_val]
    X_train, X_val = 1 - X[train], 1 - X[val]  # input_scaling="center"
    mean, std = y[train].mean(axis=0), y[train].std(axis=0)
    y_train, y_val = (y[train] - mean) / std, (y[val] - mean) / std
    out = {}
    for name, weight in (("all", None), ("bootstrap", bootstrap_counts(len(train), 0))):
        t = time.perf_counter()
        fit_ridge_skip(X_train, y_train, X_val, y_val, sample_weight=weight)
        out[name] = time.perf_counter() - t
    return out, len(train), n_val


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8800)
    parser.add_argument("--pixels", type=int, default=8669)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs after the first")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--assume-epochs", type=int, default=70,
                        help="epochs per member with early stopping, for the ensemble estimate")
    parser.add_argument("--ensemble", action="store_true", help="also train a full ensemble")
    parser.add_argument("--n-models", type=int, default=10)
    parser.add_argument("--n-keep", type=int, default=8)
    parser.add_argument("--max-epochs", type=int, default=300)
    parser.add_argument("--patience", type=int, default=None, help="early-stopping patience (default: the preset's)")
    parser.add_argument("--n-jobs", type=int, default=None, help="members trained in parallel processes")
    parser.add_argument("--source", choices=("synthetic", "survey"), default="synthetic")
    parser.add_argument("--n-test", type=int, default=2000,
                        help="held-out mock-survey stars on which --ensemble reports its accuracy (--source survey)")
    add_json_argument(parser)
    args = parser.parse_args()

    if args.source == "synthetic":
        X, y = synthetic(args.n, args.pixels, np.random.default_rng(0))
    else:
        X, y, snr = survey(args.n + args.n_test)
        X, y, X_test, y_test, snr_test = X[:args.n], y[:args.n], X[args.n:], y[args.n:], snr[args.n:]
    print(f"{args.n} x {args.pixels} float32 spectra: peak RSS {peak_rss_gb():.2f} GB")
    ridge = None
    if PRESETS[args.preset]["linear_skip"] == "ridge":
        ridge, n_train, n_val = time_ridge(X, y)
        print(f"ridge solve ({n_train} train / {n_val} val): all stars {ridge['all']:.1f} s, bootstrap resample "
              f"{ridge['bootstrap']:.1f} s; peak RSS so far (data + ridge, no TensorFlow) {peak_rss_gb():.2f} GB")

    t = time.perf_counter()
    est = CNNLabelRegressor(max_epochs=1 + args.epochs, patience=1000, preset=args.preset,
                            batch_size=args.batch_size,
                            learning_rate=args.learning_rate, random_state=0, n_models=1, n_keep=1).fit(X, y)
    wall = time.perf_counter() - t
    seconds = est.history_[0]["epoch_seconds"]
    per_epoch = seconds[1:].mean()
    print(f"preset {args.preset!r}, batch {est.recipe_['batch_size']}: {per_epoch:.2f} s/epoch "
          f"(epochs {np.round(seconds, 2).tolist()}; the first traces the step), fit of {1 + args.epochs} epochs "
          f"{wall:.1f} s wall, peak RSS {peak_rss_gb():.2f} GB, val loss {est.val_losses_[0]:.4f}")
    figures = {"n_spectra": args.n, "pixels": args.pixels, "source": args.source, "preset": args.preset,
               "batch_size": est.recipe_["batch_size"], "s_per_epoch": per_epoch, "first_epoch_s": seconds[0],
               "peak_rss_mb": peak_rss_gb() * 1e3}
    if ridge:
        figures.update(ridge_all_s=ridge["all"], ridge_bootstrap_s=ridge["bootstrap"])
    member = args.assume_epochs * per_epoch + (seconds[0] - per_epoch) + (ridge["bootstrap"] if ridge else 0)
    print(f"ESTIMATE (not measured): a {args.n_models}-member ensemble at {args.assume_epochs} epochs per member "
          f"~ {args.n_models * member / 60:.0f} min on this machine ({member / 60:.1f} min per member)")
    if args.ensemble:
        t = time.perf_counter()
        est = CNNLabelRegressor(n_models=args.n_models, n_keep=args.n_keep, max_epochs=args.max_epochs,
                                **({} if args.patience is None else {"patience": args.patience}),
                                n_jobs=args.n_jobs, preset=args.preset,
                                batch_size=args.batch_size, learning_rate=args.learning_rate, random_state=0,
                                verbose=1).fit(X, y)
        figures.update(ensemble_members=args.n_models, ensemble_kept=args.n_keep,
                       ensemble_wall_s=time.perf_counter() - t)
        print(f"ensemble of {args.n_models} (keep {args.n_keep}): {time.perf_counter() - t:.0f} s wall, epochs "
              f"{[len(h['val_loss']) for h in est.history_]}, best val losses {np.round(est.val_losses_, 4).tolist()}, "
              f"seconds per member {[round(sum(h['epoch_seconds'])) for h in est.history_]}")
        if args.source == "survey":
            good = snr_test >= 30
            mean, std = est.predict(X_test[good], return_std=True)
            error = mean - y_test[good]
            print(f"held out, S/N >= 30 ({good.sum()} stars):")
            for k, name in enumerate(LABELS):
                within = np.mean(np.abs(error[:, k]) <= std[:, k])
                print(f"  {name:>5}: bias {error[:, k].mean():8.4f}  scatter {error[:, k].std():8.4f}  "
                      f"mean std {std[:, k].mean():8.4f}  within 1 std {within:.0%}")
                figures.update({f"bias_{name}": error[:, k].mean(), f"scatter_{name}": error[:, k].std(),
                                f"mean_std_{name}": std[:, k].mean(), f"within_1std_{name}": within})
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
