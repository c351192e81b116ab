"""Writer of Gaia-ESO Survey GIRAFFE spectrum files, the inverse of :func:`read_ges_giraffe`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from astropy.io import fits

from ..spectra import SpectralSet
from ._giraffe import _EXTENSIONS, _VELCLASS, _VELCLASS_COLUMNS, SETUP_KEYWORD

__all__ = ["write_ges_giraffe"]

# A grid is written as CRVAL1 + CD1_1 * (i - 1); how far (in pixels) it may stray from that line
_LINEAR_TOLERANCE = 1e-6
_UNSAFE = re.compile(r"[^A-Za-z0-9+\-_.]")


def write_ges_giraffe(spectra, folder, *, overwrite=False):
    """Write a SpectralSet as Gaia-ESO Survey GIRAFFE FITS files, one per star and setup.

    The files have the layout of the GES single-setup product that
    :func:`read_ges_giraffe` reads: primary HDU ``final_spectrum``, then ``final_ivar``,
    ``normalised_spectrum``, ``normalised_ivar``, a ``Fibinfo`` table and the one-row
    ``velclass`` table (``Cname``, ``VEL``, ``EVEL``, ``S_N``). Reading them back gives the
    same ids, setups, wavelengths and flux, bit for bit (see Notes for the error).

    Parameters
    ----------
    spectra : SpectralSet
        Each setup's wavelength grid must be linear (a constant step), shared or per star.
    folder : str or path-like
        Directory to write into (created if missing). Files are named
        ``ges_giraffe_<setup>_<id>.fits`` (characters other than letters, digits and
        ``+-_.`` in the id replaced by ``_``), like the Gaia-ESO archive's.
    overwrite : bool, default=False
        Replace existing files; otherwise an existing file is an error.

    Returns
    -------
    list of pathlib.Path
        The files written, star by star, setups in the set's order.

    Raises
    ------
    FileExistsError
        A file exists and ``overwrite`` is False.
    ValueError
        A setup's wavelength grid is not linear (naming the setup and star), or two ids
        map onto the same file name.

    See Also
    --------
    read_ges_giraffe : Read such files back into a SpectralSet.

    Notes
    -----
    A SpectralSet holds one flux per setup: it is written both as the normalised and as the
    final (stacked) spectrum, and its error as the inverse variance ``1 / error**2`` (an
    error of ``inf`` or none at all gives ``ivar`` 0 and ``inf`` again on reading, ``NaN``
    stays ``NaN``). Computed in float64 and stored as float32, the error reads back to
    within one float32 rounding (relative 1.2e-7). ``VEL``, ``EVEL`` and ``S_N`` come from
    the metadata columns ``rv_<setup>``, ``e_rv_<setup>`` and ``snr_<setup>`` when present
    (as :func:`read_ges_giraffe` gives them), else ``rv``, ``e_rv`` and ``snr``, else NaN; the
    reader's ``rv`` of several setups is their mean, equal up to its rounding (1e-16).

    Examples
    --------
    >>> import shutil, tempfile
    >>> import numpy as np
    >>> from skstellar.datasets import make_giraffe_survey
    >>> from skstellar.io import read_ges_giraffe, write_ges_giraffe
    >>> spectra, _ = make_giraffe_survey(3, random_state=0)
    >>> folder = tempfile.mkdtemp()
    >>> paths = write_ges_giraffe(spectra, folder)
    >>> len(paths), paths[0].name
    (6, 'ges_giraffe_HR10_mock-763581-0000000.fits')
    >>> back = read_ges_giraffe(paths)
    >>> back.setups, bool(np.array_equal(back.flux("HR21"), spectra.flux("HR21")))
    (('HR10', 'HR21'), True)
    >>> shutil.rmtree(folder)
    """
    if not isinstance(spectra, SpectralSet):
        raise TypeError(f"write_ges_giraffe needs a SpectralSet; got {type(spectra).__name__}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids = [str(i) for i in spectra.ids]
    names = {}
    for star_id in ids:
        name = _UNSAFE.sub("_", star_id)
        if name in names and names[name] != star_id:
            raise ValueError(
                f"star ids {names[name]!r} and {star_id!r} give the same file name {name!r}."
            )
        names[name] = star_id
    paths = []
    for i, star_id in enumerate(ids):
        for setup in spectra.setups:
            path = folder / f"ges_giraffe_{setup}_{_UNSAFE.sub('_', star_id)}.fits"
            if path.exists() and not overwrite:
                raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
            _hdulist(spectra, i, star_id, setup).writeto(path, overwrite=overwrite)
            paths.append(path)
    return paths


def _hdulist(spectra: SpectralSet, i: int, star_id: str, setup: str) -> fits.HDUList:
    wave = np.asarray(spectra.wavelength(setup), dtype=np.float64)
    wave = wave if wave.ndim == 1 else wave[i]
    crval, step = _linear_axis(wave, setup, star_id)
    flux = np.asarray(spectra.flux(setup)[i], dtype=">f4")
    error = spectra.error(setup)
    if error is None:
        ivar = np.zeros(flux.size, dtype=">f4")
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            ivar = (1.0 / np.asarray(error[i], dtype=np.float64) ** 2).astype(">f4")
    header = fits.Header()
    header["INSTRUME"] = "GIRAFFE"
    header["OBJECT"] = star_id
    header["CTYPE1"] = ("AWAV", "air wavelength")
    header["CUNIT1"] = "Angstrom"
    header["CRPIX1"] = 1.0
    header["CRVAL1"] = crval
    header["CD1_1"] = step
    header[f"HIERARCH {SETUP_KEYWORD}"] = setup
    final_flux, final_ivar = _EXTENSIONS["final"]
    norm_flux, norm_ivar = _EXTENSIONS["normalised"]
    hdus = [fits.PrimaryHDU(flux, header=header.copy())]
    hdus[0].header["EXTNAME"] = final_flux
    for name, data in ((final_ivar, ivar), (norm_flux, flux), (norm_ivar, ivar)):
        hdus.append(fits.ImageHDU(data, header=header.copy(), name=name))
    width = max(len(star_id), 1)
    id_column = fits.Column(name=_VELCLASS_COLUMNS["id"], format=f"{width}A", array=[star_id])
    hdus.append(fits.BinTableHDU.from_columns([id_column], name="Fibinfo"))
    velclass = [id_column] + [
        fits.Column(name=_VELCLASS_COLUMNS[key], format="D", array=[_meta_value(spectra, i, key, setup)],
                    unit="km/s" if key in ("rv", "e_rv") else None)
        for key in ("rv", "e_rv", "snr")
    ]
    hdus.append(fits.BinTableHDU.from_columns(velclass, name=_VELCLASS))
    return fits.HDUList(hdus)


def _linear_axis(wave, setup, star_id):
    crval = float(wave[0])
    # rounded so that a grid made as start + 0.05 * arange(n) is rebuilt bit for bit on reading
    step = float(f"{(wave[-1] - wave[0]) / (wave.size - 1):.12g}") if wave.size > 1 else 1.0
    line = crval + step * np.arange(wave.size, dtype=np.float64)
    off = np.abs(wave - line).max() / step if wave.size > 1 else 0.0
    if not off <= _LINEAR_TOLERANCE:
        raise ValueError(
            f"star {star_id!r}, setup {setup!r}: the wavelength grid is not linear (it strays "
            f"{off:.3g} pixels from a constant step of {step:.6g} A); a GES file stores "
            "CRVAL1 + CD1_1 * (i - 1). Rebin it first (skstellar.preprocessing.Rebinner)."
        )
    return crval, step


def _meta_value(spectra, i, key, setup):
    for column in (f"{key}_{setup}", key):
        if column in spectra.meta.colnames:
            return float(spectra.meta[column][i])
    return np.nan
