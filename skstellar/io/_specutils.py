"""Conversion between SpectralSet and specutils ``Spectrum`` (specutils is optional)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..spectra import SpectralSet

__all__ = ["to_specutils", "from_specutils"]


def _specutils():
    """The specutils names used here, imported on first use: specutils is an optional extra."""
    try:
        import astropy.units as u
        import specutils
        from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty
    except ImportError as exc:
        raise ImportError(
            "skstellar's specutils conversion needs the optional package specutils, which is "
            "not installed: pip install specutils (or pip install 'skstellar[test]')."
        ) from exc
    # specutils 2 renamed Spectrum1D to Spectrum
    spectrum = getattr(specutils, "Spectrum", None) or specutils.Spectrum1D
    return u, spectrum, StdDevUncertainty, VarianceUncertainty, InverseVariance


def to_specutils(spectral_set, setup, index=None):
    """One setup of a SpectralSet as a specutils ``Spectrum``.

    Parameters
    ----------
    spectral_set : SpectralSet
    setup : str
        The setup to convert.
    index : int, slice, array of int, boolean mask or None, default=None
        The stars to convert: an int gives a ``Spectrum`` with 1-D flux, anything else
        (None: all stars) one with 2-D flux ``(n_stars, n_pixels)`` on a shared spectral
        axis.

    Returns
    -------
    specutils.Spectrum
        Spectral axis in Angstrom; flux in ``meta.meta["flux_unit"]`` of the set (set by
        :func:`from_specutils`), else dimensionless; the error, if any, as
        ``StdDevUncertainty``. ``Spectrum.meta`` holds ``setup`` and ``id`` (a str, or a
        list of str for 2-D flux).

    Raises
    ------
    ImportError
        specutils is not installed.
    ValueError
        Several stars with per-star wavelength grids were asked for: a ``Spectrum`` has one
        spectral axis. Pass an int ``index`` or resample to a common grid first.

    See Also
    --------
    from_specutils : The inverse conversion.

    Examples
    --------
    >>> import numpy as np
    >>> from skstellar.spectra import SpectralSet
    >>> from skstellar.io import to_specutils
    >>> wave = np.linspace(8500.0, 8510.0, 201)
    >>> s = SpectralSet.from_arrays({"HR21": (wave, np.ones((3, 201)))},
    ...                             meta={"id": ["a", "b", "c"]})
    >>> spec = to_specutils(s, "HR21", index=1)
    >>> spec.flux.shape, spec.spectral_axis.unit, spec.meta["id"]
    ((201,), Unit("Angstrom"), 'b')
    >>> to_specutils(s, "HR21").flux.shape
    (3, 201)
    """
    u, spectrum, stddev, _, _ = _specutils()
    if not isinstance(spectral_set, SpectralSet):
        raise TypeError(f"to_specutils needs a SpectralSet; got {type(spectral_set).__name__}.")
    single = index is not None and isinstance(index, (int, np.integer)) and not isinstance(
        index, (bool, np.bool_)
    )
    subset = spectral_set if index is None else spectral_set[index]
    data = subset.setup_data(setup)
    if data.shared_grid:
        wave = data.wavelength
    elif single or len(subset) == 1 or np.all(data.wavelength == data.wavelength[0]):
        wave = data.wavelength[0]
    else:
        raise ValueError(
            f"setup {setup!r} has per-star wavelength grids, but a Spectrum has one spectral "
            f"axis: pass an int index to convert one star, or resample the {len(subset)} "
            "stars to a common grid first (skstellar.preprocessing.Rebinner)."
        )
    flux, error = data.flux, data.error
    ids = [str(i) for i in subset.ids]
    if single:
        flux = flux[0]
        error = None if error is None else error[0]
    unit = u.Unit(spectral_set.meta.meta.get("flux_unit", ""))
    return spectrum(
        flux=flux * unit,
        spectral_axis=wave * u.AA,
        uncertainty=None if error is None else stddev(error),
        meta={"setup": setup, "id": ids[0] if single else ids},
    )


def from_specutils(spectra, setup, meta=None):
    """A one-setup SpectralSet from a specutils ``Spectrum`` or a list of them.

    Parameters
    ----------
    spectra : specutils.Spectrum or list of specutils.Spectrum
        A ``Spectrum`` with 1-D flux is one star, one with 2-D flux ``(n, p)`` is ``n``
        stars on its spectral axis; a list is stacked star after star.
    setup : str
        Name of the setup in the returned set.
    meta : astropy Table, dict of columns or None, default=None
        Per-star metadata. When None, the ids are taken from the spectra's
        ``meta["id"]`` where every spectrum has one (as :func:`to_specutils` writes them),
        else numbered ``"0" … "n-1"``.

    Returns
    -------
    SpectralSet
        Wavelength in Angstrom (spectral axes in frequency or energy are converted and,
        when then decreasing, reversed with the flux); a shared grid when all spectra have
        the same one. Flux in the unit of the first spectrum, recorded in
        ``meta.meta["flux_unit"]``. Uncertainties of any astropy kind (standard deviation,
        variance, inverse variance) become the 1-sigma error. **Masked pixels get NaN flux**,
        so that they stay visible as bad pixels.

    Raises
    ------
    ImportError
        specutils is not installed.
    ValueError
        Spectra of different lengths, flux units that do not convert into each other, or
        some spectra with an uncertainty and some without.

    See Also
    --------
    to_specutils : The inverse conversion.

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from specutils import Spectrum
    >>> from skstellar.io import from_specutils
    >>> spec = Spectrum(flux=np.ones((2, 50)) * u.dimensionless_unscaled,
    ...                 spectral_axis=np.linspace(600.0, 601.0, 50) * u.nm)
    >>> s = from_specutils(spec, "red")
    >>> s.shape, s.wavelength("red")[[0, -1]].round(6).tolist()
    ((2, 50), [6000.0, 6010.0])
    """
    u, spectrum, stddev, variance, ivar = _specutils()
    items = [spectra] if isinstance(spectra, spectrum) else list(spectra)
    if not items:
        raise ValueError("from_specutils: no spectra given (the list is empty).")
    unit = None
    waves, fluxes, errors, ids = [], [], [], []
    for k, sp in enumerate(items):
        where = f"spectrum {k}"
        if not isinstance(sp, spectrum):
            raise TypeError(f"{where} is a {type(sp).__name__}, not a specutils Spectrum.")
        unit = sp.flux.unit if unit is None else unit
        try:
            flux = sp.flux.to_value(unit)
        except u.UnitConversionError:
            raise ValueError(
                f"{where}: flux unit {sp.flux.unit} does not convert to {unit} (the unit of "
                "spectrum 0)."
            ) from None
        wave = u.Quantity(sp.spectral_axis).to_value(u.AA, equivalencies=u.spectral())
        error = _sigma(sp.uncertainty, flux.shape, where, (stddev, variance, ivar))
        if sp.mask is not None:
            flux = np.where(sp.mask, np.nan, flux)
        if wave.size > 1 and wave[-1] < wave[0]:
            wave, flux = wave[::-1], flux[..., ::-1]
            error = None if error is None else error[..., ::-1]
        flux = np.atleast_2d(flux)
        waves.append(wave)
        fluxes.append(flux)
        errors.append(None if error is None else np.atleast_2d(error))
        star_ids = sp.meta.get("id") if isinstance(sp.meta, Mapping) else None
        ids.append(None if star_ids is None else np.atleast_1d(star_ids).astype(str))
    sizes = {w.size for w in waves}
    if len(sizes) > 1:
        raise ValueError(
            f"setup {setup!r}: the spectra have different lengths {sorted(sizes)}; resample "
            "them to a common grid first."
        )
    has_error = [e is not None for e in errors]
    if any(has_error) and not all(has_error):
        raise ValueError(
            f"setup {setup!r}: spectrum {has_error.index(False)} has no uncertainty but "
            f"spectrum {has_error.index(True)} has one."
        )
    if all(np.array_equal(w, waves[0]) for w in waves):
        wave = waves[0]
    else:
        wave = np.concatenate([np.broadcast_to(w, f.shape) for w, f in zip(waves, fluxes)])
    arrays = (wave, np.concatenate(fluxes))
    if all(has_error):
        arrays += (np.concatenate(errors),)
    if meta is None and all(i is not None for i in ids):
        meta = {"id": np.concatenate(ids)}
    result = SpectralSet.from_arrays({str(setup): arrays}, meta=meta)
    result.meta.meta["flux_unit"] = unit.to_string()
    return result


def _sigma(uncertainty, shape, where, kinds):
    stddev, variance, ivar = kinds
    if uncertainty is None:
        return None
    values = np.asarray(uncertainty.array, dtype=np.float64)
    if values.shape != shape:
        raise ValueError(f"{where}: uncertainty has shape {values.shape} but flux has {shape}.")
    with np.errstate(divide="ignore", invalid="ignore"):
        if isinstance(uncertainty, stddev):
            return values
        if isinstance(uncertainty, variance):
            return np.where(values >= 0, np.sqrt(values), np.nan)
        if isinstance(uncertainty, ivar):
            return 1.0 / np.sqrt(values)  # 0 -> inf, negative -> NaN
    raise ValueError(
        f"{where}: uncertainty of type {type(uncertainty).__name__} is not a standard "
        "deviation, variance or inverse variance."
    )
