"""Reader of GALAH spectrum files: the four HERMES cameras of a star matched by its sobject_id."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from astropy.table import Table

from ._fits import read_spectrum_hdus
from ._fitsfile import ReadError, expand_paths, file_stem, open_fits, reading
from ._stack import (
    FileSpectrum,
    add_file_columns,
    check_on_bad,
    combine_setups,
    index_by_id,
    read_all,
    setup_values,
)

__all__ = ["read_galah"]

# header SPECTID (HERMES spectrograph arm) -> camera digit of the file name
CAMERAS = {"BL": 1, "GN": 2, "RD": 3, "RR": 4}
CAMERA_KEYWORD = "SPECTID"
# spectrum kind -> (flux HDU, where the GALAH format puts it)
_SPECTRA = {"normalized": ("normalized", 1), "unnormalized": (0, 0)}
_ERROR_HDU = "relative_error"
# meta value -> header keyword; a missing keyword (or 'None', as GALAH writes) gives NaN
_NUMBERS = {"snr": "SNR", "rv": "RVCOM", "e_rv": "E_RVCOM"}


def read_galah(paths, *, spectrum="normalized", errors=True, on_bad="raise", n_jobs=None):
    """Read GALAH spectrum files into one :class:`~skstellar.spectra.SpectralSet`, cameras matched by star.

    GALAH (HERMES on the AAT) records each star with four cameras; the reduction writes one
    file per star and camera, named ``<sobject_id><camera>.fits`` with camera 1 (blue), 2
    (green), 3 (red) or 4 (infrared). The files of one star are matched by its
    ``sobject_id`` into one row holding the setups ``"CCD1"`` … ``"CCD4"``.

    Parameters
    ----------
    paths : str, path-like or iterable of them
        Files, folders (their FITS files) and glob patterns; any order, any mix of
        cameras.
    spectrum : {"normalized", "unnormalized"}, default="normalized"
        ``"normalized"``: the continuum-normalised spectrum (HDU ``normalized``);
        ``"unnormalized"``: the spectrum before normalisation (the primary HDU).
    errors : bool, default=True
        Read the flux error: ``relative_error`` × \\|flux\\|. False reads no error (a
        little faster).
    on_bad : {"raise", "drop", "flag"}, default="raise"
        What to do with a star lacking one of the cameras read: raise a ``ValueError``
        naming the stars and their missing cameras; leave them out of the set and list
        them in ``meta.meta["dropped"]`` as ``{id: [missing setups]}``; or keep them, the
        missing camera all NaN and its status bit ``SETUP_MISSING`` set (as in
        :func:`read_ges_giraffe`).
    n_jobs : int or None, default=None
        Processes reading files in parallel (joblib; -1: all cores); None reads in this
        process.

    Returns
    -------
    SpectralSet
        One row per star, in the order of their first file; setups ``"CCD1"`` …
        ``"CCD4"`` (those read), in wavelength order. Each fibre has its own wavelength
        solution, so a camera's grid is ``(n, p)`` unless all its files share one. Flux
        and error are native float32. ``meta`` holds ``id`` (the ``sobject_id``), ``rv``
        and ``e_rv`` (km/s, header ``RVCOM`` and ``E_RVCOM``, the velocity combined over
        the cameras; NaN where missing), ``snr`` (the lowest of the cameras' ``SNR``, so
        that a S/N cut asks every camera to pass it), ``gaia_id`` (``GAIA_ID``, "" where
        missing) and per camera ``snr_CCD<k>`` and ``file_CCD<k>``.

    Raises
    ------
    FileNotFoundError
        A path does not exist, or a folder or pattern finds no FITS file.
    ValueError
        Naming the file: a name not ending in a camera digit 1-4, a header ``SPECTID``
        (the camera) that is unknown or disagrees with the file name, an HDU missing, a
        wavelength axis that is not linear, finite and increasing, two files of the same
        star and camera (naming both), files of one camera with different pixel counts,
        the cameras of a star with different ``GAIA_ID``, or (``on_bad="raise"``) a star
        lacking a camera. Every failure on one file is a :class:`~skstellar.io.ReadError`
        naming it.

    See Also
    --------
    read_ges_giraffe : Gaia-ESO GIRAFFE files, several setups matched by star id.
    read_fits_spectra : Generic 1-D FITS spectra of one setup.

    Notes
    -----
    **Camera.** The camera is the last digit of the file name; the header keyword
    ``SPECTID`` (``BL``, ``GN``, ``RD``, ``RR``), when present, must agree with it, so a
    renamed file is caught rather than read into the wrong camera.

    **Frame and medium.** The spectra are on a barycentric, air-wavelength grid, not
    shifted to the star's rest frame: in camera 3 of star 210115000101001 the Ca I 6717.7,
    Fe I 6678.0 and 6592.9 and Ni I 6643.6 lines lie 18.0-20.5 km/s blueward of their rest
    wavelengths, matching ``RVCOM`` = -18.68 km/s. Shift with ``meta["rv"]``
    (`skstellar.preprocessing.RadialVelocityCorrector`).

    Examples
    --------
    Two stars written in the GALAH layout, the second lacking its red camera:

    >>> import shutil, tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from skstellar.io import read_galah
    >>> folder = Path(tempfile.mkdtemp())
    >>> for sobject_id, cameras in (("100101001001001", (1, 3)), ("100101001001002", (1,))):
    ...     for k in cameras:
    ...         header = fits.Header({"CRVAL1": 4000.0 + 1000 * k, "CDELT1": 0.05, "CRPIX1": 1.0,
    ...                               "SPECTID": "BL GN RD RR".split()[k - 1], "SNR": 50.0,
    ...                               "RVCOM": 12.5, "GAIA_ID": "None"})
    ...         fits.HDUList([fits.PrimaryHDU(np.ones(100), header),
    ...                       fits.ImageHDU(np.ones(100), header, name="normalized"),
    ...                       fits.ImageHDU(np.full(100, 0.02), header, name="relative_error"),
    ...                       ]).writeto(folder / f"{sobject_id}{k}.fits")
    >>> s = read_galah(folder, on_bad="drop")
    >>> s.ids.tolist(), s.setups, s.meta.meta["dropped"]
    (['100101001001001'], ('CCD1', 'CCD3'), {'100101001001002': ['CCD3']})
    >>> s.wavelength("CCD3")[:2].tolist(), float(s.error("CCD1")[0, 0]), float(s.meta["rv"][0])
    ([7000.0, 7000.05], 0.019999999552965164, 12.5)
    >>> shutil.rmtree(folder)
    """
    if spectrum not in _SPECTRA:
        raise ValueError(f"spectrum must be one of {sorted(_SPECTRA)}; got {spectrum!r}.")
    check_on_bad(on_bad)
    files = expand_paths(paths, "read_galah", keep=_is_galah_name,
                         kind="GALAH spectrum (<sobject_id><camera 1-4>.fits)")
    by_setup = index_by_id(read_all(_read_file, [(p, spectrum, errors) for p in files], n_jobs))
    return combine_setups(by_setup, on_bad, _meta_table, spectrum=spectrum)


def _is_galah_name(path: Path) -> bool:
    # a folder of GALAH spectra often holds the release's tables too: skip them
    return re.fullmatch(r"\d+[1-4]", file_stem(path)) is not None


def camera_of(path: Path) -> tuple[str, int]:
    """``(sobject_id, camera)`` from a GALAH file name ``<sobject_id><camera>.fits``."""
    stem = file_stem(path)
    if len(stem) < 2 or stem[-1] not in "1234":
        raise ReadError(
            f"{path}: a GALAH file is named <sobject_id><camera 1-4>.fits; {stem!r} does not end "
            "in a camera digit."
        )
    return stem[:-1], int(stem[-1])


def _read_file(path: Path, spectrum: str, errors: bool) -> FileSpectrum:
    star_id, camera = camera_of(path)
    hdu, position = _SPECTRA[spectrum]
    with open_fits(path) as hdul:
        header, primary, wave, flux, error = read_spectrum_hdus(
            hdul, path, hdu, _ERROR_HDU if errors else None, "relative", expected_index=position
        )
        with reading(path):
            values = {key: header.get(key, primary.get(key)) for key in (CAMERA_KEYWORD, "GAIA_ID",
                                                                        *_NUMBERS.values())}
    spectid = values[CAMERA_KEYWORD]
    if spectid is not None:
        spectid = str(spectid).strip().upper()
        if spectid not in CAMERAS:
            raise ReadError(
                f"{path}: header keyword {CAMERA_KEYWORD} = {spectid!r} is not a HERMES camera; "
                f"expected one of {sorted(CAMERAS, key=CAMERAS.get)}."
            )
        if CAMERAS[spectid] != camera:
            raise ReadError(
                f"{path}: the file name says camera {camera} but header keyword {CAMERA_KEYWORD} = "
                f"{spectid!r} says camera {CAMERAS[spectid]}; was the file renamed?"
            )
    meta = {key: _number(values[keyword]) for key, keyword in _NUMBERS.items()}
    gaia_id = str(values["GAIA_ID"] or "").strip()
    meta["gaia_id"] = "" if gaia_id.lower() == "none" else gaia_id
    return FileSpectrum(path, star_id, f"CCD{camera}", wave, flux, error, meta)


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # missing, or 'None' as GALAH writes an unknown value
        return np.nan


def _meta_table(ids, by_setup, order) -> Table:
    meta = Table({"id": np.array(ids, dtype=str)})
    # RVCOM is one velocity, copied into every camera's header: take the first camera's
    for key in ("rv", "e_rv"):
        values = setup_values(ids, by_setup, order, key)
        have = np.isfinite(values)
        meta[key] = np.where(have.any(axis=0), values[np.argmax(have, axis=0), np.arange(len(ids))], np.nan)
    snr = setup_values(ids, by_setup, order, "snr")
    meta["snr"] = snr.min(axis=0)
    meta["gaia_id"] = np.array([_gaia_id(i, by_setup, order) for i in ids], dtype=str)
    for k, s in enumerate(order):
        meta[f"snr_{s}"] = snr[k]
    add_file_columns(meta, ids, by_setup, order)
    return meta


def _gaia_id(star_id, by_setup, order) -> str:
    """The star's Gaia id; cameras naming different Gaia sources are an error naming their files."""
    found = {}
    for s in order:
        spec = by_setup[s][star_id]
        if isinstance(spec.meta["gaia_id"], str) and spec.meta["gaia_id"]:
            found.setdefault(spec.meta["gaia_id"], spec.path)
    if len(found) > 1:
        listed = ", ".join(f"{g} in {p}" for g, p in found.items())
        raise ValueError(f"Star {star_id!r}: its cameras name different GAIA_ID: {listed}.")
    return next(iter(found), "")
