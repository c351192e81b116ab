"""RadialVelocityCorrector: move each spectrum's wavelength grid to the stellar rest frame."""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin

from ..utils._persist import VersionStampMixin
from ..utils._sklearn import Interval, StrOptions, _fit_context, check_is_fitted
from ..utils._status import StarFlag, add_flags
from ._grid import SPEED_OF_LIGHT_KMS
from ._input import FlaggingMixin, as_output, as_spectral_set, rebuild

__all__ = ["RadialVelocityCorrector"]


class RadialVelocityCorrector(
    VersionStampMixin, FlaggingMixin, OneToOneFeatureMixin, TransformerMixin, BaseEstimator
):
    """Shift each spectrum to the rest frame of its star.

    Doppler convention (the classical, first-order one, used by most survey pipelines):

    .. math:: \\lambda_\\mathrm{rest} = \\lambda_\\mathrm{obs} / (1 + v / c)

    with the radial velocity ``v`` in km/s (positive: receding) and
    ``c = 299 792.458`` km/s. It differs from the relativistic formula by
    ``v^2 / (2 c^2)``: 0.003 A at 5500 A for 300 km/s.

    For a SpectralSet only the wavelength grids change, and the output shares the
    input's flux and error arrays (never writing into them). A setup on a shared grid
    keeps it and gets a per-star factor ``scale = 1 / (1 + v / c)``
    (:attr:`SetupData.scale`: star ``i`` lies at ``grid * scale[i]``), so the step costs
    O(n) and no ``(n, p)`` grid is built; :meth:`SpectralSet.wavelength` still gives the
    effective ``(n, p)`` grids on request. If all velocities are equal the grid itself
    is shifted. Per-star grids ``(n, p)`` are divided row by row. A plain array keeps its columns, so its
    rest-frame spectra are linearly interpolated back onto the given ``wavelength``
    grid; pixels that the shifted spectrum no longer covers (at most ``|v|/c`` of the
    range at each end) take the nearest edge flux.

    Parameters
    ----------
    rv : str, float or array-like of shape (n_spectra,), default="rv"
        Radial velocities in km/s: the name of a metadata column of the SpectralSet, one
        velocity for all spectra, or one per spectrum (which ties the transformer to one
        batch; prefer a metadata column inside a pipeline).
    max_rv : float, default=1000.0
        Largest accepted ``|v|`` in km/s; larger values are taken for catalogue errors.
    on_bad : {"flag", "raise"}, default="flag"
        What to do with a star whose velocity is missing (masked), non-finite or beyond
        ``max_rv``: leave its spectrum unshifted and set the status bit ``RV_INVALID``
        (after which :func:`skstellar.predict_table` gives it NaN labels), or raise a
        ValueError naming it.
    wavelength : array-like of shape (n_pixels,), default=None
        Wavelength grid (Angstrom) of a plain-array input; None means the pixel index.

    Attributes
    ----------
    n_features_in_ : int
        Number of pixels (all setups) seen during fit.
    setups_ : tuple of str
        The setups seen during fit (``("spectrum",)`` for a plain array).
    n_pixels_in_ : dict of str to int
        Pixels per setup seen during fit (later batches may differ: the step works
        star by star, so files of another reduction can be read).

    See Also
    --------
    Rebinner : Resamples the per-star rest-frame grids onto one common grid.

    Notes
    -----
    A star whose velocity is missing (masked), non-finite or beyond ``max_rv`` is flagged
    (``on_bad="flag"``) or raises a ValueError naming it; no spectrum is dropped silently.
    Later batches may have another pixel count per setup than at fit (files from another
    reduction): the correction works star by star.

    Examples
    --------
    >>> import numpy as np
    >>> from skstellar.spectra import SpectralSet
    >>> from skstellar.preprocessing import RadialVelocityCorrector
    >>> wave = np.linspace(5350.0, 5360.0, 201)
    >>> s = SpectralSet.from_arrays({"HR10": (wave, np.ones((2, 201)))},
    ...                             meta={"rv": [29.9792458, -29.9792458]})
    >>> out = RadialVelocityCorrector().fit_transform(s)
    >>> out.wavelength("HR10").shape
    (2, 201)
    >>> np.round(out.wavelength("HR10")[:, 0], 3).tolist()
    [5349.465, 5350.535]
    """

    _parameter_constraints: dict = {
        "rv": [str, Real, "array-like"],
        "max_rv": [Interval(Real, 0, None, closed="neither")],
        "on_bad": [StrOptions({"flag", "raise"})],
        "wavelength": ["array-like", None],
    }

    def __init__(self, *, rv="rv", max_rv=1000.0, on_bad="flag", wavelength=None):
        self.rv = rv
        self.max_rv = max_rv
        self.on_bad = on_bad
        self.wavelength = wavelength

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate ``X`` and its radial velocities.

        Parameters
        ----------
        X : SpectralSet or array-like of shape (n_spectra, n_pixels)
        y : None
            Ignored.

        Returns
        -------
        self : RadialVelocityCorrector
        """
        S, from_array = as_spectral_set(self, X, reset=True)
        self._velocities(S, from_array)
        return self

    def transform(self, X):
        """Return ``X`` in the rest frame; ``X`` itself is left unchanged.

        Parameters
        ----------
        X : SpectralSet or array-like of shape (n_spectra, n_pixels)

        Returns
        -------
        SpectralSet, or ndarray of shape (n_spectra, n_pixels) float32 for an array input
        """
        check_is_fitted(self)
        S, from_array = as_spectral_set(self, X, reset=False, same_pixels=False)
        v, bad = self._velocities(S, from_array)
        doppler = 1.0 + v / SPEED_OF_LIGHT_KMS  # lambda_obs / lambda_rest
        if from_array:
            setup = S.setups[0]
            flux = _interp_to_rest(S.wavelength(setup), S.flux(setup), doppler)
            return as_output(rebuild(S, {setup: (S.wavelength(setup), flux, None)}), True)
        meta = S.meta
        if bad.any():
            meta = S.meta.copy(copy_data=False)
            add_flags(meta, bad, StarFlag.RV_INVALID)
        setups = {}
        for setup in S.setups:
            data = S.setup_data(setup)
            scale = None
            if data.shared_grid and np.all(doppler == doppler[0]):
                wave = data.grid / doppler[0]
            elif data.grid.ndim == 1:
                # A shared grid stays shared: each star's rest-frame grid is the grid
                # times 1 / doppler, 8 bytes a star instead of 8 bytes a pixel.
                wave = data.grid
                scale = 1.0 / doppler if data.scale is None else data.scale / doppler
            else:
                wave = data.grid / doppler[:, np.newaxis]
            setups[setup] = (wave, data.flux, data.error, scale)
        return as_output(rebuild(S, setups, meta), False)

    def _velocities(self, S, from_array):
        """The velocities (km/s) of the stars of ``S``, float64 (n,), 0 where invalid, and
        the mask of invalid ones (an error at the first with ``on_bad="raise"``)."""
        n = len(S)
        if isinstance(self.rv, str):
            if from_array:
                raise ValueError(
                    f"rv={self.rv!r} names a metadata column, but a plain array has no metadata. "
                    "Pass rv as a number or an array with one velocity per spectrum, or use a "
                    "SpectralSet."
                )
            if self.rv not in S.meta.colnames:
                raise ValueError(
                    f"The SpectralSet has no metadata column {self.rv!r} for the radial "
                    f"velocities; its columns are {S.meta.colnames}."
                )
            column = S.meta[self.rv]
            try:
                v = np.ma.filled(np.ma.asarray(column, dtype=np.float64), np.nan)
            except (TypeError, ValueError):
                raise ValueError(
                    f"Metadata column {self.rv!r} must hold radial velocities in km/s; it has "
                    f"dtype {column.dtype}."
                ) from None
            source = f"in column {self.rv!r}"
        elif np.ndim(self.rv) == 0:
            v = np.full(n, float(self.rv))
            source = "given as rv"
        else:
            v = np.asarray(self.rv, dtype=np.float64)
            if v.shape != (n,):
                raise ValueError(
                    f"rv has shape {v.shape} but X has {n} spectra; expected one velocity per "
                    "spectrum (or a metadata column name, or one number)."
                )
            source = "in the rv array"
        bad = ~np.isfinite(v) | (np.abs(v) > self.max_rv)
        if bad.any() and self.on_bad == "raise":
            i = int(np.flatnonzero(bad)[0])
            if not np.isfinite(v[i]):
                raise ValueError(
                    f"{S.describe_star(i)} has no finite radial velocity ({v[i]} {source}); "
                    f"{int(bad.sum())} such stars in all. Drop them, fill in their velocities, "
                    "or pass on_bad='flag'."
                )
            raise ValueError(
                f"{S.describe_star(i)} has radial velocity {v[i]:.1f} km/s {source}, beyond "
                f"max_rv={self.max_rv} km/s; {int(bad.sum())} such stars in all. Check the "
                "catalogue, raise max_rv, or pass on_bad='flag'."
            )
        # a flagged star stays unshifted; its labels are withheld downstream
        return np.where(bad, 0.0, v), bad

    @classmethod
    def _get_test_params(cls):
        """Settings for the common estimator checks: plain arrays carry no metadata."""
        return {"rv": 12.0}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def _interp_to_rest(wave, flux, doppler):
    """Rest-frame flux of every spectrum sampled on ``wave`` (linear, edges held).

    The rest-frame flux at ``wave`` is the observed flux at ``wave * doppler``.
    """
    n, p = flux.shape
    if p == 1 or np.all(doppler == 1.0):
        return flux.copy()
    observed = np.multiply.outer(doppler, wave)
    j = np.clip(np.searchsorted(wave, observed, side="right") - 1, 0, p - 2)
    t = np.clip((observed - wave[j]) / (wave[j + 1] - wave[j]), 0.0, 1.0)
    left = np.take_along_axis(flux, j, axis=1)
    right = np.take_along_axis(flux, j + 1, axis=1)
    return (left + t * (right - left)).astype(np.float32)
