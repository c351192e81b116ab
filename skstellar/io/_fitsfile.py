"""Opening spectrum FITS files and decoding their 1-D wavelength axis; errors name the file."""

from __future__ import annotations

import glob
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

# CTYPE1 values of a linear wavelength axis: FITS (WAVE = vacuum, AWAV = air), IRAF
# ("LINEAR") and the ad-hoc spellings seen in survey files. An empty CTYPE1 is taken
# as linear too, as IRAF does.
_LINEAR_CTYPES = {"", "LINEAR", "WAVE", "AWAV", "WAVELENGTH", "LAMBDA"}
_LOG_CTYPES = {"WAVE-LOG", "AWAV-LOG"}

# Unit spellings astropy's FITS parser refuses but survey files use (IRAF writes "angstroms").
_ANGSTROM_PER_UNIT = {
    "": 1.0,
    "angstrom": 1.0,
    "angstroms": 1.0,
    "a": 1.0,
    "aa": 1.0,
    "nm": 10.0,
    "nanometer": 10.0,
    "nanometers": 10.0,
    "um": 1e4,
    "micron": 1e4,
    "microns": 1e4,
    "m": 1e10,
}

_FITS_SUFFIXES = (".fits.gz", ".fit.gz", ".fts.gz", ".fits", ".fit", ".fts")


def as_paths(paths, reader) -> list[Path]:
    """Turn one path or an iterable of paths into a non-empty list of Paths."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    try:
        out = [Path(p) for p in paths]
    except TypeError:
        raise TypeError(
            f"{reader}: paths must be a file path or an iterable of file paths; "
            f"got {type(paths).__name__}."
        ) from None
    if not out:
        raise ValueError(f"{reader}: no files given (the list of paths is empty).")
    return out


def expand_paths(paths, reader="read", *, keep=None, kind="FITS file") -> list[Path]:
    """Files from file names, folders (their FITS files) and glob patterns, in order, once each.

    ``keep(path)``: which files of a folder or pattern to take (all FITS files by default);
    ``kind`` names them in the error for a folder or pattern finding none.
    """
    out = []
    for path in as_paths(paths, reader):
        if path.is_file():
            found = [path]
        elif path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(_FITS_SUFFIXES))
            found = [p for p in found if keep is None or keep(p)]
            if not found:
                raise FileNotFoundError(f"{path}: the folder holds no {kind} ({', '.join(_FITS_SUFFIXES)}).")
        elif glob.has_magic(str(path)):
            found = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
            found = [p for p in found if p.is_file() and (keep is None or keep(p))]
            if not found:
                also = "" if keep is None else f" and is a {kind}"
                raise FileNotFoundError(f"{path}: no file matches this pattern{also}.")
        else:
            raise FileNotFoundError(f"{path}: no such file or folder.")
        out.extend(found)
    return list(dict.fromkeys(out))


def file_stem(path: Path) -> str:
    """The file name without its FITS suffix, e.g. '2101150001010011'."""
    name = path.name
    for suffix in _FITS_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


# what astropy raises on a file that is not FITS or is cut short; AstropyWarning arrives as
# an exception where warnings are turned into errors
_UNREADABLE = (OSError, ValueError, TypeError, IndexError, AstropyWarning)


class ReadError(ValueError):
    """A file could not be read; the message names the file (and the HDU or column).

    Every failure of a reader on one file arrives as this error (or as FileNotFoundError
    / IsADirectoryError for a path that is not a file), whatever astropy raised inside,
    so that in a read of 10^5 files the bad one is known. A ValueError, so code catching
    ValueError keeps working.
    """


@contextmanager
def reading(path: Path):
    """Turn astropy's failures on a corrupt file into an error naming the file."""
    try:
        yield
    except _UNREADABLE as exc:
        raise ReadError(f"{path}: not a readable FITS file ({exc}).") from exc


def read_guarded(read_one, path, *args):
    """``read_one(path, *args)``, any failure re-raised as a :class:`ReadError` naming ``path``.

    Corrupt files make astropy raise almost anything (KeyError('NAXIS1'), VerifyError, an
    AttributeError of a half-parsed HDU, MemoryError for an absurd NAXIS): what they have
    in common is the file, so that is what the error must name.
    """
    try:
        return read_one(path, *args)
    except (ReadError, FileNotFoundError, IsADirectoryError):
        raise
    except Exception as exc:  # see the docstring
        text = str(exc)
        if str(path) not in text:
            text = f"{path}: not a readable spectrum file ({type(exc).__name__}: {text})."
        raise ReadError(text) from exc


@contextmanager
def open_fits(path: Path):
    """Open a FITS file (a context manager) with lazily read HDUs."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file.")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, not a FITS file.")
    # Our own file object, so that it is closed even when astropy fails half-way through.
    # Lazy HDUs: astropy parses a header only when asked, the main cost of reading a file.
    with open(path, "rb") as fileobj:
        with reading(path):
            hdul = fits.open(fileobj, memmap=False, lazy_load_hdus=True)
        with hdul:
            yield hdul


def get_hdu(hdul: fits.HDUList, hdu, path: Path, *, expected_index=None):
    """The HDU named or numbered ``hdu``; the error lists the file's HDUs.

    ``expected_index``: where a file format puts the named HDU. Looking there first spares
    astropy parsing the headers before it, which a lookup by name does.
    """
    with reading(path):
        if expected_index is not None and isinstance(hdu, str):
            try:
                found = hdul[expected_index]
            except IndexError:
                found = None
            if found is not None and found.name.lower() == hdu.lower():
                return found
        try:
            return hdul[hdu]
        except (KeyError, IndexError):
            names = ", ".join(f"{i}: {h.name!r}" for i, h in enumerate(hdul))
    raise ValueError(f"{path}: has no HDU {hdu!r}; its HDUs are {names}.")


def wavelength_data(h, path: Path, hdu, flux_hdu, n_pixels: int) -> np.ndarray:
    """A wavelength array stored in an HDU (Angstrom), checked against the flux."""
    wave = spectrum_data(h, path, hdu, dtype=np.float64)
    where = f"{path}: wavelength HDU {hdu!r}"
    if wave.size != n_pixels:
        raise ValueError(
            f"{where} has {wave.size} pixels but flux HDU {flux_hdu!r} has {n_pixels}."
        )
    bad = ~np.isfinite(wave)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{where}: wavelength is not finite ({wave[i]}) at pixel {i}.")
    steps = np.diff(wave)
    if (steps <= 0).any():
        i = int(np.argmax(steps <= 0))
        raise ValueError(
            f"{where}: wavelength is not strictly increasing at pixel {i + 1} "
            f"({wave[i]!r} followed by {wave[i + 1]!r})."
        )
    return wave


def spectrum_data(h, path: Path, hdu, dtype=np.float32) -> np.ndarray:
    """The 1-D data of image HDU ``h`` (asked for as ``hdu``) as native ``dtype``."""
    with reading(path):
        data = h.data
    if data is None or np.size(data) == 0:
        raise ValueError(f"{path}: HDU {hdu!r} holds no data.")
    data = np.asarray(data)
    if data.ndim != 1:
        data = np.squeeze(data)
    if data.ndim != 1 or not np.issubdtype(data.dtype, np.number):
        raise ValueError(
            f"{path}: HDU {hdu!r} is not a 1-D spectrum (data shape {np.shape(h.data)}, "
            f"dtype {h.data.dtype})."
        )
    # FITS is big-endian; astype makes native float32 (a copy, so the file can close).
    return data.astype(dtype)


def header_keyword(header, keyword, path: Path, hdu, *, fallback=None):
    """A header value; missing keywords raise an error naming the keyword and the HDU."""
    if keyword in header:
        return header[keyword]
    if fallback is not None and keyword in fallback:
        return fallback[keyword]
    raise ValueError(f"{path}: header of HDU {hdu!r} has no keyword {keyword!r}.")


def wavelength_axis(header, n_pixels: int, path: Path, hdu) -> np.ndarray:
    """Wavelength in Angstrom of each pixel from a 1-D linear or log-linear FITS WCS.

    Linear: ``CRVAL1 + CD1_1 * (i - CRPIX1)`` for pixel ``i = 1 … n`` (``CDELT1`` when
    ``CD1_1`` is absent; ``CRPIX1`` defaults to 0, the FITS standard's value).
    Log-linear: IRAF ``DC-FLAG = 1`` (``10 ** (CRVAL1 + CD1_1 * (i - CRPIX1))``) or FITS
    ``CTYPE1 = 'WAVE-LOG'`` (``CRVAL1 * exp(CD1_1 * (i - CRPIX1) / CRVAL1)``).
    """
    where = f"{path}: HDU {hdu!r}"
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    if ctype not in _LINEAR_CTYPES | _LOG_CTYPES:
        raise ValueError(
            f"{where}: CTYPE1 = {ctype!r} is not a wavelength axis skstellar can decode; "
            f"expected one of {sorted(_LINEAR_CTYPES - {''})} (linear) or "
            f"{sorted(_LOG_CTYPES)} (logarithmic)."
        )
    if str(header.get("WAT0_001", "")).replace(" ", "").lower() == "system=multispec":
        raise ValueError(
            f"{where}: IRAF multispec wavelength solutions are not supported; "
            "export the spectrum with a linear wavelength axis."
        )
    crval = header_keyword(header, "CRVAL1", path, hdu)
    if "CD1_1" in header:
        step = header["CD1_1"]
    elif "CDELT1" in header:
        step = header["CDELT1"]
    else:
        raise ValueError(
            f"{where}: header has neither CD1_1 nor CDELT1, so the wavelength step is unknown."
        )
    crpix = header.get("CRPIX1", 0.0)
    for key, value in (("CRVAL1", crval), ("CD1_1/CDELT1", step), ("CRPIX1", crpix)):
        if isinstance(value, (bool, str)) or not np.isfinite(value):
            raise ValueError(f"{where}: {key} = {value!r} is not a finite number.")
    if step <= 0:
        raise ValueError(
            f"{where}: wavelength step {step!r} is not positive, so wavelength would not "
            "increase along the pixels."
        )
    offset = np.arange(1, n_pixels + 1, dtype=np.float64) - crpix
    dc_flag = header.get("DC-FLAG", 0)
    if dc_flag not in (-1, 0, 1):
        raise ValueError(f"{where}: DC-FLAG = {dc_flag!r} is not 0 (linear) or 1 (log-linear).")
    with np.errstate(over="ignore", invalid="ignore"):
        # an absurd header overflows to inf, reported below with the file's name
        if dc_flag == 1:
            wave = 10.0 ** (crval + step * offset)
        elif ctype in _LOG_CTYPES:
            wave = crval * np.exp(step * offset / crval)
        else:
            wave = crval + step * offset
        wave *= _angstrom_per_unit(header, where)
    if not np.all(np.isfinite(wave)):
        raise ValueError(f"{where}: the wavelength axis is not finite (NaN or inf).")
    if not wave[0] > 0:
        raise ValueError(
            f"{where}: the wavelength axis starts at {wave[0]!r}, not a positive wavelength."
        )
    return wave


def _angstrom_per_unit(header, where) -> float:
    cunit = str(header.get("CUNIT1", "")).strip()
    factor = _ANGSTROM_PER_UNIT.get(cunit.lower())
    if factor is None:
        raise ValueError(
            f"{where}: CUNIT1 = {cunit!r} is not a wavelength unit skstellar knows; "
            f"expected one of {sorted(k for k in _ANGSTROM_PER_UNIT if k)} (or none, for Angstrom)."
        )
    return factor
