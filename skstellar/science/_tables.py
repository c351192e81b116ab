"""Reading columns from the tables the science helpers accept, and taking rows back out.

A table is an astropy Table, a pandas DataFrame (or anything with ``columns`` and
``iloc``), a numpy structured array or a dict of equal-length 1-D arrays. Nothing here
imports pandas: a DataFrame is recognised by what it has.
"""

from collections.abc import Mapping

import numpy as np
from astropy.table import Table

__all__ = ["column", "column_names", "n_rows", "take"]


def column_names(table):
    """The column names of a table, or a TypeError naming what was passed."""
    if isinstance(table, Table):
        return list(table.colnames)
    if hasattr(table, "columns") and hasattr(table, "iloc"):
        return [str(c) for c in table.columns]
    if isinstance(table, np.ndarray) and table.dtype.names:
        return list(table.dtype.names)
    if isinstance(table, Mapping):
        return [str(k) for k in table]
    raise TypeError(
        "expected a table: an astropy Table, a pandas DataFrame, a numpy structured array or a "
        f"dict of columns; got {type(table).__name__}."
    )


def n_rows(table):
    if isinstance(table, Mapping) and not isinstance(table, Table):
        names = column_names(table)
        return len(np.asarray(table[names[0]])) if names else 0
    return len(table)


def column(table, name, *, what="", dtype=np.float64):
    """One column as a 1-D ndarray (masked entries as NaN); a KeyError names a missing one.

    ``what`` says what the column is for (e.g. ``"the log g cut"``) in the error message.
    """
    names = column_names(table)
    if name not in names:
        purpose = f" (for {what})" if what else ""
        raise KeyError(
            f"the table has no column {name!r}{purpose}; its columns are {names}. "
            "Pass the name of the column to use, or skip what needs it."
        )
    values = table[name]
    if dtype is None:
        return np.asarray(values)
    if np.ma.isMaskedArray(values):
        values = np.ma.asarray(values, dtype=dtype).filled(np.nan)
    try:
        out = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError(f"column {name!r} is not numeric (dtype {np.asarray(values).dtype}).") from None
    if out.ndim != 1:
        raise ValueError(f"column {name!r} must be 1-D, got shape {out.shape}.")
    return out


def take(table, rows):
    """The rows ``rows`` (integer indices) of a table, as the same kind of table."""
    rows = np.asarray(rows, dtype=np.intp)
    if isinstance(table, Table) or (isinstance(table, np.ndarray) and table.dtype.names):
        return table[rows]
    if hasattr(table, "columns") and hasattr(table, "iloc"):
        return table.iloc[rows]
    return {k: np.asarray(v)[rows] for k, v in table.items()}
