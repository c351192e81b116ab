"""SpectrumCleaner: replace cosmic-ray spikes, zero and non-finite pixels by the median."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin

from ..utils._persist import VersionStampMixin
from ..utils._sklearn import Interval, StrOptions, _fit_context, check_is_fitted
from ..utils._status import StarFlag, add_flags, resolve_policy
from ..utils._threads import for_each_chunk
from ._grid import row_chunks
from ._input import FlaggingMixin, as_output, as_spectral_set, rebuild

__all__ = ["SpectrumCleaner"]

# MAD -> standard deviation for Gaussian noise; mean absolute deviation -> standard deviation.
_MAD_TO_SIGMA = 1.4826
_MEAN_AD_TO_SIGMA = 1.2533


class SpectrumCleaner(
    VersionStampMixin, FlaggingMixin, OneToOneFeatureMixin, TransformerMixin, BaseEstimator
):
    """Replace cosmic-ray spikes, zero-flux and NaN/inf pixels by each spectrum's median.

    Per spectrum and setup, over its usable pixels (finite, non-zero flux and, if
    errors are given, a finite error): the median flux ``m`` and the robust scatter
    ``s = 1.4826 * MAD`` (median absolute deviation from ``m``, which equals the
    standard deviation for Gaussian noise and is not inflated by the spikes it is meant
    to find). A pixel is replaced by ``m`` when its flux is zero, NaN or inf, when its
    error is NaN or inf (an inverse variance of 0, as readers give bad pixels), or when
    its flux exceeds ``m + sigma * s`` (a spike). The cut is one-sided: absorption
    lines lie below the median and are never touched.

    The transformer is stateless: ``fit`` only validates the input.

    Parameters
    ----------
    sigma : float, default=5.0
        Spike threshold in robust standard deviations above the median.
    on_bad : {"flag", "raise"}, default="flag"
        What to do with a spectrum without a single usable pixel (all zero, NaN or
        inf), or whose median flux lies outside ``flux_range``: set its flux to the
        continuum level 1.0 and record it (``empty_<setup>`` and the status bits
        ``EMPTY_SETUP`` / ``FLUX_RANGE``, after which :func:`skstellar.predict_table`
        gives the star NaN labels), or raise a ValueError naming the star and setup.
    flux_range : tuple (lo, hi) or None, default=None
        Accepted range of a spectrum's median flux (open below, closed above), e.g.
        ``(0.1, 10)`` for continuum-normalised spectra: a spectrum left un-normalised or
        overflowing float32 is caught here instead of yielding absurd labels. None
        accepts any median. :func:`giraffe_preprocessor` sets ``(0.1, 10)``.
    n_sample : int or None, default=1024
        The median and MAD of a spectrum of ``p`` pixels are estimated from every
        ``k``-th pixel, ``k = ceil(p / n_sample)``: exact up to ``n_sample`` pixels, and
        from 934 of HR10's 5601 and 1015 of HR21's 10141 native pixels. The median of
        ``N`` sampled pixels of Gaussian noise ``s`` is off by about ``1.25 s / sqrt(N)``,
        0.04 ``s`` here: it moves the threshold from 5 to 5.04 ``s`` at most, and the
        replacement value by far less than the noise of a pixel. None uses every pixel.
        The threshold is applied to every pixel either way.
    empty : {"raise", "flag"} or None, default=None
        Deprecated spelling of ``on_bad`` ("flag" and "raise" mean the same).
    errors : bool, default=True
        Return the flux errors (when the input has them), those of replaced pixels set
        to ``s``. False leaves them out of the output (they still mark unusable
        pixels), which saves writing a second array as large as the flux, a third of
        the cleaner's time: :func:`giraffe_preprocessor`, whose stitched output drops
        errors, does not keep them.
    wavelength : array-like of shape (n_pixels,), default=None
        Wavelength grid of a plain-array input (not used for a SpectralSet); None means
        the pixel index. The cleaner does not use wavelengths; it is accepted for
        symmetry with the other steps.

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
    RadialVelocityCorrector : The next step of the GIRAFFE chain.
    giraffe_preprocessor : The four steps with the thesis settings.

    Notes
    -----
    For a SpectralSet the output's metadata gets, per setup, an integer column
    ``n_cleaned_<setup>`` with the number of replaced pixels of each star, so that badly
    damaged spectra can be found and dropped, and the status bits ``CLEANED``,
    ``NONFINITE``, ``EMPTY_SETUP`` and ``FLUX_RANGE`` (:mod:`skstellar.utils._status`)
    in ``status_flags_<setup>``. Flux errors of replaced pixels are set to
    the robust scatter ``s`` of their spectrum. If more than half of a spectrum's pixels
    are equal (MAD = 0), ``s`` falls back to 1.2533 times the mean absolute deviation; a
    constant spectrum has no spikes. Method of Ambrosch et al. (2023), Sect. 4.1.1.

    Examples
    --------
    >>> import numpy as np
    >>> from skstellar.spectra import SpectralSet
    >>> from skstellar.preprocessing import SpectrumCleaner
    >>> flux = 1 + 0.01 * np.random.default_rng(0).standard_normal((2, 100))
    >>> flux[0, 10], flux[1, 20] = 5.0, np.nan
    >>> s = SpectralSet.from_arrays({"HR10": (np.linspace(5350, 5355, 100), flux)})
    >>> out = SpectrumCleaner().fit_transform(s)
    >>> out.meta["n_cleaned_HR10"].tolist()
    [1, 1]
    >>> bool(np.isfinite(out.flux("HR10")).all()), float(out.flux("HR10")[0, 10]) < 1.1
    (True, True)
    """

    _parameter_constraints: dict = {
        "sigma": [Interval(Real, 0, None, closed="neither")],
        "on_bad": [StrOptions({"flag", "raise"})],
        "flux_range": [tuple, list, None],
        "empty": [StrOptions({"raise", "flag"}), None],
        "n_sample": [Interval(Integral, 1, None, closed="left"), None],
        "errors": ["boolean"],
        "wavelength": ["array-like", None],
    }

    def __init__(self, *, sigma=5.0, on_bad="flag", flux_range=None, n_sample=1024, empty=None,
                 errors=True, wavelength=None):
        self.sigma = sigma
        self.on_bad = on_bad
        self.flux_range = flux_range
        self.empty = empty
        self.n_sample = n_sample
        self.errors = errors
        self.wavelength = wavelength

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate ``X`` (a SpectralSet or an array) and record its setups.

        Parameters
        ----------
        X : SpectralSet or array-like of shape (n_spectra, n_pixels)
        y : None
            Ignored.

        Returns
        -------
        self : SpectrumCleaner
        """
        as_spectral_set(self, X, reset=True, ensure_all_finite=False)
        self._policy()
        return self

    def _policy(self):
        """``on_bad`` (or the deprecated ``empty``) and the validated ``flux_range``."""
        policy = resolve_policy(self, "empty", {"raise": "raise", "flag": "flag"})
        span = self.flux_range
        if span is not None:
            try:
                lo, hi = (float(v) for v in span)
            except (TypeError, ValueError):
                raise ValueError(f"flux_range must be a pair (lo, hi) or None; got {span!r}.") from None
            if not lo < hi:
                raise ValueError(f"flux_range must have lo < hi; got {span!r}.")
            span = (lo, hi)
        return policy, span

    def transform(self, X):
        """Return a cleaned copy of ``X``; ``X`` itself is left unchanged.

        Parameters
        ----------
        X : SpectralSet or array-like of shape (n_spectra, n_pixels)

        Returns
        -------
        SpectralSet, or ndarray of shape (n_spectra, n_pixels) float32 for an array input
        """
        check_is_fitted(self)
        S, from_array = as_spectral_set(
            self, X, reset=False, ensure_all_finite=False, same_pixels=False
        )
        policy, span = self._policy()
        meta = S.meta.copy(copy_data=False)
        setups = {}
        for setup in S.setups:
            data = S.setup_data(setup)
            flux, error, counts, empty = _clean(
                data.flux, data.error, float(self.sigma), self.n_sample, self.errors
            )
            out_of_range = _out_of_range(flux, empty, span, self.n_sample)
            if policy == "raise":
                _raise_first(S, setup, data.flux.shape[1], empty, out_of_range, span)
            dead = empty | out_of_range
            if dead.any():
                flux[dead] = 1.0
                if error is not None:
                    error[dead] = 1.0
            meta[f"n_cleaned_{setup}"] = counts
            if policy == "flag":
                meta[f"empty_{setup}"] = empty
            # a float32 sum is NaN/inf exactly when a pixel is (or the flux is absurd,
            # ~1e34, which flux_range catches anyway): one pass, no (n, p) temporary
            with np.errstate(over="ignore", invalid="ignore"):
                nonfinite = ~np.isfinite(data.flux.sum(axis=1, dtype=np.float32))
            add_flags(meta, (counts > 0) & ~empty, StarFlag.CLEANED, setup)
            add_flags(meta, nonfinite & ~empty, StarFlag.NONFINITE, setup)
            add_flags(meta, empty, StarFlag.EMPTY_SETUP, setup)
            add_flags(meta, out_of_range, StarFlag.FLUX_RANGE, setup)
            setups[setup] = (data.grid, flux, error, data.scale)
        return as_output(rebuild(S, setups, meta), from_array)

    @classmethod
    def _get_test_params(cls):
        """Settings for the common estimator checks (the defaults are already cheap)."""
        return {}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def _out_of_range(flux, empty, span, n_sample):
    """Rows of cleaned ``flux`` whose median (of every k-th pixel) lies outside ``span``."""
    bad = np.zeros(flux.shape[0], dtype=bool)
    if span is None:
        return bad
    k = 1 if n_sample is None else max(1, -(-flux.shape[1] // n_sample))
    # float64: the mean of the two middle values of a float32 row near 3e38 overflows
    # Rows left NaN (empty stars) are judged elsewhere; some CPUs raise the invalid flag when widening a NaN.
    with np.errstate(invalid="ignore"):
        median = np.median(flux[:, ::k].astype(np.float64), axis=1)
    bad[:] = ~((median > span[0]) & (median <= span[1]))
    return bad & ~empty


def _raise_first(S, setup, n_pixels, empty, out_of_range, span):
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise ValueError(
            f"{S.describe_star(i)} has no usable pixel in setup {setup!r} (all "
            f"{n_pixels} are zero, NaN or inf); {int(empty.sum())} such "
            "spectra in all. Drop them, or pass on_bad='flag' to keep them flagged."
        )
    if out_of_range.any():
        i = int(np.flatnonzero(out_of_range)[0])
        raise ValueError(
            f"{S.describe_star(i)} has a median flux outside flux_range={span} in setup "
            f"{setup!r} ({int(out_of_range.sum())} such spectra): is it continuum-normalised? "
            "Normalise it, or pass on_bad='flag' to keep it flagged."
        )


def _clean(flux, error, sigma, n_sample=None, errors=True):
    """Clean all spectra of one setup, chunk by chunk; returns new arrays and counts.

    The median and MAD come from every ``k``-th pixel, ``k = ceil(p / n_sample)``
    (all pixels when ``n_sample`` is None or ``p <= n_sample``). The errors mark
    unusable pixels either way; cleaned errors are returned only with ``errors``.
    """
    from ._kernels import clean_rows  # numba: loaded on first use, not on import

    n, p = flux.shape
    k = 1 if n_sample is None else max(1, -(-p // n_sample))
    flux = np.ascontiguousarray(flux)
    out = np.empty_like(flux)
    error_in = np.empty((0, p), dtype=np.float32) if error is None else np.ascontiguousarray(error)
    keep = error is not None and errors
    err_out = np.empty_like(flux) if keep else np.empty((0, p), dtype=np.float32)
    counts = np.empty(n, dtype=np.int64)
    empty = np.zeros(n, dtype=bool)

    def chunk(rows):
        clean_rows(flux, error_in, k, sigma, _MAD_TO_SIGMA, _MEAN_AD_TO_SIGMA, out, err_out,
                   counts, empty, rows.start, rows.stop)

    for_each_chunk(chunk, row_chunks(n, p))
    return out, err_out if keep else None, counts, empty
