"""Survey scale: the whole fitted pipeline streamed over an on-disk store of mock spectra.

Generates the mock Gaia-ESO survey (HR10 + HR21, raw observed-frame spectra with errors) chunk
by chunk into an HDF5 store (kept in a cache folder and reused), fits the pipeline of one model
(preprocessing, t-SNE similarity filter, a CNN ensemble of ``--members`` kept members; one short
epoch on ``--n-train`` stars: speed does not depend on the weights), then predicts the whole store
with :func:`skstellar.predict.predict_survey`, on this process and on a 2-worker Dask
LocalCluster. Prints stars/s end to end and per stage, the time per 10**6 stars, the peak RSS
while predicting (sampled every 0.1 s) and the store's size on disk.

    python benchmarks/bench_scale.py                       # 10**6 stars (a store of ~130 GB)
    python benchmarks/bench_scale.py --n-stars 10000       # CI-sized
    python benchmarks/bench_scale.py --n-stars 10000 --no-dask
    python benchmarks/bench_scale.py --stream --no-dask    # 10**6 generated chunk by chunk, no store

Figures: docs/scale.rst.
"""

import argparse
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from sklearn.pipeline import Pipeline

from skstellar.datasets import make_giraffe_survey
from skstellar.filters import TSNESimilarityFilter
from skstellar.io import SpectralStore, open_store
from skstellar.models import CNNLabelRegressor
from skstellar.predict import predict_survey
from skstellar.preprocessing import giraffe_preprocessor

LABELS = ("teff", "logg", "feh", "mgfe", "alfe")


def rss_gb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1e6
    return float("nan")


class PeakRSS:
    """The largest resident size of this process while the block runs (sampled every 0.1 s)."""

    def __enter__(self):
        self.peak, self._stop = rss_gb(), threading.Event()

        def sample():
            while not self._stop.wait(0.1):
                self.peak = max(self.peak, rss_gb())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_gb())


def make_store(path, n_stars, chunk, seed):
    """The mock survey, chunk by chunk (each chunk its own seed): memory holds one chunk."""
    if path.exists():
        with open_store(path) as store:
            if len(store) == n_stars:
                return 0.0
        path.unlink()
    t = time.perf_counter()
    tmp = path.with_suffix(".part")
    with SpectralStore(tmp, mode="a") as store:
        for k, lo in enumerate(range(0, n_stars, chunk)):
            spectra, _ = make_giraffe_survey(min(chunk, n_stars - lo), population="mixed", snr=(10, 150),
                                             random_state=seed + 1 + k, n_jobs=-1)
            store.append(spectra)
    os.replace(tmp, path)  # a store in the cache is complete
    return time.perf_counter() - t


class MockChunks:
    """The mock survey as an iterable of SpectralSets, generated chunk by chunk as predict_survey
    asks for them (no store: 10**6 stars with errors are 126 GB), timing its own generation."""

    def __init__(self, n_stars, chunk, seed):
        self.n_stars, self.chunk, self.seed, self.seconds = n_stars, chunk, seed, 0.0

    def __iter__(self):
        for k, lo in enumerate(range(0, self.n_stars, self.chunk)):
            t = time.perf_counter()
            spectra, _ = make_giraffe_survey(min(self.chunk, self.n_stars - lo), population="mixed", snr=(10, 150),
                                             random_state=self.seed + 1 + k, n_jobs=-1)
            self.seconds += time.perf_counter() - t
            yield spectra


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-stars", type=int, default=1_000_000)
    parser.add_argument("--n-train", type=int, default=600, help="training stars of the pipeline")
    parser.add_argument("--members", type=int, default=8, help="kept CNN members")
    parser.add_argument("--batch-size", type=int, default=2500, help="the filter's batch_size (stars per map)")
    parser.add_argument("--chunk-size", type=int, default=None, help="stars per chunk (a multiple of --batch-size)")
    parser.add_argument("--cache", default=os.environ.get("SKSTELLAR_CACHE", str(Path.home() / ".cache" / "skstellar")))
    parser.add_argument("--no-dask", action="store_true", help="skip the LocalCluster run")
    parser.add_argument("--stream", action="store_true",
                        help="generate the mock chunk by chunk while predicting (no store; one process only)")
    args = parser.parse_args()

    if args.stream:
        path = MockChunks(args.n_stars, args.chunk_size or args.batch_size, seed=1000)
        args.no_dask = True
        print(f"streamed: {args.n_stars} mock stars generated in chunks of {path.chunk} while predicting")
    else:
        cache = Path(args.cache)
        cache.mkdir(parents=True, exist_ok=True)
        path = cache / f"bench_scale_{args.n_stars}.h5"
        seconds = make_store(path, args.n_stars, 2000, seed=1000)
        store = open_store(path)
        size = store.nbytes_on_disk
        print(f"store {path}: {len(store)} stars, {size / 1e9:.2f} GB on disk ({size / len(store) / 1e3:.0f} kB/star)"
              + (f", generated in {seconds:.0f} s" if seconds else ", from the cache"))

    t = time.perf_counter()
    train, labels = make_giraffe_survey(args.n_train, snr=(30, 150), random_state=7)
    y = np.column_stack([labels[c] for c in LABELS])
    pipe = Pipeline(giraffe_preprocessor().steps + [
        ("similarity", TSNESimilarityFilter(batch_size=args.batch_size, random_state=0)),
        ("cnn", CNNLabelRegressor(n_models=args.members, n_keep=args.members, max_epochs=1, random_state=0,
                                  label_names=list(LABELS))),
    ]).fit(train, y)
    print(f"fitted the pipeline ({args.n_train} training stars, {args.members} members, 1 epoch) in "
          f"{time.perf_counter() - t:.0f} s")

    out = Path(tempfile.mkdtemp()) / "labels.ecsv"
    with PeakRSS() as rss:
        run = predict_survey(pipe, path, out, chunk_size=args.chunk_size, overwrite=True)
    if args.stream:
        print(f"generating the mock took {path.seconds:.0f} s of the run's {run.seconds:.0f} s; "
              f"without it: {run.n_rows / (run.seconds - path.seconds):.0f} stars/s")
    rate = run.n_rows / run.seconds
    print(f"one process: {run.n_rows} stars in {run.seconds:.1f} s: {rate:.0f} stars/s end to end, "
          f"{1e6 / rate / 3600:.2f} h per 10**6 stars; peak RSS while predicting {rss.peak:.2f} GB "
          f"(this process, with the fitted pipeline and TensorFlow); output {out.stat().st_size / 1e6:.1f} MB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"peak RSS of the whole process (fit included): {peak:.2f} GB")

    # per stage, on the first filter block, after the run (warm; a new map: the filter caches only its last)
    block = min(args.batch_size, args.n_stars)
    stages = {}
    t = time.perf_counter()
    spectra = next(iter(MockChunks(block, block, seed=1000))) if args.stream else store.read(0, block)
    stages["generate the mock" if args.stream else "read from the store"] = time.perf_counter() - t
    t = time.perf_counter()
    X = pipe[:4].transform(spectra)
    stages["preprocess (clean, RV, rebin, stitch)"] = time.perf_counter() - t
    t = time.perf_counter()
    pipe.named_steps["similarity"].embed(X)
    stages["similarity filter (joint t-SNE map)"] = time.perf_counter() - t
    t = time.perf_counter()
    labels, _ = pipe.named_steps["cnn"].predict(X, return_std=True)
    stages[f"CNN ensemble ({args.members} members)"] = time.perf_counter() - t
    if pipe.named_steps["similarity"].label_check_ is not None:
        t = time.perf_counter()
        pipe.named_steps["similarity"].check_labels(X, labels, wavelength=pipe.named_steps["stitch"].wavelength_)
        stages["label check (emulator, 2 refining steps)"] = time.perf_counter() - t
    print(f"per stage, on {block} stars:")
    for name, sec in stages.items():
        print(f"  {name:42s} {block / sec:10.0f} stars/s  ({sec:.2f} s)")

    if not args.stream:
        store.close()

    if not args.no_dask:
        import distributed

        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                      silence_logs=40) as cluster, distributed.Client(cluster) as client:
            t = time.perf_counter()
            run = predict_survey(pipe, path, out.with_name("dask.ecsv"), chunk_size=args.chunk_size, client=client,
                                 overwrite=True)
            rate = run.n_rows / (time.perf_counter() - t)
            sizes = client.run(rss_gb)  # resident now (a forked worker's ru_maxrss counts its parent's)
        print(f"LocalCluster (2 worker processes x 1 thread): {rate:.0f} stars/s end to end, "
              f"{1e6 / rate / 3600:.2f} h per 10**6 stars (scatter of the pipeline and worker start-up included); "
              f"resident size per worker after the run {', '.join(f'{p:.2f}' for p in sizes.values())} GB")


if __name__ == "__main__":
    main()
