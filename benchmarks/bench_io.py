"""Speed of read_ges_giraffe: files per second for many GES files of two setups.

Writes ``--n-stars`` stars × 2 setups (HR21: the real file; HR10: a 5601-pixel copy) into a
temporary folder as modified copies of the shared GES file, then times one read of all of
them. Usage: python benchmarks/bench_io.py --n-stars 100 [--n-jobs 2]
"""

import argparse
import tempfile
import time
from pathlib import Path

from astropy.io import fits

from skstellar.io import read_ges_giraffe

from _results import add_json_argument, peak_rss_mb, write_json

GES = Path(__file__).resolve().parents[2] / "shared" / "data" / "spectra" / (
    "ges_giraffe_HR21_19235180+0048006.fits"
)
SPECTRUM_HDUS = ("final_spectrum", "final_ivar", "normalised_spectrum", "normalised_ivar")


def write_copies(folder, n_stars):
    paths = []
    with fits.open(GES, memmap=False) as hdul:
        hr10 = [hdul[name].data[:5601].copy() for name in SPECTRUM_HDUS]
        hr21 = [hdul[name].data for name in SPECTRUM_HDUS]
        for setup, data in (("HR21", hr21), ("HR10", hr10)):
            for name, values in zip(SPECTRUM_HDUS, data):
                hdul[name].data = values
                hdul[name].header["HIERARCH ESO INS FILT NAME"] = setup
                hdul[name].header["CRVAL1"] = 8475.0 if setup == "HR21" else 5339.0
            for k in range(n_stars):
                hdul["velclass"].data["Cname"][0] = f"{k:08d}+0000000"
                path = folder / f"{k:06d}_{setup}.fits"
                hdul.writeto(path)
                paths.append(path)
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-stars", type=int, default=100)
    parser.add_argument("--n-jobs", type=int, default=None)
    add_json_argument(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_copies(Path(tmp), args.n_stars)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        start = time.perf_counter()
        s = read_ges_giraffe(paths, n_jobs=args.n_jobs)
        elapsed = time.perf_counter() - start
    print(f"n_jobs={args.n_jobs}: read {len(paths)} GES files ({megabytes:.0f} MB) of {len(s)} stars x {s.setups} "
          f"in {elapsed:.2f} s: {len(paths) / elapsed:.0f} files/s, {megabytes / elapsed:.0f} MB/s; "
          f"set shape {s.shape}")
    write_json(args.json, {"n_files": len(paths), "n_jobs": args.n_jobs, "wall_s": elapsed,
                           "files_per_s": len(paths) / elapsed, "mb_per_s": megabytes / elapsed,
                           "peak_rss_mb": peak_rss_mb()})


if __name__ == "__main__":
    main()
