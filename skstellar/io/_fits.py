"""Reader of generic 1-D FITS spectra with a linear (or log-linear) wavelength axis."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..spectra import SpectralSet, is_placeholder_id
from ._fitsfile import (
    ReadError,
    as_paths,
    file_stem,
    get_hdu,
    header_keyword,
    open_fits,
    reading,
    spectrum_data,
    wavelength_axis,
    wavelength_data,
)
from ._stack import FileSpectrum, index_by_id, read_all, stack_setup

__all__ = ["read_fits_spectra"]

_ERROR_TYPES = ("sigma", "relative", "variance", "ivar")


def read_fits_spectra(
    paths,
    setup,
    *,
    hdu=0,
    error_hdu=None,
    error_type="sigma",
    wavelength_hdu=None,
    ids=None,
    id_keyword=None,
    meta_keywords=None,
    n_jobs=None,
):
    """Read 1-D FITS spectra of one setup, one star per file, into a SpectralSet.

    The wavelength comes from the flux HDU's header: ``CRVAL1``, ``CD1_1`` (or ``CDELT1``)
    and ``CRPIX1``, in the unit ``CUNIT1`` (Angstrom when absent). Log-linear axes are
    decoded too: IRAF ``DC-FLAG = 1`` (``log10`` wavelength) and ``CTYPE1 = 'WAVE-LOG'``.
    Files that store the wavelength of each pixel instead name its HDU in
    ``wavelength_hdu``.

    Parameters
    ----------
    paths : str, path-like or iterable of them
        One file per star.
    setup : str
        Name of the setup in the returned set, e.g. ``"HR21"`` or ``"CCD3"``.
    hdu : int or str, default=0
        The HDU holding the flux (number or ``EXTNAME``).
    error_hdu : int, str or None, default=None
        The HDU holding the flux uncertainty; None reads no error.
    error_type : {"sigma", "relative", "variance", "ivar"}, default="sigma"
        What ``error_hdu`` holds: the 1-sigma error, the error relative to the flux
        (GALAH's ``relative_error``: error = relative error × \\|flux\\|), the variance or the
        inverse variance. An inverse variance of 0 gives an error of ``inf``, a negative
        variance or inverse variance ``NaN``, so bad pixels stay visible.
    wavelength_hdu : int, str or None, default=None
        An HDU holding the wavelength (Angstrom) of every pixel, used instead of the
        header's axis; it must match the flux in length, be finite and strictly increase.
    ids : sequence of str, optional
        The star id of each file, in the order of ``paths``.
    id_keyword : str, optional
        Header keyword holding the star id (looked up in the flux HDU, then the primary
        HDU). With neither ``ids`` nor ``id_keyword`` the id is the file name without its
        FITS suffix.
    meta_keywords : dict of str to str, optional
        ``{meta column: header keyword}``, e.g. ``{"snr": "SNR", "rv": "RVCOM"}``: header
        values copied into :attr:`SpectralSet.meta` (looked up like ``id_keyword``).
    n_jobs : int or None, default=None
        Processes reading files in parallel (joblib; -1: all cores); None reads in this
        process.

    Returns
    -------
    SpectralSet
        One setup; a shared wavelength grid when all files have the same one, per-star
        grids ``(n, p)`` otherwise. Flux and error are native float32. ``meta`` has ``id``,
        the ``meta_keywords`` columns and ``file``.

    Raises
    ------
    FileNotFoundError
        A path does not exist.
    ValueError
        Naming the file: not a FITS file, an HDU or header keyword missing, a wavelength
        axis that is not linear, finite and increasing, flux and error (or wavelength) of
        different lengths,
        two files of the same star id, or files with different pixel counts.

    See Also
    --------
    read_ges_giraffe : Read Gaia-ESO GIRAFFE files, matching several setups by star id.

    Examples
    --------
    Two small spectra written with astropy, read back with their ``OBJECT`` as id:

    >>> import shutil, tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from skstellar.io import read_fits_spectra
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("star_a", "star_b"):
    ...     hdu = fits.PrimaryHDU(np.ones(100, dtype=">f4"))
    ...     hdu.header.update(CRVAL1=6000.0, CDELT1=0.05, CRPIX1=1.0, OBJECT=name, SNR=80.0)
    ...     hdu.writeto(folder / f"{name}.fits")
    >>> s = read_fits_spectra(sorted(folder.glob("*.fits")), "red",
    ...                       id_keyword="OBJECT", meta_keywords={"snr": "SNR"})
    >>> s.shape, s.ids.tolist(), s.wavelength("red")[:3].tolist()
    ((2, 100), ['star_a', 'star_b'], [6000.0, 6000.05, 6000.1])
    >>> shutil.rmtree(folder)
    """
    if error_type not in _ERROR_TYPES:
        raise ValueError(f"error_type must be one of {_ERROR_TYPES}; got {error_type!r}.")
    if ids is not None and id_keyword is not None:
        raise ValueError("Give ids or id_keyword, not both.")
    if meta_keywords is not None and not isinstance(meta_keywords, Mapping):
        raise TypeError(
            "meta_keywords must be a dict {meta column: header keyword}; "
            f"got {type(meta_keywords).__name__}."
        )
    meta_keywords = dict(meta_keywords or {})
    for reserved in ("id", "file"):
        if reserved in meta_keywords:
            raise ValueError(
                f"meta_keywords may not fill the column {reserved!r}; use id_keyword or ids "
                "for the star id."
            )
    setup = str(setup)
    files = as_paths(paths, "read_fits_spectra")
    if ids is not None:
        ids = [str(i) for i in ids]
        if len(ids) != len(files):
            raise ValueError(f"ids has {len(ids)} entries but {len(files)} files were given.")
    args = [
        (path, setup, hdu, error_hdu, error_type, wavelength_hdu,
         None if ids is None else ids[k], id_keyword, meta_keywords)
        for k, path in enumerate(files)
    ]
    spectra = read_all(_read_file, args, n_jobs)
    index_by_id(spectra)  # a star id twice is an error naming both files
    meta = Table({"id": np.array([sp.id for sp in spectra], dtype=str)})
    for column in meta_keywords:
        meta[column] = [sp.meta[column] for sp in spectra]
    meta["file"] = np.array([str(sp.path) for sp in spectra], dtype=str)
    return SpectralSet.from_arrays({setup: stack_setup(setup, spectra)}, meta=meta)


def _read_file(
    path: Path, setup, hdu, error_hdu, error_type, wavelength_hdu, star_id, id_keyword, keywords
):
    with open_fits(path) as hdul:
        header, primary, wave, flux, error = read_spectrum_hdus(
            hdul, path, hdu, error_hdu, error_type, wavelength_hdu
        )

        def keyword(key):
            return header_keyword(header, key, path, hdu, fallback=primary)

        if star_id is None:
            star_id = file_stem(path) if id_keyword is None else str(keyword(id_keyword)).strip()
            if is_placeholder_id(star_id):
                raise ReadError(
                    f"{path}: header keyword {id_keyword!r} of HDU {hdu!r} holds {star_id!r}, a "
                    "placeholder, not a star id. Take another id_keyword or give ids."
                )
        meta = {column: keyword(key) for column, key in keywords.items()}
    return FileSpectrum(path, star_id, setup, wave, flux, error, meta)


def read_spectrum_hdus(hdul, path: Path, hdu, error_hdu=None, error_type="sigma", wavelength_hdu=None,
                       *, expected_index=None):
    """``(header, primary header, wavelength, flux, error)`` of one open file; error None without ``error_hdu``.

    ``expected_index``: where the file format puts ``hdu`` (see :func:`get_hdu`).
    """
    flux_hdu = get_hdu(hdul, hdu, path, expected_index=expected_index)
    with reading(path):
        header, primary = flux_hdu.header, hdul[0].header
    flux = spectrum_data(flux_hdu, path, hdu)
    if wavelength_hdu is None:
        wave = wavelength_axis(header, flux.size, path, hdu)
    else:
        wave_hdu = get_hdu(hdul, wavelength_hdu, path)
        wave = wavelength_data(wave_hdu, path, wavelength_hdu, hdu, flux.size)
    error = None
    if error_hdu is not None:
        err_hdu = get_hdu(hdul, error_hdu, path)
        error = spectrum_data(err_hdu, path, error_hdu)
        if error.size != flux.size:
            raise ValueError(
                f"{path}: error HDU {error_hdu!r} has {error.size} pixels but flux HDU "
                f"{hdu!r} has {flux.size}."
            )
        error = _to_sigma(error, flux, error_type)
    return header, primary, wave, flux, error


def _to_sigma(values, flux, error_type):
    with np.errstate(divide="ignore", invalid="ignore"):
        if error_type == "relative":
            return values * np.abs(flux)
        if error_type == "variance":
            return np.where(values >= 0, np.sqrt(values), np.float32(np.nan))
        if error_type == "ivar":
            return 1.0 / np.sqrt(values)  # 0 -> inf, negative -> NaN
    return values
