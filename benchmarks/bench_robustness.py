"""Robustness of a survey run: bad inputs, mutated files and a save/reload round trip.

Three parts, one table each:

1. **Bad inputs** through the default chain (``giraffe_preprocessor`` + the t-SNE filter +
   a regressor) with :func:`skstellar.predict_table`. Each case damages stars of a batch
   of mock survey stars (or the batch itself) and is judged:

   - *clear error*: a ValueError (or ReadError) whose message names the star, setup or
     column at fault;
   - *flagged, continued*: the run went on and the damaged stars have NaN labels or are
     not training-like, with a status reason (or, for damage the cleaner repairs, finite
     labels and a status that says what was repaired);
   - *silent wrong*: the run went on and a star that should be withheld got finite,
     training-like labels with an "ok" status (goal 0);
   - *crash*: any other exception, or an error that does not name the culprit (goal 0).

2. **Fuzz**: mutated copies of the real GES and GALAH files (truncation, random bytes,
   header cards overwritten) through the readers: a read, a ReadError naming the file,
   or a crash / hang (goal 0).

3. **Round trip**: the fitted pipeline saved with joblib and loaded in a fresh process
   gives a bit-identical ``predict_table`` (every column).

Usage: python benchmarks/bench_robustness.py [--quick] [--cnn]
(--quick: fewer variants and fuzz cases, a minute or two on 2 cores; timings of a busy
machine do not matter here, only the counts.)
"""

import argparse
import importlib.util
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
from astropy.table import MaskedColumn
from astropy.utils.exceptions import AstropyWarning

from skstellar import predict_table
from skstellar.datasets import make_giraffe_survey
from skstellar.spectra import SpectralSet
from skstellar.utils._status import UNPREDICTABLE

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SEED = 7


# -- the pipeline --------------------------------------------------------------------
def build_pipeline(cnn):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    from skstellar.filters import TSNESimilarityFilter
    from skstellar.preprocessing import giraffe_preprocessor

    if cnn:
        from skstellar.models import CNNLabelRegressor

        reg = CNNLabelRegressor(filters=(2,), kernel_size=3, dense_units=(4,), max_epochs=3, n_models=2,
                                n_keep=1, random_state=0, label_names=["teff", "logg", "feh"])
    else:
        reg = Ridge(alpha=1.0)
    return Pipeline(giraffe_preprocessor().steps
                    + [("similarity", TSNESimilarityFilter(n_components=10, perplexity=8, random_state=0)),
                       ("reg", reg)])


def per_star_grids(s):
    """The arrays of ``s`` with a wavelength grid per star, float64 flux: free to damage."""
    return {k: [np.tile(s.wavelength(k), (len(s), 1)), s.flux(k).astype(np.float64)] for k in s.setups}


def rebuild(s, arrays, meta=None):
    return SpectralSet.from_arrays({k: tuple(v) for k, v in arrays.items()},
                                   meta=s.meta.copy() if meta is None else meta)


# -- star damage: (name, expectation, function(arrays, meta, i, rng)) -------------------
# expectation "withhold": labels NaN or not training-like; "repair": finite labels, status says so
def _set(setup, value):
    def damage(a, meta, i, rng):
        a[setup][1][i] = value
    return damage


def _scale(factor, setup=None):
    def damage(a, meta, i, rng):
        for k in ([setup] if setup else a):
            a[k][1][i] *= factor
    return damage


def _grid(factor=1.0, offset=0.0, setup="HR10"):
    def damage(a, meta, i, rng):
        a[setup][0][i] = a[setup][0][i] * factor + offset
    return damage


def _rv(value):
    def damage(a, meta, i, rng):
        meta["rv"][i] = value
    return damage


def _pixels(fraction, value, setup="HR21"):
    def damage(a, meta, i, rng):
        p = a[setup][1].shape[1]
        a[setup][1][i, rng.choice(p, int(fraction * p), replace=False)] = value
    return damage


def _noise(a, meta, i, rng):
    a["HR10"][1][i] = rng.normal(1.0, 0.5, a["HR10"][1].shape[1])


def _reverse(a, meta, i, rng):
    a["HR21"][1][i] = a["HR21"][1][i, ::-1]


STAR_DAMAGE = [
    ("HR10 all zero", "withhold", _set("HR10", 0.0)),
    ("HR10 all NaN", "withhold", _set("HR10", np.nan)),
    ("HR21 all inf", "withhold", _set("HR21", np.inf)),
    ("HR21 all -inf", "withhold", _set("HR21", -np.inf)),
    ("HR10 grid in nm", "withhold", _grid(0.1)),
    ("HR21 grid in nm", "withhold", _grid(0.1, setup="HR21")),
    ("HR10 grid in um", "withhold", _grid(1e-4)),
    ("HR10 grid 300 A off", "withhold", _grid(offset=300.0)),
    ("flux x 1e4 (not normalised)", "withhold", _scale(1e4)),
    ("flux x 1e2", "withhold", _scale(1e2)),
    ("flux x 1e-4", "withhold", _scale(1e-4)),
    ("flux x -1", "withhold", _scale(-1.0)),
    ("HR21 flux 1e39 (beyond float32)", "withhold", _set("HR21", 1e39)),
    ("flux 1e39 x spectrum", "withhold", _scale(1e39)),
    ("RV NaN", "withhold", _rv(np.nan)),
    ("RV inf", "withhold", _rv(np.inf)),
    ("RV 5000 km/s", "withhold", _rv(5000.0)),
    ("RV -990 km/s (grid 5 % off)", "withhold", _rv(-990.0)),
    ("pure noise HR10", "withhold", _noise),
    ("HR21 reversed", "withhold", _reverse),
    ("1 % pixels NaN", "repair", _pixels(0.01, np.nan)),
    ("1 % pixels inf", "repair", _pixels(0.01, np.inf)),
    ("1 % pixels zero", "repair", _pixels(0.01, 0.0)),
    ("0.5 % cosmic rays", "repair", _pixels(0.005, 50.0)),
]


def star_cases(fitted, spectra, n_variants):
    """One predict_table per damage type: ``n_variants`` damaged stars among clean ones."""
    rows = []
    rng = np.random.default_rng(SEED)
    batch = spectra[-(n_variants + 5):]
    for name, expect, damage in STAR_DAMAGE:
        arrays, meta = per_star_grids(batch), batch.meta.copy()
        for i in range(n_variants):
            damage(arrays, meta, i, rng)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a numpy overflow warning is not a report
                table = predict_table(fitted, rebuild(batch, arrays, meta))
        except ValueError as exc:
            rows += [(name, "clear error" if "star" in str(exc) else "crash", str(exc)[:90])] * n_variants
            continue
        except Exception as exc:  # noqa: BLE001 -- counted as a crash, that is the point
            rows += [(name, "crash", f"{type(exc).__name__}: {str(exc)[:80]}")] * n_variants
            continue
        flags = np.asarray(table["flags"])
        label = np.asarray(table[table.colnames[1]], dtype=float)
        alike = np.asarray(table["training_like"])
        for i in range(n_variants):
            withheld = np.isnan(label[i]) or not alike[i]
            said = table["status"][i] != "ok"
            if expect == "withhold":
                outcome = "flagged, continued" if withheld and said else "silent wrong"
            else:
                outcome = "flagged, continued" if np.isfinite(label[i]) and said else "silent wrong"
                if np.isfinite(label[i]) and not alike[i]:
                    outcome = "flagged, continued"  # repaired, and judged on its own merits
            rows.append((name, outcome, table["status"][i]))
        clean = slice(n_variants, None)
        assert not (flags[clean] & int(UNPREDICTABLE)).any(), f"{name}: clean stars flagged"
    return rows


# -- batch-level bad input: each must be a clear error -----------------------------------
def batch_cases(fitted, spectra):
    s = spectra[-6:]
    w10, w21 = s.wavelength("HR10"), s.wavelength("HR21")
    f10, f21 = s.flux("HR10"), s.flux("HR21")
    ids = [str(i) for i in s.ids]

    def build(setups=None, meta=None):
        return SpectralSet.from_arrays(setups or {"HR10": (w10, f10), "HR21": (w21, f21)},
                                       meta=meta if meta is not None else {"id": ids, "rv": s.meta["rv"]})

    def masked_rv():
        t = s.meta.copy()
        t["rv"] = MaskedColumn(np.asarray(t["rv"]), mask=[True] + [False] * 5)
        return t

    cases = {
        "duplicate ids": (lambda: build(meta={"id": [ids[0]] * 6, "rv": s.meta["rv"]}), "appears"),
        "placeholder id 'None'": (lambda: build(meta={"id": ["None"] + ids[1:], "rv": s.meta["rv"]}), "None"),
        "empty id": (lambda: build(meta={"id": [""] + ids[1:], "rv": s.meta["rv"]}), "placeholder"),
        "id 'nan'": (lambda: build(meta={"id": ["nan"] + ids[1:], "rv": s.meta["rv"]}), "nan"),
        "setup HR21 missing": (lambda: build({"HR10": (w10, f10)}), "HR21"),
        "extra setup": (lambda: build({"HR10": (w10, f10), "HR21": (w21, f21), "HR15N": (w10, f10)}), "HR15N"),
        "no rv column": (lambda: build(meta={"id": ids}), "'rv'"),
        "rv column of text": (lambda: build(meta={"id": ids, "rv": ["fast"] * 6}), "'rv'"),
        "grid not increasing": (lambda: build({"HR10": (w10[::-1], f10), "HR21": (w21, f21)}), "increasing"),
        "grid with NaN": (lambda: build({"HR10": (np.where(np.arange(w10.size) == 5, np.nan, w10), f10),
                                         "HR21": (w21, f21)}), "not finite"),
        "flux of other width": (lambda: build({"HR10": (w10, f10[:, :-1]), "HR21": (w21, f21)}), "pixels"),
        "flux 3-D": (lambda: build({"HR10": (w10, f10[None]), "HR21": (w21, f21)}), "2-D"),
        "stars differ per setup": (lambda: build({"HR10": (w10, f10[:5]), "HR21": (w21, f21)}), "same stars"),
        "meta of other length": (lambda: build(meta={"id": ids[:5], "rv": s.meta["rv"][:5]}), "rows"),
        "masked rv (flagged)": (lambda: build(meta=masked_rv()), None),
        "empty set": (lambda: s[[]], "no stars"),
        "plain array": (lambda: np.asarray(s), "SpectralSet"),
    }
    rows = []
    for name, (make, token) in cases.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                table = predict_table(fitted, make())
        except ValueError as exc:
            clear = token is not None and token in str(exc)
            rows.append((name, "clear error" if clear else "crash", str(exc)[:90]))
            continue
        except Exception as exc:  # noqa: BLE001 -- counted as a crash
            rows.append((name, "crash", f"{type(exc).__name__}: {str(exc)[:80]}"))
            continue
        ok = token is None and np.isnan(np.asarray(table[table.colnames[1]], dtype=float)[0])
        rows.append((name, "flagged, continued" if ok else "silent wrong", str(table["status"][0])))
    return rows


# -- fuzz ----------------------------------------------------------------------------------
FUZZ_KEYS = ["cases", "read", "read (astropy warned)", "of which data as the original", "of which data changed",
             "ReadError naming the file", "crash", "hang"]


def same_data(a, b):
    """Whether two reads hold the same flux, errors and wavelengths (the id aside)."""
    for k in b.setups:
        if k not in a.setups:
            return False
        for x, y in ((a.flux(k), b.flux(k)), (a.wavelength(k), b.wavelength(k)), (a.error(k), b.error(k))):
            if (x is None) != (y is None) or (x is not None and not np.array_equal(x, y, equal_nan=True)):
                return False
    return a.setups == b.setups

def fuzz(n_cases):
    spec = importlib.util.spec_from_file_location("fuzz", ROOT / "tests" / "test_io_fuzz.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    counts = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (path, read) in mod.readers(SHARED).items():
            raw, spans = path.read_bytes(), mod.header_spans(path)
            ref = read(path)
            rng = np.random.default_rng(SEED)
            c = counts.setdefault(name, dict.fromkeys(FUZZ_KEYS, 0))
            for k in range(n_cases):
                data, _ = mod.mutate(raw, spans, rng)
                case = Path(folder) / f"{name}{k}.fits"
                case.write_bytes(data)
                c["cases"] += 1
                try:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always", AstropyWarning)
                        outcome = mod.run_case(read, case)
                    if outcome == "read":
                        c["read (astropy warned)" if caught else "read"] += 1
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", AstropyWarning)
                            got = read(case)
                        c["of which data as the original" if same_data(got, ref) else
                          "of which data changed"] += 1
                    else:
                        c["ReadError naming the file"] += 1
                except mod.Hang:
                    c["hang"] += 1
                except Exception:  # noqa: BLE001 -- another exception type: counted as a crash
                    c["crash"] += 1
                case.unlink()
    return counts


# -- round trip ----------------------------------------------------------------------------
def round_trip(fitted, batch):
    import joblib

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        here = predict_table(fitted, batch)
        joblib.dump(fitted, folder / "model.joblib")
        with open(folder / "batch.pkl", "wb") as f:
            pickle.dump(batch, f)
        script = textwrap.dedent(f"""
            import pickle, joblib
            from skstellar import predict_table
            pipe = joblib.load({str(folder / "model.joblib")!r})
            batch = pickle.load(open({str(folder / "batch.pkl")!r}, "rb"))
            pickle.dump(predict_table(pipe, batch), open({str(folder / "there.pkl")!r}, "wb"))
        """)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
        if run.returncode:
            return f"reload failed: {run.stderr[-300:]}"
        with open(folder / "there.pkl", "rb") as f:
            there = pickle.load(f)
    differ = [c for c in here.colnames
              if not np.array_equal(np.asarray(here[c]), np.asarray(there[c]),
                                    equal_nan=np.asarray(here[c]).dtype.kind == "f")]
    n_cols = len(here.colnames)
    return (f"{len(here)} stars x {n_cols} columns: bit-identical" if not differ
            else f"differ in {differ}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 variants per damage, 100 fuzz cases per file")
    parser.add_argument("--cnn", action="store_true", help="a tiny CNN ensemble instead of Ridge")
    parser.add_argument("--n-train", type=int, default=150)
    args = parser.parse_args()
    n_variants, n_fuzz, n_train = (3, 100, 60) if args.quick else (10, 300, args.n_train)

    t0 = time.perf_counter()
    spectra, labels = make_giraffe_survey(n_train + n_variants + 5, snr=(30, 150), random_state=SEED)
    y = np.column_stack([labels[c] for c in ("teff", "logg", "feh")])
    fitted = build_pipeline(args.cnn).fit(spectra[:n_train], y[:n_train])
    rows = star_cases(fitted, spectra, n_variants) + batch_cases(fitted, spectra)
    kinds = ["clear error", "flagged, continued", "silent wrong", "crash"]
    print(f"## Bad inputs ({'tiny CNN' if args.cnn else 'Ridge'} regressor, {n_train} training stars)\n")
    print("| case | n | " + " | ".join(kinds) + " | example status / message |")
    print("|---|---|" + "---|" * len(kinds) + "---|")
    names = list(dict.fromkeys(r[0] for r in rows))
    for name in names:
        mine = [r for r in rows if r[0] == name]
        counts = [sum(r[1] == k for r in mine) for k in kinds]
        print(f"| {name} | {len(mine)} | " + " | ".join(map(str, counts)) + f" | {mine[0][2]} |")
    totals = [sum(r[1] == k for r in rows) for k in kinds]
    print(f"| **all** | **{len(rows)}** | " + " | ".join(f"**{t}**" for t in totals) + " | |")

    print(f"\n## Fuzz: mutated copies of the real files ({n_fuzz} per file)\n")
    counts = fuzz(n_fuzz)
    print("| file | " + " | ".join(FUZZ_KEYS) + " |")
    print("|---|" + "---|" * len(FUZZ_KEYS))
    for name, c in counts.items():
        print(f"| {name} | " + " | ".join(str(c[k]) for k in FUZZ_KEYS) + " |")

    print("\n## Round trip (joblib, fresh process)\n")
    print(round_trip(fitted, spectra[n_train:]))
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
