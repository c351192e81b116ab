"""``skstellar train``: fit the preprocessing, similarity filter and CNN ensemble on spectrum files.

Spectra come from files (Gaia-ESO GIRAFFE, setups matched by star, or generic 1-D FITS);
labels from a table astropy reads, matched to the spectra by star id. The fitted pipeline is
saved with a manifest (skstellar.io.save_model); ``skstellar info`` shows it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

from ._files import SpectrumReader, expand_paths, index_files, listing


def add_spectra_options(parser, *, defaults_from_model=False):
    """``--spectra``, ``--format``, ``--setup``, ``--hdu``, ``--rv-keyword``, shared with predict."""
    default = "default: as the model was trained" if defaults_from_model else None
    parser.add_argument("--spectra", nargs="+", required=True, metavar="PATH",
                        help="spectrum files, directories (their *.fits files) or glob patterns (quote them)")
    parser.add_argument("--format", choices=("ges", "galah", "fits"), default=None,
                        help="ges: Gaia-ESO GIRAFFE files, one star and setup per file, setups matched by "
                             "the star's CNAME; galah: GALAH files <sobject_id><camera 1-4>.fits, setups "
                             "CCD1-CCD4 matched by sobject_id; fits: generic 1-D FITS, one star per file, "
                             "id = file name, "
                             f"one setup (--setup) ({default or 'default: ges'})")
    parser.add_argument("--setup", default=None,
                        help=f"with --format fits: the setup the files hold, e.g. HR21 ({default or 'required'})")
    parser.add_argument("--hdu", default=None,
                        help=f"with --format fits: the flux HDU, number or EXTNAME ({default or 'default: 0'})")
    parser.add_argument("--rv-keyword", default=None, metavar="KEY",
                        help="with --format fits: header keyword of the radial velocity (km/s) to shift "
                             f"spectra to the rest frame; without it they are taken as rest-frame ({default or ''})")
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="processes reading files (and training members / the filter) in parallel; "
                             "-1: all cores (default: one)")


def add_parser(sub):
    parser = sub.add_parser(
        "train", help="train a model on spectrum files and a label table", description=__doc__.replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example:\n  skstellar train --spectra 'ges/*.fits' --labels idr6.fits --id-column CNAME "
               "--label-columns TEFF LOGG FEH --preset ambrosch2023 --out model.joblib",
    )
    add_spectra_options(parser)
    parser.add_argument("--labels", required=True, metavar="TABLE",
                        help="label table: any format astropy reads (FITS, ECSV, CSV, VOTable); masked or NaN "
                             "values are missing labels (a star keeps its other labels)")
    parser.add_argument("--id-column", default="CNAME", metavar="COL",
                        help="column of the label table holding the star ids of the spectra (default: CNAME)")
    parser.add_argument("--label-columns", nargs="+", required=True, metavar="COL",
                        help="columns of the label table to learn, e.g. TEFF LOGG FEH")
    parser.add_argument("--out", required=True, metavar="MODEL",
                        help="the model file to write, e.g. model.joblib")
    group = parser.add_argument_group("preprocessing (one of --preset or --setups)")
    group.add_argument("--preset", default=None,
                       help="ambrosch2023: GIRAFFE HR10 + HR21 (Ambrosch et al. 2023); nepal2023: HR15N "
                            "(Nepal et al. 2023). Default ambrosch2023 unless --setups is given")
    group.add_argument("--setups", nargs="+", default=None, metavar="SETUP",
                       help="another instrument: the setups to stitch, in this order")
    group.add_argument("--steps", nargs="+", default=None, metavar="STEP",
                       help="with --setups: output bin width (Angstrom), one for all or one per setup "
                            "(default: the median pixel width)")
    group.add_argument("--ranges", nargs="+", default=None, metavar="LO:HI",
                       help="with --setups: wavelength range (Angstrom) of each setup's output grid, one for all "
                            "or one per setup (default: the range every training spectrum covers)")
    parser.add_argument("--on-unmatched", choices=("error", "skip"), default="error",
                        help="spectra without a row in the label table, or rows without spectra: error (default) "
                             "stops naming the first few; skip leaves them out, says how many and writes their "
                             "ids to MODEL's name + .skipped.ecsv. Unreadable files and stars lacking a setup are "
                             "always skipped and listed")
    cuts = parser.add_argument_group("training-set quality cuts (Ambrosch et al. 2023, Sect. 4.1.1)")
    cuts.add_argument("--quality-cuts", action="store_true",
                      help="train only on stars of the label table passing skstellar.science.quality_cuts: "
                           "S/N >= 30, e_Teff <= 200 K, e_logg <= 0.3, abundance errors <= 0.2 dex, empty flags, "
                           "vsini <= 20 km/s, |[M/H]-[Fe/H]| <= 0.2; prints the stars each cut rejects")
    cuts.add_argument("--quality-columns", nargs="+", default=None, metavar="CUT=COL[,COL]",
                      help="the label table's column names where they differ from the defaults, e.g. snr=SNR "
                           "e_teff=E_TEFF e_logg=E_LOGG e_abundance=E_MG1,E_AL1 flags=TECH,PECULI vsini=VSINI "
                           "mh_feh=MH,FEH")
    cuts.add_argument("--quality-params", default=None, metavar="JSON",
                      help='other quality_cuts arguments, e.g. \'{"min_snr": 40, "max_vsini": null}\' (null skips '
                           'a cut) or \'{"on_missing": "skip"}\' to skip the cuts whose columns the table lacks')
    ens = parser.add_argument_group("ensemble")
    ens.add_argument("--n-models", type=int, default=10, help="CNNs trained, each with its own seed (default 10)")
    ens.add_argument("--n-keep", type=int, default=8, help="CNNs kept: the lowest validation loss (default 8)")
    ens.add_argument("--max-epochs", type=int, default=300, help="upper bound on epochs per CNN (default 300)")
    ens.add_argument("--patience", type=int, default=None,
                     help="epochs without improvement before a CNN stops (default: the recipe's, 10; "
                          "the thesis preset's is 30)")
    ens.add_argument("--validation-fraction", type=float, default=0.4,
                     help="stars held out for early stopping, member choice, error calibration and the "
                          "summary's bias and scatter (default 0.4)")
    ens.add_argument("--seed", type=int, default=0,
                     help="seed of the validation split, the filter and the CNNs (default 0)")
    ens.add_argument("--cnn-params", default=None, metavar="JSON",
                     help='more CNNLabelRegressor parameters, e.g. \'{"preset": "thesis"}\' or a small '
                          'network \'{"filters": [2], "kernel_size": 5, "dense_units": [4]}\'')
    flt = parser.add_argument_group("similarity filter")
    flt.add_argument("--no-filter", action="store_true",
                     help="leave out the t-SNE similarity filter (no training_like flags at predict)")
    flt.add_argument("--filter-params", default=None, metavar="JSON",
                     help='more TSNESimilarityFilter parameters, e.g. \'{"perplexity": 10}\'')
    parser.set_defaults(run=run)
    return parser


def _json_option(name, text):
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name}: expected a JSON object {{\"parameter\": value}}; got {text!r}.")
    return value


def _quality_columns(items):
    """``--quality-columns snr=SNR flags=TECH,PECULI`` as quality_cuts' ``columns``."""
    if items is None:
        return None
    columns = {}
    for item in items:
        cut, sep, names = item.partition("=")
        if not sep or not cut or not names:
            raise ValueError(f"--quality-columns: expected CUT=COL or CUT=COL1,COL2; got {item!r}.")
        names = [n.strip() for n in names.split(",") if n.strip()]
        columns[cut.strip()] = names[0] if len(names) == 1 else names
    return columns


def apply_quality_cuts(args, table, path):
    """The label-table rows passing the cuts (boolean mask); prints what each cut rejected."""
    from skstellar.science import quality_cuts

    params = _json_option("--quality-params", args.quality_params)
    columns = _quality_columns(args.quality_columns)
    if columns is not None:
        params["columns"] = {**params.get("columns", {}), **columns}
    try:
        mask, counts = quality_cuts(table, **params)
    except KeyError as exc:
        raise ValueError(f"{path}: {exc.args[0] if exc.args else exc} (name it with --quality-columns, or pass "
                         "--quality-params '{\"on_missing\": \"skip\"}').") from None
    except TypeError as exc:
        raise ValueError(f"--quality-params: {exc}") from None
    print(f"quality cuts: {int(mask.sum())} of {len(mask)} rows of {path} pass")
    for row in counts:
        print(f"  {row['cut']:12s} {row['columns']:24s} {row['threshold']:>10s}  rejects {row['rejected']:6d} "
              f"(only this cut: {row['only']})")
    return mask


def read_labels(path, id_column, label_columns, *, keep=None):
    """``(ids, y, units, kept)``: str ids, float labels with NaN where missing, units by column,
    and whether each row passes ``keep(table, path)`` (all True without it)."""
    import numpy as np
    from astropy.table import Table

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such label table.")
    try:
        table = Table.read(path)
    except Exception as exc:  # noqa: BLE001 -- astropy raises many types for a foreign file
        raise ValueError(f"{path}: astropy cannot read this label table ({' '.join(str(exc).split())}).") from None
    for column in [id_column, *label_columns]:
        if column not in table.colnames:
            raise ValueError(f"{path}: no column {column!r} in the label table; its columns are "
                             f"{listing(table.colnames, 30)}.")
    ids = np.array([str(v).strip() for v in np.ma.filled(table[id_column].astype(str), "")])
    seen = {}
    for row, star_id in enumerate(ids):
        if star_id in seen:
            raise ValueError(f"{path}: star {star_id!r} is in rows {seen[star_id]} and {row} of column "
                             f"{id_column!r}; give each star one row.")
        seen[star_id] = row
    y = np.empty((len(table), len(label_columns)))
    for j, column in enumerate(label_columns):
        try:
            y[:, j] = np.ma.filled(np.ma.asarray(table[column], dtype=float), np.nan)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: column {column!r} is not numeric "
                             f"(dtype {table[column].dtype}).") from None
    units = {c: str(table[c].unit) if table[c].unit is not None else "" for c in label_columns}
    kept = np.ones(len(table), dtype=bool) if keep is None else np.asarray(keep(table, path), dtype=bool)
    return ids, y, units, kept


def run(args):
    import numpy as np
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline

    from skstellar.io import save_model, write_predictions

    from ._presets import preprocessor

    t_start = time.perf_counter()
    cnn_params = _json_option("--cnn-params", args.cnn_params)
    filter_params = _json_option("--filter-params", args.filter_params)
    reader = SpectrumReader.from_args(args)
    keep = (lambda table, path: apply_quality_cuts(args, table, path)) if args.quality_cuts else None
    if not args.quality_cuts and (args.quality_columns or args.quality_params):
        raise ValueError("--quality-columns and --quality-params need --quality-cuts.")
    ids_table, y_table, units, passes = read_labels(args.labels, args.id_column, args.label_columns, keep=keep)
    preset, setups, prep = preprocessor(args, reader_rv=reader.has_rv)
    paths = expand_paths(args.spectra)
    print(f"{len(paths)} spectrum files; setups {', '.join(setups)}"
          + (f" (preset {preset})" if preset else ""))

    index = index_files(reader, paths)
    skipped = [(None, str(p), f"unreadable: {why}") for p, why in index.bad.items()]
    if index.bad:
        print(f"skipped {len(index.bad)} unreadable file(s): "
              + listing(f"{p} ({why})" for p, why in index.bad.items()))
    missing = index.missing(setups)
    if missing:
        print(f"skipped {len(missing)} star(s) lacking a setup: "
              + listing(f"{i} (no {', '.join(m)})" for i, m in missing.items()))
        skipped += [(i, "", f"missing setup {', '.join(m)}") for i, m in missing.items()]
    complete = [i for i in index.stars if i not in missing]

    row_of = {star_id: row for row, star_id in enumerate(ids_table)}
    no_labels = [i for i in complete if i not in row_of]
    # a row the quality cuts reject is left out whether or not it has spectra, never "unmatched"
    rejected = {i for i, ok in zip(ids_table, passes) if not ok}
    no_spectra = [i for i in ids_table if i not in index.stars and i not in rejected]
    cut = [i for i in complete if i in rejected]
    empty = [i for i in complete if i in row_of and np.isnan(y_table[row_of[i]]).all()]
    for ids, what in ((no_labels, f"spectra have no row in {args.labels}"),
                      (no_spectra, f"rows of {args.labels} have no spectrum file")):
        if ids and args.on_unmatched == "error":
            raise ValueError(f"{len(ids)} {what}: {listing(ids)} (pass --on-unmatched skip to leave them out).")
        if ids:
            print(f"skipped: {len(ids)} {what}: {listing(ids)}")
    if empty:
        print(f"skipped {len(empty)} star(s) with every label missing: {listing(empty)}")
    skipped += [(i, "", "no labels") for i in no_labels] + [(i, "", "no spectrum") for i in no_spectra]
    skipped += [(i, "", "every label missing") for i in empty]
    if args.quality_cuts:
        print(f"skipped {len(cut)} star(s) with spectra that fail the quality cuts")
        skipped += [(i, "", "fails the quality cuts") for i in cut]
    left_out = set(empty) | set(cut)
    used = [i for i in complete if i in row_of and i not in left_out]
    if len(used) < 2:
        raise ValueError(f"only {len(used)} star(s) have both spectra in every setup {setups} and labels; "
                         "nothing to train on.")

    t0 = time.perf_counter()
    spectra = reader.read(index.files(used, setups), n_jobs=args.n_jobs)
    y = y_table[[row_of[i] for i in spectra.ids]]
    print(f"read {len(spectra)} stars ({time.perf_counter() - t0:.1f} s)")

    train_rows, val_rows = train_test_split(np.arange(len(spectra)), test_size=args.validation_fraction,
                                            random_state=args.seed)
    X_val = prep.fit(spectra[train_rows]).transform(spectra[val_rows])
    steps = list(prep.steps)
    if not args.no_filter:
        from skstellar.filters import TSNESimilarityFilter

        jobs = {} if args.n_jobs is None else {"n_jobs": args.n_jobs}
        steps.append(("similarity", TSNESimilarityFilter(**{"random_state": args.seed, **jobs, **filter_params})))
    from skstellar.models import CNNLabelRegressor

    cnn = CNNLabelRegressor(**{"n_models": args.n_models, "n_keep": args.n_keep, "max_epochs": args.max_epochs,
                               "patience": args.patience, "random_state": args.seed, "n_jobs": args.n_jobs,
                               "verbose": 1, "label_names": list(args.label_columns), **cnn_params})
    pipe = Pipeline(steps + [("cnn", cnn)])
    t0 = time.perf_counter()
    pipe.fit(spectra[train_rows], y[train_rows], cnn__validation_data=(X_val, y[val_rows]))
    t_fit = time.perf_counter() - t0

    pred = pipe[-1].predict(X_val).reshape(len(val_rows), -1)
    validation = {}
    print(f"trained {cnn.n_models} CNN(s), kept {cnn.n_keep} ({t_fit:.1f} s); "
          f"{len(train_rows)} training + {len(val_rows)} validation stars")
    for j, name in enumerate(args.label_columns):
        d = pred[:, j] - y[val_rows, j]
        d = d[np.isfinite(d)]
        bias, scatter = (float(np.mean(d)), float(np.std(d))) if d.size else (float("nan"),) * 2
        validation[name] = {"n": int(d.size), "bias": bias, "scatter": scatter}
        print(f"  {name:12s} validation n={d.size:5d}  bias {bias:+10.4g}  scatter {scatter:10.4g} {units[name]}")

    out = Path(args.out)
    extra = {"command": shlex.join(["skstellar", *args.argv]), "reader": reader.settings(),
             "n_train": len(train_rows), "n_validation": len(val_rows),
             "validation": validation, "skipped": len(skipped)}
    save_model(pipe, out, training_labels=y, label_units=units, preset=preset, extra=extra)
    print(f"saved the model to {out}")
    if skipped:
        skipped_path = out.with_name(out.name + ".skipped.ecsv")
        write_predictions({"id": [s[0] or "" for s in skipped], "file": [s[1] for s in skipped],
                           "reason": [s[2] for s in skipped]}, skipped_path, overwrite=True)
        print(f"wrote the {len(skipped)} skipped stars and files to {skipped_path}")
    print(f"done in {time.perf_counter() - t_start:.1f} s")
    return 0
