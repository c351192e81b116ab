"""Reader of Gaia-ESO Survey GIRAFFE spectrum files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..spectra import is_placeholder_id
from ._fitsfile import (
    ReadError,
    as_paths,
    get_hdu,
    header_keyword,
    open_fits,
    reading,
    spectrum_data,
    wavelength_axis,
)
from ._stack import (
    FileSpectrum,
    add_file_columns,
    check_on_bad,
    combine_setups,
    index_by_id,
    read_all,
    setup_values,
)

__all__ = ["read_ges_giraffe"]

# spectrum kind -> (flux HDU, inverse-variance HDU) of the GES file format
_EXTENSIONS = {
    "normalised": ("normalised_spectrum", "normalised_ivar"),
    "final": ("final_spectrum", "final_ivar"),
}
# where the GES format puts each HDU; a file in another order is still read, by name
_POSITION = {
    "final_spectrum": 0,
    "final_ivar": 1,
    "normalised_spectrum": 2,
    "normalised_ivar": 3,
    "velclass": 5,
}
SETUP_KEYWORD = "ESO INS FILT NAME"
_VELCLASS = "velclass"
# meta column -> velclass column
_VELCLASS_COLUMNS = {"id": "Cname", "rv": "VEL", "e_rv": "EVEL", "snr": "S_N"}


def read_ges_giraffe(paths, *, spectrum="normalised", on_bad="raise", n_jobs=None, on_missing=None):
    """Read Gaia-ESO Survey GIRAFFE spectrum files into one :class:`~skstellar.spectra.SpectralSet`.

    Each file holds one star in one setup (the GES single-setup product: primary HDU
    ``final_spectrum``, then ``final_ivar``, ``normalised_spectrum``, ``normalised_ivar``
    and the ``velclass`` table). Files of several setups (e.g. HR10 and HR21) for the same
    stars are matched by the star's id (``Cname``) into one set holding every setup.

    Parameters
    ----------
    paths : str, path-like or iterable of them
        The files; any order, any mix of setups.
    spectrum : {"normalised", "final"}, default="normalised"
        ``"normalised"``: the continuum-normalised spectrum (``normalised_spectrum`` and
        ``normalised_ivar``); ``"final"``: the stacked spectrum before normalisation
        (``final_spectrum``, the primary HDU, and ``final_ivar``).
    on_bad : {"raise", "drop", "flag"}, default="raise"
        What to do with a star that lacks a file for one of the setups read: raise a
        ``ValueError`` listing such stars and their missing setups; leave them out of
        the set and list them in ``meta.meta["dropped"]`` as ``{id: [missing setups]}``
        (they then get no row in :func:`skstellar.predict_table`); or keep them, the
        missing setup all NaN on the setup's grid and the status bit ``SETUP_MISSING``
        set, so that ``predict_table`` gives them a row with NaN labels and the reason.
    n_jobs : int or None, default=None
        Processes reading files in parallel (joblib; -1: all cores); None reads in this
        process. Worth it from a few hundred files on: one file takes ~20 ms, nearly all
        of it astropy parsing headers.
    on_missing : {"raise", "drop"} or None, default=None
        Deprecated spelling of ``on_bad``.

    Returns
    -------
    SpectralSet
        One row per star, in the order of their first file. Setups are named from the
        header keyword ``HIERARCH ESO INS FILT NAME`` and ordered by wavelength. Flux is
        native float32; error is ``1 / sqrt(ivar)``. A setup whose files share one
        wavelength grid gets a shared ``(p,)`` grid, otherwise ``(n, p)``. ``meta`` holds,
        from the ``velclass`` table: ``id`` (``Cname``), ``rv`` and ``e_rv`` (km/s,
        ``VEL`` and ``EVEL``), ``snr`` (``S_N``), and per setup ``rv_<setup>``,
        ``e_rv_<setup>``, ``snr_<setup>`` and ``file_<setup>``.

    Raises
    ------
    FileNotFoundError
        A path does not exist.
    ValueError
        Naming the file: not a FITS file, an HDU or header keyword or ``velclass`` column
        missing, a wavelength axis that is not finite or not increasing, flux and inverse
        variance of different lengths, the same star twice in one setup, files of one setup
        with different pixel counts, or (``on_bad="raise"``) a star lacking a setup. Every
        failure on one file is a :class:`~skstellar.io.ReadError` naming it.

    See Also
    --------
    read_fits_spectra : Read generic 1-D FITS spectra (one setup).

    Notes
    -----
    **Error of bad pixels.** A pixel with inverse variance 0 gets error ``inf`` (infinite
    variance, zero weight) and one with a negative or NaN inverse variance gets ``NaN``:
    bad pixels stay visible (``~np.isfinite(error)``) rather than looking perfect, as an
    error of 0 would.

    **Frame and medium.** The GES spectra are on a barycentric, air-wavelength grid
    (``CTYPE1 = 'AWAV'``), not shifted to the star's rest frame: in the HR21 file of star
    19235180+0048006 the Ca II triplet lies 15.8-16.8 km/s redward of its rest wavelength,
    matching ``VEL`` = 15.64 km/s. Shift with ``meta["rv"]``
    (`skstellar.preprocessing.RadialVelocityCorrector`).

    **Combined RV and S/N.** With several setups, ``rv`` is the mean of the setups' ``VEL``
    weighted by ``1 / EVEL**2`` (the plain mean when an ``EVEL`` is missing or not
    positive) and ``e_rv`` its uncertainty; ``snr`` is the lowest S/N of the star's setups,
    so that a S/N cut asks every setup to pass it. With one setup they are the file's
    values.

    Examples
    --------
    Read every GES file of a folder, HR10 and HR21 alike (the files are not shipped with
    skstellar, hence the skip):

    >>> from glob import glob
    >>> from skstellar.io import read_ges_giraffe
    >>> s = read_ges_giraffe(sorted(glob("ges/*.fits")), on_bad="drop")  # doctest: +SKIP
    >>> s.setups, s.meta.meta["dropped"]  # doctest: +SKIP
    (('HR10', 'HR21'), {'12345678+1234567': ['HR21']})
    """
    if spectrum not in _EXTENSIONS:
        raise ValueError(f"spectrum must be one of {sorted(_EXTENSIONS)}; got {spectrum!r}.")
    if on_missing is not None:
        warnings.warn(
            f"read_ges_giraffe(on_missing={on_missing!r}) is deprecated; use on_bad={on_missing!r}.",
            FutureWarning,
            stacklevel=2,
        )
        on_bad = on_missing
    check_on_bad(on_bad)
    files = as_paths(paths, "read_ges_giraffe")
    by_setup = index_by_id(read_all(_read_file, [(p, spectrum) for p in files], n_jobs))
    return combine_setups(by_setup, on_bad, _meta_table, spectrum=spectrum)


def _read_file(path: Path, spectrum: str) -> FileSpectrum:
    flux_ext, ivar_ext = _EXTENSIONS[spectrum]
    with open_fits(path) as hdul:
        flux_hdu = get_hdu(hdul, flux_ext, path, expected_index=_POSITION[flux_ext])
        ivar_hdu = get_hdu(hdul, ivar_ext, path, expected_index=_POSITION[ivar_ext])
        with reading(path):
            header, primary = flux_hdu.header, hdul[0].header
        setup = str(header_keyword(header, SETUP_KEYWORD, path, flux_ext, fallback=primary))
        setup = setup.strip()
        if not setup:
            raise ValueError(f"{path}: header keyword {SETUP_KEYWORD!r} is empty.")
        flux = spectrum_data(flux_hdu, path, flux_ext)
        ivar = spectrum_data(ivar_hdu, path, ivar_ext)
        if ivar.size != flux.size:
            raise ValueError(
                f"{path}: {ivar_ext!r} has {ivar.size} pixels but {flux_ext!r} has {flux.size}."
            )
        wave = wavelength_axis(header, flux.size, path, flux_ext)
        velclass = get_hdu(hdul, _VELCLASS, path, expected_index=_POSITION[_VELCLASS])
        with reading(path):
            table = velclass.data
        meta = _velclass_row(table, path)
    with np.errstate(divide="ignore", invalid="ignore"):
        # ivar 0 -> inf, ivar < 0 or NaN -> NaN: see the Notes of read_ges_giraffe
        error = 1.0 / np.sqrt(ivar)
    return FileSpectrum(path, meta.pop("id"), setup, wave, flux, error, meta)


def _velclass_row(data, path: Path) -> dict:
    # hdu.data rather than Table.read: the latter parses (and warns about) every unit
    if data is None or not hasattr(data, "columns") or len(data) != 1:
        n = "no" if data is None else len(data)
        raise ValueError(f"{path}: the {_VELCLASS!r} table must have one row; it has {n}.")
    names = list(data.columns.names)
    row = {}
    for key, column in _VELCLASS_COLUMNS.items():
        if column not in names:
            raise ValueError(
                f"{path}: the {_VELCLASS!r} table has no column {column!r} (columns: {names})."
            )
        value = data[column][0]
        row[key] = str(value).strip() if key == "id" else float(value)
    if is_placeholder_id(row["id"]):
        raise ReadError(
            f"{path}: the star id ('Cname' in {_VELCLASS!r}) is {row['id']!r}, empty or a placeholder."
        )
    return row


def _meta_table(ids, by_setup, order) -> Table:
    rv, e_rv, snr = (setup_values(ids, by_setup, order, key) for key in ("rv", "e_rv", "snr"))
    meta = Table({"id": np.array(ids, dtype=str)})
    meta["rv"], meta["e_rv"] = _combine_rv(rv, e_rv)
    meta["snr"] = snr.min(axis=0)
    for k, s in enumerate(order):
        meta[f"rv_{s}"] = rv[k]
        meta[f"e_rv_{s}"] = e_rv[k]
        meta[f"snr_{s}"] = snr[k]
    add_file_columns(meta, ids, by_setup, order)
    return meta


def _combine_rv(rv, e_rv):
    """Inverse-variance weighted mean over setups (axis 0), plain mean where EVEL is unusable.

    A setup without a velocity (NaN: its file is missing) is left out of both means.
    """
    if rv.shape[0] == 1:
        return rv[0], e_rv[0]
    have = np.isfinite(rv)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = have & np.isfinite(e_rv) & (e_rv > 0)
        usable = np.all(ok | ~have, axis=0)
        w = np.where(ok, 1.0 / np.where(ok, e_rv, 1.0) ** 2, 0.0)
        weighted = np.sum(w * np.where(have, rv, 0.0), axis=0) / np.sum(w, axis=0)
        e_weighted = 1.0 / np.sqrt(np.sum(w, axis=0))
        plain = np.sum(np.where(have, rv, 0.0), axis=0) / np.sum(have, axis=0)
    e_plain = np.full(rv.shape[1], np.nan)
    return np.where(usable, weighted, plain), np.where(usable, e_weighted, e_plain)
