"""Writing (and reading back) tables of predicted labels: FITS, ECSV or CSV via astropy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from astropy.table import Table

from ._fitsfile import ReadError

__all__ = ["write_predictions", "read_predictions"]

# format name -> astropy format; suffixes recognised for each
_FORMATS = {"fits": "fits", "ecsv": "ascii.ecsv", "csv": "ascii.csv"}
_SUFFIXES = {
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".fits.gz": "fits",
    ".ecsv": "ecsv",
    ".csv": "csv",
}


def write_predictions(table_or_arrays, path, *, format=None, overwrite=False):
    """Write predicted labels, their uncertainties, flags and star ids to a file.

    Parameters
    ----------
    table_or_arrays : astropy Table, dict of columns, or tuple
        Either a table (e.g. from `skstellar.predict_table`) or a dict of columns, written
        as they are, or a tuple ``(ids, y, y_std, label_names)`` or
        ``(ids, y, y_std, label_names, flags)``:

        - ids : array of shape (n_stars,), written as str column ``id``;
        - y : array of shape (n_stars,) or (n_stars, n_labels), one column per label;
        - y_std : array like ``y`` or None, the uncertainties, in columns ``e_<label>``;
        - label_names : sequence of n_labels str;
        - flags : dict ``{name: array of shape (n_stars,)}`` or None, e.g. the boolean
          flags of `skstellar.filters.TSNESimilarityFilter`.
    path : str or path-like
        The output file.
    format : {"fits", "ecsv", "csv"} or None, default=None
        None takes the format from the suffix: ``.fits`` (``.fit``, ``.fts``,
        ``.fits.gz``), ``.ecsv`` or ``.csv``.
    overwrite : bool, default=False
        Replace an existing file; otherwise an existing file is an error.

    Returns
    -------
    astropy.table.Table
        The table written.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    ValueError
        Unknown format or suffix; arrays whose lengths or shapes disagree (naming which);
        label names of the wrong number, repeated or clashing with ``id``/flag columns.

    See Also
    --------
    read_predictions : Read such a file back with the same column types.

    Notes
    -----
    ECSV keeps every dtype, unit and ``table.meta`` exactly. FITS keeps dtypes and the
    units the FITS standard knows (K, not dex); its
    column names should be ASCII letters, digits and underscores (astropy warns otherwise,
    e.g. for ``"[Fe/H]"``), and ``table.meta`` values a FITS header cannot hold (dicts,
    nested lists) are written as JSON text. CSV keeps only the values: read it with
    :func:`read_predictions` to get ids back as text and flags as booleans.

    Examples
    --------
    >>> import shutil, tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from skstellar.io import read_predictions, write_predictions
    >>> folder = Path(tempfile.mkdtemp())
    >>> y = np.array([[4800.0, 2.5], [5600.0, 4.3]])
    >>> t = write_predictions((["a", "b"], y, 0.01 * y, ["teff", "logg"],
    ...                        {"unlike_training": np.array([False, True])}),
    ...                       folder / "labels.csv")
    >>> t.colnames
    ['id', 'teff', 'e_teff', 'logg', 'e_logg', 'unlike_training']
    >>> read_predictions(folder / "labels.csv")["unlike_training"].tolist()
    [False, True]
    >>> shutil.rmtree(folder)
    """
    path = Path(path)
    fmt = _format(path, format)
    if isinstance(table_or_arrays, Table):
        table = table_or_arrays.copy(copy_data=False)
    elif isinstance(table_or_arrays, Mapping):
        table = Table(dict(table_or_arrays))
    elif isinstance(table_or_arrays, (tuple, list)) and len(table_or_arrays) in (4, 5):
        table = _table_from_arrays(*table_or_arrays)
    else:
        raise TypeError(
            "write_predictions needs an astropy Table, a dict of columns, or a tuple "
            "(ids, y, y_std, label_names[, flags]); got "
            f"{type(table_or_arrays).__name__}."
        )
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    if fmt == "fits":
        table.meta = {k: _fits_meta_value(v) for k, v in table.meta.items()}
        for name in table.colnames:
            # A unit the FITS standard lacks (dex) would be written as an unreadable TUNIT
            # with a warning per column; FITS drops it, ECSV keeps it.
            unit = table[name].unit
            if unit is not None and not _fits_unit(unit):
                table[name].unit = None
    table.write(path, format=_FORMATS[fmt], overwrite=overwrite)
    return table


def read_predictions(path, *, format=None):
    """Read a file written by :func:`write_predictions` into an astropy Table.

    Ids come back as str (also numeric-looking ones from CSV, leading zeros kept), FITS
    byte strings as str, and CSV columns of ``True``/``False`` as booleans.

    Parameters
    ----------
    path : str or path-like
    format : {"fits", "ecsv", "csv"} or None, default=None
        None takes the format from the suffix, as :func:`write_predictions` does.

    Returns
    -------
    astropy.table.Table

    Raises
    ------
    ReadError
        The file is not a table of that format, has no ``id`` column, or (FITS) holds more
        than one table or an image, as a spectrum file does: the message names the file.
    """
    path = Path(path)
    fmt = _format(path, format)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file.")
    kwargs = {"converters": {"id": str}} if fmt == "csv" else {}
    try:
        if fmt == "fits":
            _check_one_table(path)
        table = Table.read(path, format=_FORMATS[fmt], **kwargs)
    except ReadError:
        raise
    except Exception as exc:  # astropy's parsers raise many types; name the file
        raise ReadError(
            f"{path}: not a predictions table in {fmt.upper()} format ({type(exc).__name__}: {exc})."
        ) from exc
    if "id" not in table.colnames:
        raise ReadError(
            f"{path}: not a predictions table: no 'id' column (columns: {table.colnames[:10]})."
        )
    for name in table.colnames:
        col = table[name]
        if col.dtype.kind == "S":
            table[name] = np.char.decode(np.asarray(col), "utf-8")
        elif fmt == "csv" and col.dtype.kind == "U" and len(col):
            values = set(np.unique(np.asarray(col)).tolist())
            if values <= {"True", "False"}:
                table[name] = np.asarray(col) == "True"
    if "id" in table.colnames and table["id"].dtype.kind != "U":
        table["id"] = np.asarray(table["id"]).astype(str)
    return table


def _check_one_table(path: Path):
    """A predictions FITS file is an empty primary HDU and one table (what astropy writes)."""
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        kinds = [f"{i}: {type(h).__name__} {h.name!r}" for i, h in enumerate(hdul)]
        if len(hdul) != 2 or hdul[0].data is not None or not isinstance(hdul[1], fits.BinTableHDU):
            raise ReadError(
                f"{path}: not a predictions table: write_predictions writes one table after an "
                f"empty primary HDU, this file has {len(hdul)} HDUs ({'; '.join(kinds)}). Is it a "
                "spectrum file?"
            )


def _format(path: Path, format):
    if format is not None:
        if format not in _FORMATS:
            raise ValueError(f"format must be one of {sorted(_FORMATS)} or None; got {format!r}.")
        return format
    name = path.name.lower()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return _SUFFIXES[suffix]
    raise ValueError(
        f"{path}: cannot tell the format from the suffix; use one of "
        f"{sorted(_SUFFIXES)} or pass format= one of {sorted(_FORMATS)}."
    )


def _table_from_arrays(ids, y, y_std, label_names, flags=None) -> Table:
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be 1-D (one per star); got shape {ids.shape}.")
    n = ids.shape[0]
    y = np.asarray(y)
    if y.ndim == 1:
        y = y[:, np.newaxis]
    if y.ndim != 2 or y.shape[0] != n:
        raise ValueError(f"y must have shape ({n},) or ({n}, n_labels) for {n} ids; got {y.shape}.")
    if y_std is not None:
        y_std = np.asarray(y_std)
        if y_std.ndim == 1:
            y_std = y_std[:, np.newaxis]
        if y_std.shape != y.shape:
            raise ValueError(f"y_std has shape {y_std.shape} but y has {y.shape}.")
    names = [str(name) for name in np.atleast_1d(label_names)]
    if len(names) != y.shape[1]:
        raise ValueError(f"{len(names)} label_names {names} for {y.shape[1]} columns of y.")
    table = Table({"id": ids.astype(str)})
    for k, name in enumerate(names):
        _add_column(table, name, y[:, k], "label")
        if y_std is not None:
            _add_column(table, f"e_{name}", y_std[:, k], "uncertainty")
    if flags is not None:
        if not isinstance(flags, Mapping):
            raise TypeError(f"flags must be a dict {{name: array}}; got {type(flags).__name__}.")
        for name, values in flags.items():
            values = np.asarray(values)
            if values.shape != (n,):
                raise ValueError(f"flag {name!r} has shape {values.shape}; expected ({n},).")
            _add_column(table, str(name), values, "flag")
    return table


def _add_column(table, name, values, what):
    if name in table.colnames:
        raise ValueError(
            f"{what} column {name!r} would repeat an existing column {table.colnames}."
        )
    table[name] = values


def _fits_unit(unit):
    try:
        unit.to_string("fits")
    except ValueError:
        return False
    return True


def _fits_meta_value(value):
    """A table.meta value a FITS header can hold; dicts and nested lists become JSON text."""
    if isinstance(value, (str, bool, int, float, np.generic)):
        return value
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, (str, bool, int, float, np.generic)) for v in value
    ):
        return list(value)
    return json.dumps(value, default=str)

