"""Run every benchmark script and write ``benchmarks/RESULTS.md``: where the toolkit stands.

Each ``benchmarks/bench_*.py`` runs in its own process with ``--json PATH``; the figures it
writes there (``benchmarks/_results.py``) become one Markdown table per area -- throughput,
memory, accuracy against the thesis and the linear baseline, filter quality, scale -- headed by
the machine (CPU model, cores, load), the date and the versions. Logs and JSON files go to
``benchmarks/results/`` (not committed).

    python benchmarks/run_all.py --quick            # every script at a small size: minutes
    python benchmarks/run_all.py                    # full size: hours on 2 cores (a 10-member ensemble)
    python benchmarks/run_all.py --quick --only bench_io,bench_filter
    python benchmarks/run_all.py --report-only      # rebuild RESULTS.md from the last JSON files

A script not listed in ``SIZES`` runs with its own defaults, plus ``--quick`` under ``--quick``
if its source mentions that flag; its figures go to the table of their area (``AREAS``) or, if
no area claims them, to "Other benchmarks". Figures from another machine are not comparable:
the header says which machine made them.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"

# Arguments per script: (quick, full). Quick sizes check that a script works and give rough
# figures in about a minute each on 2 cores; full sizes are the ones docs/performance.rst quotes.
SIZES = {
    "bench_io.py": (["--n-stars", "20"], ["--n-stars", "100"]),
    "bench_datasets.py": (["--n-stars", "500", "--setups", "HR10,HR21"], []),
    "bench_preprocessing.py": (["--n-stars", "1000"], ["--n-stars", "10000"]),
    "bench_predict.py": (["--n", "2000"], ["--generic"]),
    "bench_train.py": (["--n", "600", "--epochs", "1"], ["--source", "survey", "--epochs", "2", "--ensemble"]),
    "bench_filter.py": (["--n-train", "300", "--n-disk", "100", "--n-edge", "140"], ["--n-scale", "35000"]),
    "bench_accuracy.py": (
        ["--n-train", "600", "--n-test", "300", "--n-models", "2", "--n-keep", "2", "--max-epochs", "5",
         "--patience", "3", "--methods", "default,ridge,pcaridge"],
        [],
    ),
}

LABELS = ("teff", "logg", "mgfe", "alfe", "feh")
LABEL_TITLES = ("Teff (K)", "log g", "[Mg/Fe]", "[Al/Fe]", "[Fe/H]")

# Throughput rows: (script, figure, what, unit); memory rows likewise.
THROUGHPUT = [
    ("bench_io.py", "files_per_s", "read Gaia-ESO GIRAFFE files", "files/s"),
    ("bench_datasets.py", "stars_per_s", "mock survey generation", "stars/s"),
    ("bench_preprocessing.py", "chain_warm_stars_per_s", "GIRAFFE chain, warm memory", "stars/s"),
    ("bench_preprocessing.py", "chain_cold_stars_per_s", "GIRAFFE chain, first pass", "stars/s"),
    ("bench_preprocessing.py", "clean_warm_stars_per_s", "GIRAFFE chain step: SpectrumCleaner", "stars/s"),
    ("bench_preprocessing.py", "rebin_warm_stars_per_s", "GIRAFFE chain step: Rebinner", "stars/s"),
    ("bench_predict.py", "spectra_per_s_per_model", "CNN prediction (CPU kernel), per model", "spectra/s"),
    ("bench_predict.py", "keras_path_spectra_per_s_per_model", "CNN prediction, Keras path, per model", "spectra/s"),
    ("bench_predict.py", "compile_s", "generate and compile the CPU kernel (once)", "s"),
    ("bench_train.py", "s_per_epoch", "CNN training, one member", "s/epoch"),
    ("bench_train.py", "ridge_all_s", "ridge skip path solve, all training stars", "s"),
    ("bench_train.py", "ensemble_wall_s", "CNN ensemble training, wall", "s"),
    ("bench_filter.py", "fit_s", "similarity filter fit", "s"),
    ("bench_filter.py", "embed_s", "similarity filter, one joint map", "s"),
]
MEMORY = [
    ("bench_datasets.py", "peak_rss_mb", "mock survey generation", "output_mb"),
    ("bench_preprocessing.py", "peak_rss_mb", "GIRAFFE chain", None),
    ("bench_predict.py", "peak_rss_mb", "CNN prediction", None),
    ("bench_train.py", "peak_rss_mb", "CNN training", None),
    ("bench_filter.py", "peak_rss_mb", "similarity filter", None),
    ("bench_io.py", "peak_rss_mb", "reading files", None),
]
# Figure-name prefixes that put another script's figures into an area table.
AREAS = {"scale": ("scale_", "store_", "stream_", "dask_")}


def describe_machine():
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for name in ("skstellar", "numpy", "scipy", "scikit-learn", "tensorflow", "tensorflow-cpu", "keras",
                 "astropy", "openTSNE", "numba", "llvmlite"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return {"cpu": model, "cores": os.cpu_count(), "load": os.getloadavg(), "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions}


def script_args(path, quick):
    if path.name in SIZES:
        return SIZES[path.name][0 if quick else 1]
    return ["--quick"] if quick and "--quick" in path.read_text() else []


def run(path, quick, timeout, machine, date):
    args = script_args(path, quick)
    json_path = RESULTS / (path.stem + ".json")
    json_path.unlink(missing_ok=True)
    supports_json = "--json" in path.read_text() or "add_json_argument" in path.read_text()
    command = [sys.executable, str(path), *args, *(["--json", str(json_path)] if supports_json else [])]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    print(f"$ {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    with open(RESULTS / (path.stem + ".log"), "w") as log:
        try:
            status = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            status = "timeout"
    wall = time.perf_counter() - start
    print(f"  -> exit {status}, {wall:.0f} s; log {RESULTS.relative_to(ROOT) / (path.stem + '.log')}", flush=True)
    record = json.loads(json_path.read_text()) if json_path.exists() else {"figures": {}}
    record.update(script=path.name, args=args, status=status, wall_s=wall, machine=machine, date=date, quick=quick)
    json_path.write_text(json.dumps(record, indent=1) + "\n")
    return record


def fmt(value):
    if isinstance(value, str):
        return value
    if value is None:
        return "--"
    value = float(value)
    if value != value:
        return "nan"
    if abs(value) >= 1000:
        return f"{value:,.0f}".replace(",", " ")
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def size_of(record):
    return " ".join(record.get("args", [])) or "defaults"


def render(records, machine, quick, date):
    by_script = {r["script"]: r for r in records}
    figures = {name: r.get("figures", {}) for name, r in by_script.items()}
    out = [
        "# Benchmark results",
        "",
        f"Written by `python benchmarks/run_all.py{' --quick' if quick else ''}` on {date}. "
        + ("**Quick sizes**: they check that every benchmark runs and give rough figures; the full-size "
           "figures are on the documentation's performance page." if quick else "Full sizes."),
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores; load average at the start "
        f"{' '.join(f'{x:.1f}' for x in machine['load'])} (1, 5, 15 min: above the core count, the machine was "
        "shared and the timings are pessimistic)",
        f"- Python {machine['python']} on {machine['platform']}",
        f"- Versions: {', '.join(machine['versions'])}",
        "",
        "## Runs",
        "",
        table(["script", "arguments", "exit", "wall (s)"],
              [(r["script"], f"`{size_of(r)}`", r["status"], fmt(r["wall_s"])) for r in records]),
    ]

    rows = [(what, fmt(figures[s][key]), unit, s) for s, key, what, unit in THROUGHPUT
            if key in figures.get(s, {})]
    out += ["", "## Throughput", "", table(["what", "figure", "unit", "script"], rows) if rows else "No figures."]

    rows = []
    for s, key, what, output in MEMORY:
        if key in figures.get(s, {}):
            note = f"output {fmt(figures[s][output])} MB" if output and output in figures[s] else ""
            if s == "bench_preprocessing.py" and "peak_over_input" in figures[s]:
                note = f"chain peak {fmt(figures[s]['peak_over_input'])} x its input (input held)"
            rows.append((what, fmt(figures[s][key]), note, s))
    out += ["", "## Memory (peak resident set of the process, MB)", "",
            table(["what", "peak RSS (MB)", "note", "script"], rows) if rows else "No figures."]

    out += ["", "## Accuracy against the thesis and the linear baseline", ""]
    acc = figures.get("bench_accuracy.py", {})
    train = figures.get("bench_train.py", {})
    rows = []
    if acc:
        out.append(f"Held-out mock-survey stars with S/N >= 30 ({acc.get('n_eval', '?')} stars; "
                   f"{acc.get('n_train', '?')} training stars, {acc.get('n_models', '?')} members kept "
                   f"{acc.get('n_keep', '?')}, at most {acc.get('max_epochs', '?')} epochs). Scatter = std of "
                   "predicted - true, bias in brackets; the thesis row is its training-set precision (Ambrosch et "
                   "al. 2023), on real spectra.")
        out.append("")
        rows.append(["thesis (Ambrosch et al. 2023), scatter"] + [fmt(acc.get(f"thesis_scatter_{k}")) for k in LABELS])
        rows.append(["thesis, mean ensemble std"] + [fmt(acc.get(f"thesis_mean_std_{k}")) for k in LABELS])
        names = {"ridge": "ridge on all pixels (linear baseline)", "pcaridge": "PCA + ridge"}
        for method in acc.get("methods", "").split(","):
            if f"{method}_scatter_teff" not in acc:
                continue
            rows.append([f"{names.get(method, method + ' CNN ensemble')}, scatter (bias)"]
                        + [f"{fmt(acc[f'{method}_scatter_{k}'])} ({fmt(acc[f'{method}_bias_{k}'])})" for k in LABELS])
            if f"{method}_mean_std_teff" in acc:
                rows.append([f"  {method}: mean std (calibrated unless thesis)"]
                            + [fmt(acc[f"{method}_mean_std_{k}"]) for k in LABELS])
                rows.append([f"  {method}: fraction within 1 std"]
                            + [fmt(acc[f"{method}_within_1std_{k}"]) for k in LABELS])
    if "scatter_teff" in train:
        rows.append([f"bench_train ensemble ({train.get('ensemble_kept')} of {train.get('ensemble_members')}), "
                     "scatter (bias)"]
                    + [f"{fmt(train[f'scatter_{k}'])} ({fmt(train[f'bias_{k}'])})" for k in LABELS])
    out.append(table(["", *LABEL_TITLES], rows) if rows else "No figures.")

    flt = figures.get("bench_filter.py", {})
    out += ["", "## Similarity filter quality", ""]
    if flt:
        kinds = sorted(k.removeprefix("flagged_pct_") for k in flt if k.startswith("flagged_pct_"))
        rows = [(f"edge stars flagged: {kind}", fmt(flt[f"flagged_pct_{kind}"])) for kind in kinds]
        for key, what in (("false_flags_pct_snr30", "in-box disk stars wrongly flagged, S/N >= 30"),
                          ("false_flags_pct_all", "in-box disk stars wrongly flagged, all S/N"),
                          ("inner_outside_box_pct_all", "training-like spectra outside the training box "
                                                        "(survey of 10 % edge stars; thesis: 12 %)"),
                          ("batched_agreement_pct", "batched maps agree with one joint map")):
            if key in flt:
                rows.append((what, fmt(flt[key])))
        out.append(f"{flt.get('n_train', '?')} training spectra, {flt.get('n_test', '?')} test spectra.")
        out += ["", table(["", "%"], rows)]
    else:
        out.append("No figures.")

    out += ["", "## Scale", ""]
    rows = [(key, fmt(value), s) for s, fig in figures.items() for key, value in fig.items()
            if key.startswith(AREAS["scale"])]
    out.append(table(["figure", "value", "script"], rows) if rows
               else "No scale figures in this run (`bench_filter.py --n-scale N` gives one joint map of N spectra).")

    known = set(SIZES)
    others = [r for r in records if r["script"] not in known]
    if others:
        out += ["", "## Other benchmarks", ""]
        rows = [(r["script"], key, fmt(value)) for r in others for key, value in r.get("figures", {}).items()
                if not key.startswith(AREAS["scale"])]
        out.append(table(["script", "figure", "value"], rows) if rows else "No JSON figures (see the logs).")
    return "\n".join(out) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (minutes), to check the scripts work")
    parser.add_argument("--only", default=None, help="comma-separated script names (with or without .py)")
    parser.add_argument("--skip", default="", help="comma-separated script names to leave out")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per script")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--report-only", action="store_true", help="rebuild the report from the last JSON files")
    args = parser.parse_args(argv)

    def names(text):
        return {n if n.endswith(".py") else n + ".py" for n in text.split(",") if n}

    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.name in names(args.only)]
    scripts = [s for s in scripts if s.name not in names(args.skip)]
    RESULTS.mkdir(exist_ok=True)
    machine = describe_machine()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.report_only:
        # The report of an earlier run: its machine, date and sizes, not today's.
        records = [json.loads((RESULTS / (s.stem + ".json")).read_text()) for s in scripts
                   if (RESULTS / (s.stem + ".json")).exists()]
        if records and "machine" in records[0]:
            machine, date, args.quick = records[0]["machine"], records[0]["date"], records[0]["quick"]
    else:
        records = [run(s, args.quick, args.timeout, machine, date) for s in scripts]
    Path(args.output).write_text(render(records, machine, args.quick, date))
    print(f"wrote {args.output}")
    return 0 if all(r["status"] == 0 for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
