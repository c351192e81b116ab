"""Speed and memory of the mock Gaia-ESO survey generator (skstellar.datasets).

Generates a survey and prints the wall-clock and CPU time, the throughput, the peak
resident memory of the process and the size of the output, plus the solar line depths
the physics gives. Target: 10 000 stars x (HR10 + HR21 + HR15N) in <= 60 s on 2 cores
with a peak <= 4 GB.

    python benchmarks/bench_datasets.py                          # 10 000 stars, 3 setups, 2 threads
    python benchmarks/bench_datasets.py --n-stars 1000 --n-jobs 1
    python benchmarks/bench_datasets.py --setups HR10,HR21 --population mixed
"""

import argparse
import resource
import time

import numpy as np

from _results import add_json_argument, write_json


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n-stars", type=int, default=10_000)
    p.add_argument("--setups", default="HR10,HR21,HR15N")
    p.add_argument("--population", default="disk", choices=("disk", "edge", "mixed"))
    p.add_argument("--n-jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    add_json_argument(p)
    args = p.parse_args(argv)
    setups = tuple(args.setups.split(","))

    t = time.perf_counter()
    from skstellar.datasets import make_giraffe_survey, synthesize_spectra
    from skstellar.datasets._profiles import setup_model

    models = {s: setup_model(s) for s in setups}
    print(f"import + line selection and profile bases: {time.perf_counter() - t:.2f} s")
    for s, m in models.items():
        print(
            f"  {s}: {m.n_lines} lines ({m.wing_lines.size} with damping wings), "
            f"{m.wave.size} synthesis pixels, basis nnz {m.basis_t.nnz}"
        )
    rss0 = peak_rss_mb()

    t, c = time.perf_counter(), time.process_time()
    spectra, labels = make_giraffe_survey(
        args.n_stars,
        setups=setups,
        population=args.population,
        random_state=args.seed,
        n_jobs=args.n_jobs,
    )
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    out_mb = sum(spectra.flux(s).nbytes + spectra.error(s).nbytes for s in setups) / 2**20
    print(
        f"make_giraffe_survey({args.n_stars}, setups={setups}, population={args.population!r}, "
        f"n_jobs={args.n_jobs})"
    )
    print(f"  wall {wall:.1f} s, CPU {cpu:.1f} s, {args.n_stars / wall:.0f} stars/s")
    print(f"  output {spectra.shape[1]} pixels/star, flux + error {out_mb:.0f} MB")
    print(f"  peak RSS {peak_rss_mb():.0f} MB (before generation: {rss0:.0f} MB)")

    sun = synthesize_spectra(
        {"teff": [5777.0], "logg": [4.44], "feh": [0.0], "mgfe": [0.0], "alfe": [0.0], "vmic": [1.0]},
        setups=("HR10", "HR21"),
    )
    print("solar line depths (model / real Sun):")
    for setup, w0, name, real in (
        ("HR21", 8542.09, "Ca II 8542", "0.8"),
        ("HR21", 8806.756, "Mg I 8806.75", "0.6"),
        ("HR10", 5528.405, "Mg I 5528.4", "0.6"),
        ("HR21", 8773.896, "Al I 8773.9", "0.15-0.25"),
    ):
        w = sun.wavelength(setup)
        d = 1.0 - sun.flux(setup)[0, np.abs(w - w0) <= 0.1].min()
        print(f"  {name:13s} {d:.3f} / {real}")
    print("population:", dict(zip(*np.unique(np.asarray(labels["population"]), return_counts=True))))
    write_json(args.json, {"n_stars": args.n_stars, "setups": "+".join(setups), "n_jobs": args.n_jobs,
                           "wall_s": wall, "cpu_s": cpu, "stars_per_s": args.n_stars / wall,
                           "output_mb": out_mb, "peak_rss_mb": peak_rss_mb()})


if __name__ == "__main__":
    main()
