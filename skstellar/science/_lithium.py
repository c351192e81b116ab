"""The Li-rich giants of Nepal et al. (2023): the selection of the thesis, Sect. 5.4."""

from numbers import Real

import numpy as np

from ._tables import column, column_names, n_rows, take

__all__ = ["LI_RICH_COLUMNS", "select_li_rich"]

#: Default column per quantity; ``columns=`` of :func:`select_li_rich` overrides any of them.
LI_RICH_COLUMNS = {
    "ali": "ali", "logg": "logg", "teff": "teff", "snr": "snr",
    "e_teff": "e_teff", "e_logg": "e_logg", "e_feh": "e_feh", "e_ali": "e_ali",
}
# quantity -> (keyword of its threshold, comparison); strict, as written in the thesis.
_CUTS = {
    "ali": ("min_ali", np.greater), "logg": ("max_logg", np.less), "teff": ("max_teff", np.less),
    "snr": ("min_snr", np.greater), "e_teff": ("max_e_teff", np.less),
    "e_logg": ("max_e_logg", np.less), "e_feh": ("max_e_feh", np.less),
    "e_ali": ("max_e_ali", np.less),
}


def select_li_rich(
    table,
    *,
    min_ali=2.0,
    max_logg=3.5,
    max_teff=5500.0,
    min_snr=25.0,
    max_e_teff=50.0,
    max_e_logg=0.1,
    max_e_feh=0.1,
    max_e_ali=0.1,
    columns=None,
    on_missing="raise",
):
    """The Li-rich giants of a catalogue, richest first (Nepal et al. 2023, thesis Sect. 5.4).

    A star is selected when A(Li) > 2, log g < 3.5, Teff < 5500 K, S/N > 25, e_Teff < 50 K
    and e_log g, e_[M/H], e_A(Li) < 0.1 dex. Every threshold is a keyword; ``None`` skips
    that cut. A star with NaN (or masked) in a column that a cut reads fails that cut, and
    a star without A(Li) is never selected even when its cut is skipped: a star whose label
    is unknown is never selected.

    Parameters
    ----------
    table : astropy Table, pandas DataFrame, structured array or dict of columns
        The catalogue, e.g. the output of :func:`skstellar.predict_table`, whose
        ``e_<label>`` columns (the ensemble's calibrated std) the error cuts read; it has
        no S/N: add it from the spectra's metadata, or pass ``min_snr=None``.
    min_ali, max_logg, max_teff, min_snr : float or None
        The cuts A(Li) > ``min_ali``, log g < ``max_logg``, Teff < ``max_teff`` (K),
        S/N > ``min_snr``.
    max_e_teff, max_e_logg, max_e_feh, max_e_ali : float or None
        Upper limits (exclusive) on the errors of Teff (K), log g, the metallicity and
        A(Li) (dex).
    columns : dict, default=None
        Column names that differ from ``LI_RICH_COLUMNS`` (``"ali"``, ``"logg"``,
        ``"teff"``, ``"snr"``, ``"e_teff"``, ``"e_logg"``, ``"e_feh"``, ``"e_ali"``),
        e.g. ``{"ali": "LI1", "teff": "TEFF"}``.
    on_missing : {"raise", "skip"}, default="raise"
        What a cut does when the table lacks its column: raise a KeyError naming the
        column, or be skipped (for a catalogue without S/N or error columns).

    Returns
    -------
    selected : same kind as ``table``
        The selected rows, sorted by A(Li) descending (a dict of arrays for a dict).

    Examples
    --------
    >>> from astropy.table import Table
    >>> from skstellar.science import select_li_rich
    >>> t = Table({"id": ["a", "b", "c", "d"], "teff": [4600.0, 4800.0, 5900.0, 4700.0],
    ...            "logg": [2.4, 2.6, 4.3, 2.5], "ali": [2.4, 3.1, 2.6, float("nan")]})
    >>> select_li_rich(t, on_missing="skip")["id"].tolist()  # no S/N or error columns here
    ['b', 'a']
    >>> select_li_rich(t, on_missing="skip", max_logg=None, max_teff=None)["id"].tolist()
    ['b', 'c', 'a']
    """
    if on_missing not in ("raise", "skip"):
        raise ValueError(f"on_missing must be 'raise' or 'skip', got {on_missing!r}.")
    names = dict(LI_RICH_COLUMNS)
    if columns is not None:
        unknown = sorted(set(columns) - set(names))
        if unknown:
            raise ValueError(f"columns has unknown key(s) {unknown}; known: {sorted(names)}.")
        names.update(columns)
    thresholds = {
        "min_ali": min_ali, "max_logg": max_logg, "max_teff": max_teff, "min_snr": min_snr,
        "max_e_teff": max_e_teff, "max_e_logg": max_e_logg, "max_e_feh": max_e_feh,
        "max_e_ali": max_e_ali,
    }
    for key, value in thresholds.items():
        if value is not None and not (isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(value)):
            raise ValueError(f"{key} must be a finite number or None, got {value!r}.")
    present = column_names(table)
    keep = np.ones(n_rows(table), dtype=bool)
    for quantity, (key, compare) in _CUTS.items():
        limit = thresholds[key]
        if limit is None or (on_missing == "skip" and names[quantity] not in present):
            continue
        values = column(table, names[quantity], what=f"the cut {key}={limit}")
        with np.errstate(invalid="ignore"):
            keep &= compare(values, limit)  # NaN compares False: never selected
    # A(Li) is needed to sort even when its cut is skipped, and a star without one is no
    # Li-rich giant whatever the other cuts say.
    ali = column(table, names["ali"], what="sorting by A(Li)")
    rows = np.flatnonzero(keep & np.isfinite(ali))
    rows = rows[np.argsort(-ali[rows], kind="stable")]
    return take(table, rows)
