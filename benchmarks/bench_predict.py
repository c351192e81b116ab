"""Prediction speed and peak memory of CNNLabelRegressor.

Prints spectra/s per model for n spectra x p pixels (design target on 2 cores: >= 6 000/s and
<= 3 GB for 35 000 x 8669), for the estimator's prediction path (on a CPU: the machine code
that skstellar/models/_trunk_ir.py generates) and, for reference, the Keras path (the Keras
models in one tf.function, chunks of 1024: what a GPU or a user's builder runs) and Keras'
``model.predict``. The weights are those of a one-epoch fit: speed does not depend on them.

    python benchmarks/bench_predict.py                       # 35 000 x 8669, 1 model
    python benchmarks/bench_predict.py --generic             # also the Keras path, same process
    python benchmarks/bench_predict.py --n 5000 --models 8   # an 8-member ensemble

Figures: docs/models.rst, "Speed".
"""

import argparse
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from skstellar.models import CNNLabelRegressor, _predict, _trunk_ir  # noqa: E402

from _results import add_json_argument, write_json  # noqa: E402


def peak_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=35_000, help="spectra to predict")
    parser.add_argument("--pixels", type=int, default=8669)
    parser.add_argument("--models", type=int, default=1, help="kept ensemble members")
    parser.add_argument("--keras-predict", action="store_true", help="also time model.predict")
    parser.add_argument("--generic", action="store_true",
                        help="also time the Keras path (the Keras models in one tf.function, chunks of 1024)")
    add_json_argument(parser)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    X = np.empty((args.n, args.pixels), dtype=np.float32)
    for start in range(0, args.n, 4096):  # row blocks: no full-size temporaries
        X[start:start + 4096] = 1 - 0.3 * rng.random((min(4096, args.n - start), args.pixels), dtype=np.float32)
    y = rng.normal(size=(args.n, 5))
    est = CNNLabelRegressor(max_epochs=1, n_models=args.models, n_keep=args.models, random_state=0)
    est.fit(X[:64], y[:64])
    print(f"after fit + data ({X.nbytes / 1e9:.2f} GB of float32 spectra): peak RSS {peak_gb():.2f} GB")
    _trunk_ir._compile.cache_clear()
    t = time.perf_counter()
    _predict.make_ensemble_function(est.members_, args.pixels, est.recipe_)
    compile_s = time.perf_counter() - t
    print(f"building the prediction function (generating and compiling the CPU code, once per process): "
          f"{compile_s:.2f} s")
    t = time.perf_counter()
    est.predict(X[:8])  # the kernel was compiled at the end of fit; the Keras path would trace here
    print(f"first call: {time.perf_counter() - t:.2f} s")
    t, cpu = time.perf_counter(), time.process_time()
    mean = est.predict(X)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    # CPU-seconds too: on a shared machine the wall time depends on the neighbours' load.
    print(f"predict {args.n} x {args.pixels}, {args.models} member(s): {wall:.2f} s, "
          f"{args.n * args.models / wall:,.0f} spectra/s per model "
          f"({args.n * args.models / cpu:,.0f} per CPU-second, {os.cpu_count()} cores), peak RSS {peak_gb():.2f} GB, "
          f"output {mean.shape} {mean.dtype}")
    figures = {"n_spectra": args.n, "pixels": args.pixels, "members": args.models, "compile_s": compile_s,
               "spectra_per_s_per_model": args.n * args.models / wall,
               "spectra_per_cpu_s_per_model": args.n * args.models / cpu, "peak_rss_mb": peak_gb() * 1e3}
    if args.generic:
        function = _predict.KerasEnsemble(est.members_, X.shape[1])
        function(X[:8], offset=1.0, scale=-1.0, batch_size=1024)
        t, cpu = time.perf_counter(), time.process_time()
        function(X, offset=1.0, scale=-1.0, batch_size=1024)
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        print(f"Keras path (Keras models in a tf.function, chunks of 1024): {wall:.2f} s, "
              f"{args.n * args.models / wall:,.0f} spectra/s per model "
              f"({args.n * args.models / cpu:,.0f} per CPU-second), peak RSS {peak_gb():.2f} GB")
        figures["keras_path_spectra_per_s_per_model"] = args.n * args.models / wall
    if args.keras_predict:
        model = est.members_[0]
        model.predict(1 - X[:8], verbose=0)
        t = time.perf_counter()
        model.predict(1 - X, batch_size=4096, verbose=0)
        wall = time.perf_counter() - t
        print(f"keras model.predict (one model, batch 4096): {wall:.2f} s, {args.n / wall:,.0f} spectra/s, "
              f"peak RSS {peak_gb():.2f} GB")
        figures["keras_predict_spectra_per_s"] = args.n / wall
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
