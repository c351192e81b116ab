"""Speed and peak memory of skstellar.explain.saliency, and the line attribution of the default recipe.

Speed (default): spectra x labels per second per member for Table-2 networks (the default recipe,
linear ridge skip included) on n random spectra of p pixels (target on 2 cores: >= 300 spectra
x 5 labels per second per member for 8669 pixels). The weights are those of a one-epoch fit:
speed does not depend on them.

    python benchmarks/bench_saliency.py                        # 2000 x 8669, 5 labels, 1 member
    python benchmarks/bench_saliency.py --models 2 --batch 64  # 2 members, smaller batches
    python benchmarks/bench_saliency.py --quick                # 200 spectra: checks that it runs

Attribution (--attribution): trains the default recipe (Table 2 with the ridge skip) on the mock
survey's disk population through the GIRAFFE preprocessing, and prints, for teff, logg, feh,
mgfe and alfe, the lines of the default line table that carry the largest shares of the saliency
over held-out stars, with the correlation of the maps and the borrowed shares.

    python benchmarks/bench_saliency.py --attribution --n-train 2000 --max-epochs 30
    python benchmarks/bench_saliency.py --attribution --quick

Figures: docs/explain.rst.
"""

import argparse
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

LABELS = ["teff", "logg", "feh", "mgfe", "alfe"]


def peak_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def speed(args):
    from skstellar.explain import saliency
    from skstellar.models import CNNLabelRegressor

    rng = np.random.default_rng(0)
    X = (1 - 0.3 * rng.random((args.n, args.pixels), dtype=np.float32)).astype(np.float32)
    y = rng.normal(size=(args.n, 5))
    est = CNNLabelRegressor(max_epochs=1, n_models=args.models, n_keep=args.models, random_state=0,
                            label_names=LABELS).fit(X[:64], y[:64])
    for per in ("mean", "member"):
        # The first call on a model traces its graph (cached per model, members and labels); the
        # second is what every later call costs.
        for call in ("first call", "again"):
            t, cpu = time.perf_counter(), time.process_time()
            smap = saliency(est, X, per=per, batch_size=args.batch)
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu
            rate = args.n * args.models / wall
            print(f"per={per!r} ({call}): {args.n} spectra x {len(smap.labels)} labels x {args.models} member(s) of "
                  f"{args.pixels} pixels in {wall:.2f} s (CPU {cpu:.1f} s): {rate:.0f} spectra x 5 labels / s per "
                  f"member (target >= 300); peak RSS {peak_gb():.2f} GB")


def attribution(args):
    from sklearn.pipeline import Pipeline

    from skstellar.datasets import make_giraffe_survey
    from skstellar.explain import line_attribution, saliency, saliency_correlation
    from skstellar.models import CNNLabelRegressor
    from skstellar.preprocessing import giraffe_preprocessor

    t0 = time.perf_counter()
    spectra, labels = make_giraffe_survey(args.n_train + args.n_test, population="disk", snr=(30, 150),
                                          random_state=args.seed)
    y = np.column_stack([labels[c] for c in LABELS])
    train, test = slice(0, args.n_train), slice(args.n_train, None)
    cnn = CNNLabelRegressor(max_epochs=args.max_epochs, n_models=args.models, n_keep=args.models,
                            patience=max(args.max_epochs // 4, 3), random_state=args.seed, label_names=LABELS)
    pipe = Pipeline(giraffe_preprocessor().steps + [("cnn", cnn)])
    pipe.fit(spectra[train], y[train])
    t1 = time.perf_counter()
    pred = pipe.predict(spectra[test])
    scatter = np.std(pred - y[test], axis=0)
    print(f"default recipe, {args.models} member(s), {args.n_train} disk stars (S/N 30-150), "
          f"{len(cnn.history_[0]['loss'])} epochs: fit {t1 - t0:.0f} s; held-out scatter "
          + ", ".join(f"{c} {s:.3g}" for c, s in zip(LABELS, scatter)))
    smap = saliency(pipe, spectra[test])
    print(f"saliency of {args.n_test} held-out stars: {time.perf_counter() - t1:.1f} s")
    ranked = line_attribution(smap)
    for label in LABELS:
        rows = ranked[ranked["label"] == label][:args.top]
        print(f"[{label}] " + "; ".join(f"{100 * r['share']:.1f} % on {r['species']} {r['wavelength']:.2f} "
                                        f"({r['sign']})" for r in rows))
    table = saliency_correlation(smap)
    for column in (*LABELS, "on_lines", "own", "borrowed"):
        table[column].format = ".2f"
    print(table)
    if args.figure:
        from skstellar.explain import plot_saliency

        plot_saliency(smap, labels=["mgfe", "alfe"]).savefig(args.figure, dpi=110)
        print(f"figure written to {args.figure}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="spectra (speed)")
    parser.add_argument("--pixels", type=int, default=8669)
    parser.add_argument("--models", type=int, default=1, help="kept ensemble members")
    parser.add_argument("--batch", type=int, default=128, help="saliency batch_size")
    parser.add_argument("--quick", action="store_true", help="a small size that runs in about a minute")
    parser.add_argument("--attribution", action="store_true", help="line attribution of the default recipe")
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=300)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--top", type=int, default=5, help="lines printed per label")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", default=None, help="write plot_saliency of mgfe and alfe to this PNG")
    args = parser.parse_args()
    if args.quick:
        args.n, args.n_train, args.n_test, args.max_epochs = 200, 300, 100, 2
    attribution(args) if args.attribution else speed(args)


if __name__ == "__main__":
    main()
