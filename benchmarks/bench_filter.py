"""How well and how fast TSNESimilarityFilter flags spectra unlike its training set.

Fits the filter on mock-survey "disk" spectra (S/N >= 30, preprocessed with
giraffe_preprocessor), then judges a test set of disk stars (S/N 10-150) plus "edge" stars
of every kind, and prints:

* per edge kind, the fraction flagged outer (and by which score: map / residual / pca);
* for the Teff and [Fe/H] exits it misses, how far beyond the training label box they lie
  and their reduced chi^2 to the nearest training spectrum, ranked among in-box disk stars
  (a missed star as close to a training spectrum as in-box stars are is indistinguishable
  from the training set at its S/N);
* the fraction of in-box disk stars wrongly flagged outer (all, and at S/N >= 30);
* the fraction of "inner" test spectra whose true labels lie outside the training label box
  (as drawn, and weighted to a survey of 10 % edge stars);
* the agreement of the batched strategy (batch_size + training_subsample) with one joint map;
* the times; with ``--n-scale N``, the time of one joint map of N spectra (training + new).

Measured on 2 cores, 25 November 2026 (docs/filters.rst has the full figures)::

    python benchmarks/bench_filter.py      # 1500 training, 600 disk + 1400 edge test stars
    # flagged: bad_norm, emission, hot, metal_poor 100 %; metal_rich 98.4 %; high_logg 53.9 %;
    # extreme_al 10.5 %; in-box disk stars flagged 0.6 % at S/N >= 30 (0.7 % at all S/N);
    # fit 7.3 s, joint map of 1500 + 2000 spectra 7.5 s; batched strategy agrees on 96.8 %.
    python benchmarks/bench_filter.py --n-scale 35000
    # + fit on 15 000 spectra 50.8 s; one joint map of 35 000 spectra 34.6 s (n_jobs=-1, 2 cores)
    python benchmarks/bench_filter.py --n-train 600 --n-disk 200 --n-edge 140   # small, ~1 min
"""

import argparse
import time

import numpy as np
from astropy.table import vstack
from scipy.spatial import cKDTree
from sklearn.exceptions import NotFittedError

from skstellar.datasets import make_giraffe_survey
from skstellar.filters import TSNESimilarityFilter
from skstellar.filters._scores import noise_level
from skstellar.preprocessing import giraffe_preprocessor

from _results import add_json_argument, peak_rss_mb, write_json

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


def chi2_to_nearest_training(X, X_train, coords, train_coords):
    """Reduced chi^2 between each spectrum and its nearest training spectrum (nearest in PCA space).

    The noise of both comes from DER_SNR: about 1 when the two differ by their noise alone.
    """
    nearest = cKDTree(train_coords).query(coords, k=1)[1]
    noise2 = noise_level(X, 1e-6) ** 2 + noise_level(X_train[nearest], 1e-6) ** 2
    return np.mean(np.square(X - X_train[nearest], dtype=np.float64), axis=1) / noise2


def fraction(mask):
    return f"{100 * mask.mean():5.1f} % of {mask.size:5d}" if mask.size else "   n/a"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=1500)
    parser.add_argument("--n-disk", type=int, default=600, help="disk test stars (S/N 10-150)")
    parser.add_argument("--n-edge", type=int, default=1400, help="edge test stars, split among the 7 kinds")
    parser.add_argument("--n-components", type=int, default=50)
    parser.add_argument("--perplexity", type=float, default=30.0)
    parser.add_argument("--contamination", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=300, help="batch size of the batched strategy")
    parser.add_argument("--training-subsample", type=int, default=750, help="training spectra per batched map")
    parser.add_argument("--n-scale", type=int, default=0, help="time one joint map of this many spectra")
    parser.add_argument("--n-iter", type=int, default=None,
                        help="openTSNE iterations after early exaggeration (default: the filter's, 250)")
    parser.add_argument("--n-jobs", type=int, default=-1, help="threads (the filter's default, -1: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    add_json_argument(parser)
    args = parser.parse_args()

    pre = giraffe_preprocessor()  # a few mock RVs shift a setup edge off the grid
    t0 = time.perf_counter()
    X_train, y_train = survey(args.n_train, "disk", (30.0, 150.0), args.seed + 1, pre, args.n_jobs)
    X_disk, y_disk = survey(args.n_disk, "disk", (10.0, 150.0), args.seed + 2, pre, args.n_jobs)
    X_edge, y_edge = survey(args.n_edge, "edge", (30.0, 150.0), args.seed + 3, pre, args.n_jobs)
    print(f"mock survey + preprocessing: {time.perf_counter() - t0:.1f} s; {X_train.shape[1]} pixels; "
          f"train {len(X_train)}, disk test {len(X_disk)}, edge test {len(X_edge)}")

    params = dict(n_components=args.n_components, perplexity=args.perplexity,
                  contamination=args.contamination, random_state=args.seed, n_jobs=args.n_jobs,
                  tsne_params=None if args.n_iter is None else {"n_iter": args.n_iter})
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

    def in_box(labels):
        ok = np.ones(len(labels), bool)
        for name in BOX_LABELS:
            lo, hi = np.min(y_train[name]), np.max(y_train[name])
            ok &= (np.asarray(labels[name]) >= lo) & (np.asarray(labels[name]) <= hi)
        return ok

    n_disk = len(X_disk)
    outer = ~v.training_like
    figures = {"n_train": len(X_train), "n_test": len(X_test), "fit_s": t_fit, "embed_s": t_embed}
    coords = filt.pca_.transform(X_test)
    disk_ref = np.flatnonzero(in_box(y_disk) & (np.asarray(y_disk["snr"]) >= 30))
    disk_chi2 = chi2_to_nearest_training(X_test[disk_ref], X_train, coords[disk_ref], filt.training_coordinates_)
    kinds = np.asarray(y_edge["edge_kind"]).astype(str)
    print(f"\nflagged outer, per edge kind (any score | map | residual | pca, {filt.n_signal_components_} "
          "whitened components):")
    for kind in sorted(set(kinds)):
        sel = n_disk + np.flatnonzero(kinds == kind)
        figures[f"flagged_pct_{kind}"] = 100 * outer[sel].mean()
        print(f"  {kind:11s} {fraction(outer[sel])} | map {100 * v.map_outer[sel].mean():5.1f} % "
              f"| residual {100 * v.residual_outer[sel].mean():5.1f} % | pca {100 * v.pca_outer[sel].mean():5.1f} %")
    # How far beyond the training box the missed Teff / [Fe/H] exits lie (a star just past the
    # edge may be as training-like as its neighbours inside).
    for kind, label, side in (("hot", "teff", "max"), ("metal_rich", "feh", "max"), ("metal_poor", "feh", "min")):
        sel = np.flatnonzero(kinds == kind)
        edge = getattr(np, side)(y_train[label])
        beyond = np.abs(np.asarray(y_edge[label])[sel] - edge)
        missed = ~outer[n_disk + sel]
        if missed.any():
            print(f"  missed {kind}: {missed.sum()}, {label} beyond the training box by "
                  f"{np.min(beyond[missed]):.3g}-{np.max(beyond[missed]):.3g} (all of the kind: "
                  f"{np.min(beyond):.3g}-{np.max(beyond):.3g})")
            # Are the missed ones farther from every training spectrum than training-like stars
            # are? Reduced chi^2 to the nearest training spectrum, against in-box disk stars.
            missed_rows = n_disk + sel[missed]
            chi2 = chi2_to_nearest_training(X_test[missed_rows], X_train, coords[missed_rows],
                                            filt.training_coordinates_)
            rank = [100 * np.mean(disk_chi2 < c) for c in chi2]
            caught_rows = n_disk + sel[~missed]
            caught = chi2_to_nearest_training(X_test[caught_rows], X_train, coords[caught_rows],
                                              filt.training_coordinates_)
            print(f"    their reduced chi^2 to the nearest training spectrum: "
                  f"{', '.join(f'{c:.2f}' for c in chi2)} = percentiles {', '.join(f'{r:.0f}' for r in rank)} "
                  f"of in-box disk stars at S/N >= 30 (median {np.median(disk_chi2):.2f}; "
                  f"flagged {kind}: median {np.median(caught):.2f})")

    disk_in = in_box(y_disk)
    snr_disk = np.asarray(y_disk["snr"])
    print("\nin-box disk stars wrongly flagged outer:")
    print(f"  all S/N     {fraction(outer[:n_disk][disk_in])}")
    print(f"  S/N >= 30   {fraction(outer[:n_disk][disk_in & (snr_disk >= 30)])}")
    print(f"  S/N < 30    {fraction(outer[:n_disk][disk_in & (snr_disk < 30)])}  (training has S/N >= 30)")
    print(f"  by map only {fraction(v.map_outer[:n_disk][disk_in & (snr_disk >= 30)])}  (S/N >= 30)")
    figures["false_flags_pct_snr30"] = 100 * outer[:n_disk][disk_in & (snr_disk >= 30)].mean()
    figures["false_flags_pct_all"] = 100 * outer[:n_disk][disk_in].mean()

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
    # The test set holds far more edge stars than a survey: weigh them to the 10 % of
    # make_giraffe_survey(population="mixed").
    weight = np.where(np.arange(len(X_test)) < n_disk, 0.9 / n_disk, 0.1 / max(len(X_edge), 1))
    for name, sel in (("all S/N", inner), ("S/N >= 30", inner & (snr >= 30))):
        share = np.sum(weight[sel] * ~test_in[sel]) / np.sum(weight[sel])
        print(f"  weighted to a survey of 10 % edge stars, {name}: {100 * share:.1f} %")
        figures[f"inner_outside_box_pct_{'all' if name == 'all S/N' else 'snr30'}"] = 100 * share

    batched = TSNESimilarityFilter(**params, batch_size=args.batch_size, training_subsample=args.training_subsample)
    t0 = time.perf_counter()
    batched.fit(X_train)
    vb = batched.embed(X_test)
    t_batched = time.perf_counter() - t0
    agree = np.mean(vb.training_like == v.training_like)
    print(f"\nbatched strategy (batch_size {args.batch_size}, training_subsample {args.training_subsample}, "
          f"{vb.batch.max() + 1} maps): fit + embed {t_batched:.1f} s")
    print(f"  same verdict as the joint map: {100 * agree:.1f} % of {len(X_test)} spectra")
    figures["batched_agreement_pct"] = 100 * agree
    print(f"  disk in-box S/N >= 30 false flags {fraction((~vb.training_like)[:n_disk][disk_in & (snr_disk >= 30)])}")
    for kind in sorted(set(kinds)):
        sel = n_disk + np.flatnonzero(kinds == kind)
        print(f"  {kind:11s} flagged {fraction(~vb.training_like[sel])}  (joint map {100 * outer[sel].mean():5.1f} %)")

    if args.n_scale:
        # One map of n_scale spectra: 3/7 training, the rest new disk stars plus the edge test stars.
        n_train = args.n_scale * 3 // 7
        n_new_disk = args.n_scale - n_train - len(X_edge)
        X_big, _ = survey(n_train + n_new_disk, "disk", (30.0, 150.0), args.seed + 4, pre, args.n_jobs)
        X_new = np.vstack([X_big[n_train:], X_edge])
        big = TSNESimilarityFilter(**params)
        t0 = time.perf_counter()
        big.fit(X_big[:n_train])
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        vs = big.embed(X_new)
        t_embed = time.perf_counter() - t0
        print(f"\nscale: fit on {n_train} spectra {t_fit:.1f} s; one joint map of {args.n_scale} spectra "
              f"({n_train} training + {n_new_disk} disk + {len(X_edge)} edge) {t_embed:.1f} s "
              f"with n_jobs={args.n_jobs}")
        outer_s = ~vs.training_like
        figures.update(scale_n_spectra=args.n_scale, scale_fit_s=t_fit, scale_embed_s=t_embed,
                       scale_false_flags_pct=100 * outer_s[:n_new_disk].mean())
        print(f"  new disk stars flagged {fraction(outer_s[:n_new_disk])}")
        for kind in sorted(set(kinds)):
            sel = n_new_disk + np.flatnonzero(kinds == kind)
            print(f"  {kind:11s} {fraction(outer_s[sel])} | map {100 * vs.map_outer[sel].mean():5.1f} % "
                  f"| pca {100 * vs.pca_outer[sel].mean():5.1f} %")
    figures["peak_rss_mb"] = peak_rss_mb()
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
