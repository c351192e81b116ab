"""``skstellar predict``: labels for spectrum files from a model saved by ``skstellar train``.

The output has one row per star of the input files, in the order of their first file, and
one per file that could not be read: none is dropped. A row without labels (empty: NaN in
FITS, blank in CSV) says why in its ``status`` column:

- ``ok``: labels predicted;
- ``unreadable file: <why>``: the file is not a readable spectrum file (``id`` empty);
- ``missing setup: <setups>``: the star has no file of a setup the model needs;
- ``no overlap with the model's grid: <setup>``: the spectrum covers none of the model's
  wavelength bins of that setup;
- ``<step> failed: <why>``: a preprocessing step refused the star (e.g. an empty
  spectrum, or one not covering the grid of a model that does not pad).

Files are read in chunks of ``--chunk-size`` stars, so memory does not grow with the
number of files; the similarity filter judges each chunk in its own joint map. Exit code
0 when every row has labels, 3 when some have not (the table is written either way), 1 on
an error.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from ._files import SpectrumReader, expand_paths, index_files, listing
from .train import add_spectra_options

OK = "ok"
EXIT_OK, EXIT_INCOMPLETE = 0, 3


def add_parser(sub):
    parser = sub.add_parser(
        "predict", help="predict labels for spectrum files with a trained model", description=__doc__.replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example:\n  skstellar predict --model model.joblib --spectra 'ges/*.fits' --out labels.fits",
    )
    parser.add_argument("--model", required=True, metavar="MODEL", help="a model file written by skstellar train")
    add_spectra_options(parser, defaults_from_model=True)
    parser.add_argument("--out", required=True, metavar="TABLE",
                        help="the prediction table to write (replaced if it exists): .fits, .ecsv or .csv")
    parser.add_argument("--chunk-size", type=int, default=1000, metavar="N",
                        help="stars read and predicted at a time; bounds the memory (default 1000)")
    parser.set_defaults(run=run)
    return parser


def _message(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


def predict_chunk(model, spectra):
    """Predict a SpectralSet, refusing stars one by one rather than failing the batch.

    Returns ``(table, rows, failed)``: the :func:`skstellar.predict_table` table of the
    stars predicted, their row numbers in ``spectra``, and ``{row: status}`` of the others.
    """
    import numpy as np

    from skstellar import SpectralSet, predict_table

    failed = {}
    alive = np.arange(len(spectra))
    data, k = spectra, 0
    # preprocessing: the steps that take a SpectralSet, run here so that one star's bad
    # spectrum costs its own row only
    while k < len(model.steps) and isinstance(data, SpectralSet):
        name, step = model.steps[k]
        try:
            out = step.transform(data)
        except Exception:  # noqa: BLE001 -- find the stars the step refuses, below
            keep = []
            for j in range(len(data)):
                try:
                    step.transform(data[[j]])
                    keep.append(j)
                except Exception as exc:  # noqa: BLE001 -- any refusal is this star's status
                    failed[int(alive[j])] = f"{name} failed: {_message(exc)}"
            if not keep:
                return None, alive[:0], failed
            alive, data = alive[keep], data[np.asarray(keep)]
            out = step.transform(data)
        data, k = out, k + 1
        if isinstance(data, SpectralSet):
            lost = np.zeros(len(data), dtype=bool)
            for setup in data.setups:
                column = f"n_padded_{setup}"
                if column in data.meta.colnames:
                    # every bin padded with continuum: nothing of this setup is left
                    gone = np.asarray(data.meta[column]) >= data.setup_data(setup).flux.shape[1]
                    for j in np.flatnonzero(gone & ~lost):
                        failed[int(alive[j])] = f"no overlap with the model's grid: {setup}"
                    lost |= gone
            if lost.all():
                return None, alive[:0], failed
            if lost.any():
                alive, data = alive[~lost], data[np.flatnonzero(~lost)]
    table = predict_table(model[k:], data)
    table["id"] = np.asarray(spectra.ids)[alive]
    return table, alive, failed


def run(args):
    import numpy as np
    from astropy.table import MaskedColumn, Table, vstack
    from tqdm.auto import tqdm

    from skstellar import StarFlag
    from skstellar.io import load_model, model_manifest, write_predictions

    t_start = time.perf_counter()
    if args.chunk_size < 1:
        raise ValueError(f"--chunk-size must be a positive number of stars; got {args.chunk_size}.")
    model, manifest = load_model(args.model, with_manifest=True)
    if not hasattr(model, "steps"):
        raise ValueError(f"{args.model}: holds a {type(model).__name__}, not a pipeline from skstellar train.")
    if manifest is None:  # a pipeline saved with joblib.dump: what can be read off it
        manifest = model_manifest(model)
    setups = list(manifest.get("setups") or [])
    if not setups:
        raise ValueError(f"{args.model}: the model has no wavelength grid (no Rebinner step); "
                         "it was not made by skstellar train.")
    labels = [label["name"] for label in manifest.get("labels", [])]
    reader = SpectrumReader.from_args(args, defaults=manifest.get("reader"))
    paths = expand_paths(args.spectra)
    print(f"{len(paths)} spectrum files; the model needs setups {', '.join(setups)}")

    index = index_files(reader, paths)
    n = len(index.order)
    row_of = {key: row for row, key in enumerate(index.order)}
    ids = ["" if kind == "file" else key for kind, key in index.order]
    files = [str(key) if kind == "file" else "; ".join(str(p) for p in index.stars[key].values())
             for kind, key in index.order]
    status = [OK] * n
    for path, why in index.bad.items():
        status[row_of[("file", path)]] = f"unreadable file: {why}"
    missing = index.missing(setups)
    for star_id, lacks in missing.items():
        status[row_of[("star", star_id)]] = f"missing setup: {', '.join(lacks)}"
    complete = [i for i in index.stars if i not in missing]

    tables, done = [], []
    chunks = range(0, len(complete), args.chunk_size)
    for start in tqdm(chunks, desc="predicting", unit="chunk", disable=len(chunks) < 2):
        chunk = complete[start:start + args.chunk_size]
        spectra = reader.read(index.files(chunk, setups), n_jobs=args.n_jobs)
        table, _, failed = predict_chunk(model, spectra)
        for j, why in failed.items():
            status[row_of[("star", str(spectra.ids[j]))]] = why
        if table is not None:
            tables.append(table)
            done.extend(row_of[("star", str(i))] for i in table["id"])

    out = Table({"id": np.array(ids, dtype=str), "status": np.array(status, dtype=str)})
    empty = ["id", *(f"{e}{name}" for name in labels for e in ("", "e_"))]
    predicted = vstack(tables) if tables else Table({name: np.zeros(0) for name in empty})
    done = np.asarray(done, dtype=int)
    flags = np.zeros(n, dtype=np.int64)
    for row, text in enumerate(status):
        if text.startswith("unreadable file"):
            flags[row] |= int(StarFlag.FILE_UNREADABLE)
        elif text.startswith("missing setup"):
            flags[row] |= int(StarFlag.SETUP_MISSING)
    for name in predicted.colnames[1:]:
        column = np.asarray(predicted[name])
        if name == "flags":
            flags[done] |= column.astype(np.int64)
        elif name == "status":
            # the chain's own reason for a star it read but could not (or should not) label
            for row, text in zip(done, column):
                if text != OK:
                    status[row] = str(text)
            out["status"] = np.array(status, dtype=str)
        elif column.dtype.kind == "f":
            values = np.full(n, np.nan)
            values[done] = column
            out[name] = values
        else:  # flags: masked where there is no prediction
            values = np.zeros(n, dtype=column.dtype)
            values[done] = column
            mask = np.ones(n, dtype=bool)
            mask[done] = False
            out[name] = MaskedColumn(values, mask=mask)
    out["flags"] = flags
    out["flags"].description = predicted["flags"].description if "flags" in predicted.colnames else None
    out["files"] = np.array(files, dtype=str)
    write_predictions(out, Path(args.out), overwrite=True)

    kinds = Counter(s.split(":")[0] for s in status)
    print(f"{n} rows: " + ", ".join(f"{count} {kind}" for kind, count in kinds.most_common()))
    unlabelled = ~np.isfinite(np.column_stack([np.asarray(out[name], float) for name in labels])).all(axis=1) \
        if labels else np.zeros(n, dtype=bool)
    bad = [(ids[r] or files[r], status[r]) for r in range(n) if unlabelled[r] or status[r].startswith(
        ("unreadable file", "missing setup", "no overlap"))]
    if bad:
        print("without labels: " + listing(f"{who} ({why})" for who, why in bad))
    print(f"wrote {args.out} ({time.perf_counter() - t_start:.1f} s)")
    return EXIT_INCOMPLETE if bad else EXIT_OK
