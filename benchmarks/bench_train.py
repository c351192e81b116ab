"""Training speed of CNNLabelRegressor: seconds per epoch and the wall time of an ensemble.

Seconds per epoch come from fits of 1 and 1 + E epochs (the difference excludes tracing and
set-up). The ensemble run trains ``--n-models`` members with early stopping and prints the
wall time, epochs per member and validation losses. Spectra are from the mock survey when
``--survey`` is given (slow to draw), otherwise synthetic line spectra of the same width.

    python benchmarks/bench_train.py                                  # 8 800 x 8669, default recipe
    python benchmarks/bench_train.py --n 2000 --epochs 2 --preset thesis
    python benchmarks/bench_train.py --n 2000 --ensemble --n-models 2 --max-epochs 20
"""

import argparse
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from skstellar.models import CNNLabelRegressor  # noqa: E402


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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8800)
    parser.add_argument("--pixels", type=int, default=8669)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs for s/epoch")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--ensemble", action="store_true", help="also train a full ensemble")
    parser.add_argument("--n-models", type=int, default=10)
    parser.add_argument("--n-keep", type=int, default=8)
    parser.add_argument("--max-epochs", type=int, default=300)
    args = parser.parse_args()

    X, y = synthetic(args.n, args.pixels, np.random.default_rng(0))
    common = dict(preset=args.preset, batch_size=args.batch_size, random_state=0, n_models=1, n_keep=1)
    times = {}
    for epochs in (1, 1 + args.epochs):
        t = time.perf_counter()
        est = CNNLabelRegressor(max_epochs=epochs, patience=1000, **common).fit(X, y)
        times[epochs] = time.perf_counter() - t
    per_epoch = (times[1 + args.epochs] - times[1]) / args.epochs
    n_train = len(X) - int(np.ceil(0.4 * len(X)))
    print(f"{args.n} x {args.pixels} ({n_train} train / {len(X) - n_train} val), preset {args.preset!r}, "
          f"batch {est.recipe_['batch_size']}: {per_epoch:.2f} s/epoch (first epoch incl. set-up {times[1]:.1f} s), "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB, "
          f"val loss after {1 + args.epochs} epochs {est.val_losses_[0]:.4f}")
    if args.ensemble:
        t = time.perf_counter()
        est = CNNLabelRegressor(n_models=args.n_models, n_keep=args.n_keep, max_epochs=args.max_epochs,
                                preset=args.preset, batch_size=args.batch_size, random_state=0).fit(X, y)
        print(f"ensemble of {args.n_models} (keep {args.n_keep}): {time.perf_counter() - t:.0f} s wall, epochs "
              f"{[len(h['val_loss']) for h in est.history_]}, best val losses {np.round(est.val_losses_, 4).tolist()}")


if __name__ == "__main__":
    main()
