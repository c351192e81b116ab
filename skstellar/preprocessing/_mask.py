"""LineMasker: hide chosen lines from a model by setting their pixels to the continuum."""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin

from ..utils._sklearn import Interval, _fit_context, check_is_fitted
from ._input import as_output, as_spectral_set, rebuild

__all__ = ["LineMasker"]


class LineMasker(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Replace the pixels within ``width`` of given lines by the continuum (1.0).

    The masked-line experiment of Nepal et al. (2023): a network trained on spectra whose
    Li 6707.8 A line is masked cannot find the Li-rich giants, so the line, not something
    correlated with it, carries the label. Put it after the :class:`Rebinner` (on the model's
    grid) or after the :class:`SetupStitcher` (give ``wavelength``); inside a pipeline,
    :func:`skstellar.explain.saliency` then reports exactly zero saliency on the masked
    pixels.

    Parameters
    ----------
    lines : array-like of shape (n_lines,)
        Rest-frame centres of the lines to mask, in Angstrom (pixel index for a plain array
        without ``wavelength``), e.g. ``table["wavelength"]`` of a line table.
    width : float, default=0.5
        Half-width of each masked window (same unit as ``lines``): a pixel is masked when
        its centre lies within ``width`` of a line centre.
    wavelength : array-like of shape (n_pixels,), default=None
        Wavelength grid (Angstrom) of a plain-array input; None means the pixel index.

    Attributes
    ----------
    lines_ : ndarray of shape (n_lines,), float64
        The line centres, sorted.
    n_features_in_ : int
        Number of pixels (all setups) seen during fit.
    setups_ : tuple of str
        The setups seen during fit (``("spectrum",)`` for a plain array).
    n_pixels_in_ : dict of str to int
        Pixels per setup seen during fit.

    See Also
    --------
    skstellar.explain.saliency : Where the network reads each label.

    Notes
    -----
    Flux errors are kept as they are. Per-star grids (after a
    :class:`RadialVelocityCorrector` without rebinning) are masked star by star.

    Examples
    --------
    >>> import numpy as np
    >>> from skstellar.preprocessing import LineMasker
    >>> wave = np.arange(8800.0, 8810.0, 0.5)
    >>> flux = np.full((2, wave.size), 0.8, dtype=np.float32)
    >>> out = LineMasker(lines=[8806.75], width=0.6, wavelength=wave).fit_transform(flux)
    >>> wave[out[0] == 1.0].tolist()
    [8806.5, 8807.0]
    """

    _parameter_constraints: dict = {
        "lines": ["array-like"],
        "width": [Interval(Real, 0, None, closed="neither")],
        "wavelength": ["array-like", None],
    }

    def __init__(self, *, lines=(6707.8,), width=0.5, wavelength=None):
        self.lines = lines
        self.width = width
        self.wavelength = wavelength

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate ``X`` and the lines.

        Parameters
        ----------
        X : SpectralSet or array-like of shape (n_spectra, n_pixels)
        y : None
            Ignored.

        Returns
        -------
        self : LineMasker
        """
        try:
            lines = np.asarray(self.lines, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"lines must be numbers (line centres); got {self.lines!r}.") from None
        if lines.ndim != 1 or lines.size == 0 or not np.isfinite(lines).all():
            raise ValueError(f"lines must be a non-empty 1-D sequence of finite line centres; got {self.lines!r}.")
        as_spectral_set(self, X, reset=True)
        self.lines_ = np.sort(lines)
        return self

    def pixel_mask(self, wavelength):
        """True for each pixel of ``wavelength`` (any shape) within ``width`` of a line.

        Parameters
        ----------
        wavelength : array-like
            Pixel centres, in the unit of ``lines``.

        Returns
        -------
        ndarray of bool, shaped like ``wavelength``
        """
        check_is_fitted(self)
        wave = np.asarray(wavelength, dtype=np.float64)
        j = np.clip(np.searchsorted(self.lines_, wave), 1, max(self.lines_.size - 1, 1))
        nearest = np.minimum(np.abs(wave - self.lines_[j - 1]), np.abs(wave - self.lines_[j % self.lines_.size]))
        return nearest <= self.width

    def transform(self, X):
        """Return a copy of ``X`` with the masked pixels set to 1.0.

        Parameters
        ----------
        X : SpectralSet or array-like of shape (n_spectra, n_pixels)

        Returns
        -------
        SpectralSet, or ndarray of shape (n_spectra, n_pixels) float32 for an array input
        """
        check_is_fitted(self)
        S, from_array = as_spectral_set(self, X, reset=False)
        setups = {}
        for setup in S.setups:
            data = S.setup_data(setup)
            mask = self.pixel_mask(data.grid if data.scale is None else data.wavelength)
            flux = data.flux.copy()
            if mask.ndim == 1:
                flux[:, mask] = 1.0
            else:
                flux[mask] = 1.0
            setups[setup] = (data.grid, flux, data.error, data.scale)
        return as_output(rebuild(S, setups), from_array)

    @classmethod
    def _get_test_params(cls):
        """Settings for the common estimator checks: lines on the pixel index of a plain array."""
        return {"lines": [1.0, 3.0], "width": 0.5}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
