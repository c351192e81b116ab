"""The training-set quality cuts of Ambrosch et al. (2023), thesis Sect. 4.1.1."""

from numbers import Real
from typing import NamedTuple

import numpy as np
from astropy.table import Table

from ._tables import column, column_names, n_rows

__all__ = ["QUALITY_COLUMNS", "QualityCuts", "quality_cuts"]

#: Default column(s) per cut; ``columns=`` of :func:`quality_cuts` overrides any of them.
QUALITY_COLUMNS = {
    "snr": "snr",
    "e_teff": "e_teff",
    "e_logg": "e_logg",
    "e_abundance": ("e_mgfe", "e_alfe"),
    "flags": ("tech", "peculi"),
    "vsini": "vsini",
    "mh_feh": ("mh", "feh"),
}


class QualityCuts(NamedTuple):
    """``mask``: True for a star passing every cut applied. ``counts``: one row per cut
    (``cut``, ``columns``, ``threshold``, ``rejected``: stars failing it, ``only``: stars
    failing it and no other cut applied); skipped cuts are absent."""

    mask: np.ndarray
    counts: Table


def _names(value):
    return (value,) if isinstance(value, str) else tuple(value)


def _flag_empty(table, name, what):
    values = column(table, name, what=what, dtype=None)
    mask = np.ma.getmaskarray(values) if np.ma.isMaskedArray(values) else np.zeros(len(values), dtype=bool)
    data = np.ma.getdata(values)
    if data.dtype.kind in "fc":  # a flag column read as numbers holds only NaN where it is empty
        return mask | np.isnan(data)
    text = np.char.strip(np.asarray(data).astype(str))
    # pandas writes a missing flag as NaN or None, which become these strings.
    return mask | np.isin(np.char.lower(text), ["", "nan", "none", "<na>"])


def quality_cuts(
    table,
    *,
    min_snr=30.0,
    max_e_teff=200.0,
    max_e_logg=0.3,
    max_e_abundance=0.2,
    empty_flags=True,
    max_vsini=20.0,
    max_mh_feh=0.2,
    columns=None,
    on_missing="raise",
):
    """Which stars pass the training-set cuts of the thesis (Sect. 4.1.1), and why not.

    S/N >= 30, e_Teff <= 200 K, e_log g <= 0.3 dex, every abundance error <= 0.2 dex, the
    TECH and PECULI flags empty, v sin i <= 20 km/s and ``|[M/H] - [Fe/H]|`` <= 0.2 dex. A
    NaN (or masked) value fails its cut: an unknown quantity is not known to be good.

    Parameters
    ----------
    table : astropy Table, pandas DataFrame, structured array or dict of columns
        The catalogue.
    min_snr, max_e_teff, max_e_logg, max_e_abundance, max_vsini, max_mh_feh : float or None
        The thresholds (inclusive); None skips that cut.
    empty_flags : bool, default=True
        Require the flag columns empty (masked, NaN or blank); False skips the cut.
    columns : dict, default=None
        Column names that differ from ``QUALITY_COLUMNS``: ``"snr"``, ``"e_teff"``,
        ``"e_logg"``, ``"vsini"`` (one name each), ``"e_abundance"``, ``"flags"`` (one
        name or several), ``"mh_feh"`` (the [M/H] and [Fe/H] columns).
    on_missing : {"raise", "skip"}, default="raise"
        What a cut does when the table lacks one of its columns: raise a KeyError naming
        it, or skip the cut (absent from ``counts``).

    Returns
    -------
    QualityCuts
        Named tuple ``(mask, counts)``.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from skstellar.science import quality_cuts
    >>> t = Table({"snr": [80.0, 25.0, 60.0], "e_teff": [60.0, 90.0, 250.0],
    ...            "e_logg": [0.1, 0.1, 0.4], "vsini": [5.0, 3.0, 30.0]})
    >>> mask, counts = quality_cuts(t, on_missing="skip")
    >>> mask.tolist()
    [True, False, False]
    >>> counts["cut", "rejected", "only"].pprint()
     cut   rejected only
    ------ -------- ----
       snr        1    1
    e_teff        1    0
    e_logg        1    0
     vsini        1    0
    """
    if on_missing not in ("raise", "skip"):
        raise ValueError(f"on_missing must be 'raise' or 'skip', got {on_missing!r}.")
    names = dict(QUALITY_COLUMNS)
    if columns is not None:
        unknown = sorted(set(columns) - set(names))
        if unknown:
            raise ValueError(f"columns has unknown key(s) {unknown}; known: {sorted(names)}.")
        names.update(columns)
    if not isinstance(names["mh_feh"], (tuple, list)) or len(names["mh_feh"]) != 2:
        raise ValueError(f"columns['mh_feh'] must be two names ([M/H], [Fe/H]), got {names['mh_feh']!r}.")
    limits = {
        "snr": min_snr, "e_teff": max_e_teff, "e_logg": max_e_logg, "e_abundance": max_e_abundance,
        "vsini": max_vsini, "mh_feh": max_mh_feh,
    }
    for cut, value in limits.items():
        if value is not None and not (isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(value)):
            raise ValueError(f"the threshold of the {cut} cut must be a finite number or None, got {value!r}.")
    present = set(column_names(table))
    n = n_rows(table)
    passes = {}
    for cut in ("snr", "e_teff", "e_logg", "e_abundance", "flags", "vsini", "mh_feh"):
        if (cut == "flags" and not empty_flags) or (cut != "flags" and limits[cut] is None):
            continue
        cols = _names(names[cut])
        if on_missing == "skip" and not set(cols) <= present:
            continue
        what = f"the {cut} cut"
        with np.errstate(invalid="ignore"):
            if cut == "snr":
                ok = column(table, cols[0], what=what) >= min_snr
            elif cut == "flags":
                ok = np.ones(n, dtype=bool)
                for c in cols:
                    ok &= _flag_empty(table, c, what)
            elif cut == "mh_feh":
                diff = column(table, cols[0], what=what) - column(table, cols[1], what=what)
                ok = np.abs(diff) <= max_mh_feh
            else:
                ok = np.ones(n, dtype=bool)
                for c in cols:
                    ok &= column(table, c, what=what) <= limits[cut]
        passes[cut] = (cols, limits.get(cut, True), ok)
    fails = np.array([~ok for _, _, ok in passes.values()], dtype=bool).reshape(len(passes), n)
    mask = ~fails.any(axis=0)
    n_failed = fails.sum(axis=0)
    counts = Table(
        {
            "cut": list(passes),
            "columns": [", ".join(cols) for cols, _, _ in passes.values()],
            "threshold": [str(limit) for _, limit, _ in passes.values()],
            "rejected": fails.sum(axis=1).astype(int),
            "only": (fails & (n_failed == 1)).sum(axis=1).astype(int),
        }
    )
    return QualityCuts(mask, counts)
