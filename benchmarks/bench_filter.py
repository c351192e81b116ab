"""How well and how fast TSNESimilarityFilter flags spectra unlike its training set.

Fits the filter on mock-survey "disk" spectra (S/N >= 30, preprocessed with
giraffe_preprocessor), then judges a test set of disk stars (S/N 10-150) plus "edge" stars
of every kind, and prints:

* per edge kind, the fraction flagged outer (and by which score: map / residual);
* the fraction of in-box disk stars wrongly flagged outer (all, and at S/N >= 30);
* the fraction of "inner" test spectra whose true labels lie outside the training label box;
* the agreement of the batched strategy (batch_size + training_subsample) with one joint map;
* the times; with ``--n-scale N``, the time of one joint map of N spectra (training + new).

Run small on a shared machine:
    python benchmarks/bench_filter.py --n-train 1500 --n-disk 600 --n-edge 350
"""

import argparse
import time

import numpy as np
from astropy.table import vstack
from sklearn.exceptions import NotFittedError

from skstellar.datasets import make_giraffe_survey
from skstellar.filters import TSNESimilarityFilter
from skstellar.preprocessing import giraffe_preprocessor

BOX_LABELS = ("teff", "logg", "feh", "mgfe", "alfe")


def survey(n, population, snr, seed, pre, n_jobs, chunk=2000):
    """Preprocessed spectra (float32) and true labels, synthesised chunk by chunk (bounded memory).

    ``pre`` is fitted on the first chunk it sees (its grids are fixed by its parameters).
    """
    X, labels = [], []
    for i, start in enumerate(range(0, n, chunk)):
        spectra, lab = make_giraffe_survey(min(chunk, n - start), population=population, snr=snr,
                                           random_state=seed * 1000 + i, n_jobs=n_jobs)
        try:
            X.append(pre.transform(spectra))
        except NotFittedError:
            X.append(pre.fit_transform(spectra))
        labels.append(lab)
    return np.vstack(X), vstack(labels)


def fraction(mask):
    return f"{100 * mask.mean():5.1f} % of {mask.size:5d}" if mask.size else "   n/a"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=1500)
    parser.add_argument("--n-disk", type=int, default=600, help="disk test stars (S/N 10-150)")
    parser.add_argument("--n-edge", type=int, default=350, help="edge test stars, split among the 7 kinds")
    parser.add_argument("--n-components", type=int, default=50)
    parser.add_argument("--perplexity", type=float, default=30.0)
    parser.add_argument("--contamination", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=300, help="batch size of the batched strategy")
    parser.add_argument("--training-subsample", type=int, default=750, help="training spectra per batched map")
    parser.add_argument("--n-scale", type=int, default=0, help="time one joint map of this many spectra")
    parser.add_argument("--n-iter", type=int, default=500, help="openTSNE iterations after early exaggeration")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    pre = giraffe_preprocessor(uncovered="continuum")  # a few mock RVs shift a setup edge off the grid
    t0 = time.perf_counter()
    X_train, y_train = survey(args.n_train, "disk", (30.0, 150.0), args.seed + 1, pre, args.n_jobs)
    X_disk, y_disk = survey(args.n_disk, "disk", (10.0, 150.0), args.seed + 2, pre, args.n_jobs)
    X_edge, y_edge = survey(args.n_edge, "edge", (30.0, 150.0), args.seed + 3, pre, args.n_jobs)
    print(f"mock survey + preprocessing: {time.perf_counter() - t0:.1f} s; {X_train.shape[1]} pixels; "
          f"train {len(X_train)}, disk test {len(X_disk)}, edge test {len(X_edge)}")

    params = dict(n_components=args.n_components, perplexity=args.perplexity,
                  contamination=args.contamination, random_state=args.seed, n_jobs=args.n_jobs,
                  tsne_params={"n_iter": args.n_iter})
    filt = TSNESimilarityFilter(**params)
    t0 = time.perf_counter()
    filt.fit(X_train)
    t_fit = time.perf_counter() - t0
    X_test = np.vstack([X_disk, X_edge])
    t0 = time.perf_counter()
    v = filt.embed(X_test)
    t_embed = time.perf_counter() - t0
    print(f"fit ({len(X_train)} spectra: PCA, 5-fold residuals, training map): {t_fit:.1f} s; "
          f"joint map of {len(X_train)} + {len(X_test)}: {t_embed:.1f} s")
    print(f"training outliers (training map): {len(filt.training_outliers())}; thresholds: map "
          f"{filt.map_threshold_:.3f}, residual {filt.residual_threshold_:.5f}")

    n_disk = len(X_disk)
    outer = ~v.training_like
    kinds = np.asarray(y_edge["edge_kind"]).astype(str)
    print("\nflagged outer, per edge kind (any score | map | residual):")
    for kind in sorted(set(kinds)):
        sel = n_disk + np.flatnonzero(kinds == kind)
        print(f"  {kind:11s} {fraction(outer[sel])} | map {100 * v.map_outer[sel].mean():5.1f} % "
              f"| residual {100 * v.residual_outer[sel].mean():5.1f} %")

    def in_box(labels):
        ok = np.ones(len(labels), bool)
        for name in BOX_LABELS:
            lo, hi = np.min(y_train[name]), np.max(y_train[name])
            ok &= (np.asarray(labels[name]) >= lo) & (np.asarray(labels[name]) <= hi)
        return ok

    disk_in = in_box(y_disk)
    snr_disk = np.asarray(y_disk["snr"])
    print("\nin-box disk stars wrongly flagged outer:")
    print(f"  all S/N     {fraction(outer[:n_disk][disk_in])}")
    print(f"  S/N >= 30   {fraction(outer[:n_disk][disk_in & (snr_disk >= 30)])}")
    print(f"  S/N < 30    {fraction(outer[:n_disk][disk_in & (snr_disk < 30)])}  (training has S/N >= 30)")
    print(f"  by map only {fraction(v.map_outer[:n_disk][disk_in & (snr_disk >= 30)])}  (S/N >= 30)")

    test_in = np.concatenate([disk_in, in_box(y_edge)])
    snr = np.concatenate([snr_disk, np.asarray(y_edge["snr"])])
    inner = v.training_like
    print(f"\ninner test spectra with true labels outside the training box ({', '.join(BOX_LABELS)}):")
    print(f"  all S/N     {fraction(~test_in[inner])}  (thesis: 12 %)")
    print(f"  S/N >= 30   {fraction(~test_in[inner & (snr >= 30)])}  (thesis: < 10 %)")
    print(f"  of which edge stars {int((~test_in & inner)[n_disk:].sum())}, "
          f"disk stars {int((~test_in & inner)[:n_disk].sum())}")
    blind = np.concatenate([np.zeros(n_disk, bool), np.isin(kinds, ["extreme_al", "high_logg"])])
    print(f"  without the kinds no shape-based filter sees (extreme_al, high_logg): "
          f"{fraction(~test_in[inner & ~blind])}")

    batched = TSNESimilarityFilter(**params, batch_size=args.batch_size, training_subsample=args.training_subsample)
    t0 = time.perf_counter()
    batched.fit(X_train)
    vb = batched.embed(X_test)
    t_batched = time.perf_counter() - t0
    agree = np.mean(vb.training_like == v.training_like)
    print(f"\nbatched strategy (batch_size {args.batch_size}, training_subsample {args.training_subsample}, "
          f"{vb.batch.max() + 1} maps): fit + embed {t_batched:.1f} s")
    print(f"  same verdict as the joint map: {100 * agree:.1f} % of {len(X_test)} spectra")
    print(f"  disk in-box S/N >= 30 false flags {fraction((~vb.training_like)[:n_disk][disk_in & (snr_disk >= 30)])}")
    for kind in sorted(set(kinds)):
        sel = n_disk + np.flatnonzero(kinds == kind)
        print(f"  {kind:11s} flagged {fraction(~vb.training_like[sel])}  (joint map {100 * outer[sel].mean():5.1f} %)")

    if args.n_scale:
        n_train = args.n_scale * 3 // 7
        X_big, _ = survey(args.n_scale, "disk", (30.0, 150.0), args.seed + 4, pre, args.n_jobs)
        big = TSNESimilarityFilter(**params)
        t0 = time.perf_counter()
        big.fit(X_big[:n_train])
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        big.embed(X_big[n_train:])
        t_embed = time.perf_counter() - t0
        print(f"\nscale: fit on {n_train} spectra {t_fit:.1f} s; one joint map of {args.n_scale} spectra "
              f"({n_train} training + {args.n_scale - n_train} new) {t_embed:.1f} s with n_jobs={args.n_jobs}")


if __name__ == "__main__":
    main()
