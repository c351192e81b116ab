"""Do the labels explain the spectrum? A polynomial spectrum emulator: :class:`SpectrumEmulator`.

The emulator models every pixel's normalised flux as a polynomial in the standardised labels
(the quadratic model of The Cannon, Ness et al. 2015), fitted by ridge-regularised least
squares on the training set. Given a spectrum and the labels a regressor predicted for it,
the residual ``flux - emulator(labels)`` divided by the noise and the emulator's own per-pixel
scatter is about 1 per pixel for a spectrum the labels explain. Emission that fills a line
core, a badly normalised continuum or labels far off leave a residual the labels cannot
produce, whatever the spectrum's overall shape -- which is what a shape-based score
(PCA, t-SNE map) can miss: a filled-in Ca II core looks like another star's absorption line.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from astropy.table import Table, vstack
from scipy.ndimage import minimum_filter1d
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.model_selection import KFold
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from sklearn.utils.extmath import randomized_svd
from sklearn.utils.validation import _check_sample_weight
from threadpoolctl import threadpool_limits

from ..utils._persist import VersionStampMixin
from ..utils._sklearn import Interval, _fit_context, check_is_fitted, validate_data
from ..utils._threads import for_each_chunk, resolve_n_jobs
from . import _scores

__all__ = ["SpectrumEmulator", "LINE_REGIONS"]

#: Line regions whose residual :meth:`SpectrumEmulator.score_spectra` reports by name (rest
#: wavelengths in Angstrom, taken +-1 A by default: the line core and the near wings at
#: GIRAFFE resolution). Regions the grid does not cover give NaN.
LINE_REGIONS = {
    "ca_triplet": (8498.02, 8542.09, 8662.14),
    "halpha": (6562.80,),
    "he_6678": (6678.15,),
    "li": (6707.76,),
    "mg": (5528.41, 8717.81, 8736.02, 8806.75),
    "al": (5557.06, 8772.87, 8773.90),
}
# Spectra per chunk of score_spectra (fixed: the chunks' results must not depend on anything else).
_ROWS = 256
# Noise below this fraction of the RMS flux is treated as this fraction (noise-free spectra).
_NOISE_FLOOR = 1e-6
# Gauss-Newton ignores pixels this many expected residuals off the emulated spectrum.
_CLIP = 5.0
# Scores below this are round-off (an emulator that reproduces its training spectra exactly).
_SCORE_FLOOR = 1e-6


class SpectrumEmulator(VersionStampMixin, MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Spectra from labels, and a score of how well a spectrum's labels explain it.

    A regressor in the scikit-learn sense whose input is the labels and whose output is the
    spectrum: every pixel is a polynomial of degree ``degree`` in the standardised labels (the
    quadratic model of The Cannon), fitted by ridge least squares. Its use in skstellar is the
    other direction: :meth:`score_spectra` reconstructs each spectrum from the labels a
    network predicted for it and measures the residual in units of the expected one (the
    spectrum's noise and the emulator's per-pixel scatter, in quadrature), over the whole
    spectrum, in the worst run of ``window`` pixels, and in named line regions.
    :meth:`explains` turns the first two into a verdict whose thresholds are calibrated on
    the training spectra (out of fold), like the similarity filter's. The filter fits one when
    it is given labels (``TSNESimilarityFilter(label_check="auto")`` in a pipeline) and
    :func:`skstellar.predict_table` reports it.

    Parameters
    ----------
    degree : int, default=2
        Degree of the polynomial in the labels, 1-5 (2: The Cannon's quadratic model; the
        label check's thresholds were measured with it). Higher degrees follow the spectrum
        more closely for :meth:`fit_labels` (84, 210 and 462 terms per pixel for six labels at
        degrees 3, 4 and 5), if ``n_components`` keeps them from learning the training noise.
    alpha : float, default=1e-3
        Ridge penalty on the polynomial coefficients (not the intercept), relative to the
        summed sample weight: it only keeps rare label combinations from blowing up.
    n_components : int or None, default=None
        Learn the polynomials from the training spectra projected on their ``n_components``
        leading principal components (weighted by ``sample_weight``): the projection keeps
        the stellar signal and drops most of the noise, which a polynomial of hundreds of terms
        would otherwise learn as signal. The scatter and the thresholds are still measured on
        the spectra as given. None: no projection. On the mock survey, degree 5 with 25
        components brings :meth:`fit_labels` within 1.3-1.6x of the Cramér-Rao bound
        (docs/performance.rst).
    window : int, default=4
        Length in pixels of the runs of the local score: the local score is the largest
        residual that ``window`` consecutive pixels all reach. Emission filling a GIRAFFE
        line core spans 8-13 pixels and stands out; a cleaned cosmic-ray hit (one or two
        pixels) does not. 3, 5 and 7 flagged 70, 97 and 94 % of weakly emitting mock stars
        where 4 flagged all (docs/filters.rst).
    refine : int, default=2
        Gauss-Newton steps (:meth:`fit_labels`) that :meth:`score_spectra` takes from the given
        labels before it measures the residual: the residual is then that of the best labels
        near the given ones, so a network's honest errors are not held against the spectrum,
        while what no label change can produce (emission in a few line cores, a distorted
        continuum) remains. 0 scores the given labels as they are.
    contamination : float in (0, 0.5], default=0.005
        Fraction of training spectra (out of fold) above the thresholds of :meth:`explains`,
        hence the expected fraction of false flags among spectra drawn like them.
    n_folds : int, default=5
        Folds of the out-of-fold residuals that set the per-pixel scatter and the thresholds
        (a spectrum's own fit would hide part of its residual).
    random_state : int, RandomState instance or None, default=None
        Shuffles the folds.

    Attributes
    ----------
    n_features_in_ : int
        Number of labels.
    n_pixels_ : int
        Number of pixels of the spectra.
    coefficients_ : ndarray of shape (n_terms, n_pixels)
        Polynomial coefficients of every pixel (first row: the intercept).
    scatter_ : ndarray of shape (n_pixels,)
        The emulator's intrinsic scatter per pixel: the out-of-fold residual beyond the noise
        (The Cannon's s^2, as a standard deviation).
    training_scores_ : astropy.table.Table
        :meth:`score_spectra` of the training spectra, out of fold (without line regions).
    thresholds_ : dict of str to (float, float)
        ``(base, factor)`` of the ``residual`` and ``local`` scores: a spectrum is over the
        threshold of a score when ``score / base / factor > 1``; ``contamination`` of the
        training spectra are over at least one (the two share that budget).

    See Also
    --------
    skstellar.filters.TSNESimilarityFilter : Fits one with ``label_check="auto"``.

    Notes
    -----
    The labels are first moved ``refine`` Gauss-Newton steps towards the best fit. The residual
    of spectrum i at pixel p is then ``z = (f - g(labels)) / sqrt(noise_i**2 + s_p(labels)**2 +
    sum_k (dg/dlabel_k * e_k)**2)``: the noise is measured on the spectrum
    (DER_SNR, Stoehr et al. 2008, the lower of its values on the flux and on the residual, as
    in the filter); ``s_p(labels)**2`` is the emulator's misfit variance, itself a polynomial
    of the labels fitted to the out-of-fold residuals beyond the noise (at least the pixel's
    mean ``scatter_**2``): the quadratic model misses saturated cores of some stars more than
    others; the last term propagates the labels' errors ``e_k`` when they are given. Pixels in
    runs of three or more equal values (holes the cleaner filled with one value) count as
    explained. ``residual`` is the RMS of z over the pixels, ``local`` the largest ``abs(z)`` that
    ``window`` consecutive pixels all reach; both are about 1-2 for a spectrum drawn like the
    training set with labels near its true ones. The thresholds come from out-of-fold training
    scores at the true labels. With ``refine=0`` a network's honest errors (25 K, 0.07 dex) would
    flag about 6 % of alike stars; refined, or with ``label_errors``, 0.2 %. Refining is the
    default because an unusual star's wide ensemble std would excuse its residual.

    Examples
    --------
    >>> import numpy as np
    >>> from skstellar.filters import SpectrumEmulator
    >>> rng = np.random.default_rng(0)
    >>> labels = rng.uniform(-1, 1, size=(300, 2))
    >>> wave = np.linspace(0, 1, 200)
    >>> depth = 0.3 + 0.1 * labels[:, :1] + 0.05 * labels[:, 1:] ** 2
    >>> flux = 1 - depth * np.exp(-0.5 * ((wave - 0.5) / 0.02) ** 2) + 0.01 * rng.normal(size=(300, 200))
    >>> emulator = SpectrumEmulator(random_state=0).fit(labels, flux)
    >>> emission = flux[:3] + 0.15 * np.exp(-0.5 * ((wave - 0.5) / 0.005) ** 2)  # a core filled in
    >>> emulator.explains(labels[:3], flux[:3]).tolist(), emulator.explains(labels[:3], emission).tolist()
    ([True, True, True], [False, False, False])
    """

    _parameter_constraints: dict = {
        "degree": [Interval(Integral, 1, 5, closed="both")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "window": [Interval(Integral, 1, None, closed="left")],
        "refine": [Interval(Integral, 0, None, closed="left")],
        "contamination": [Interval(Real, 0, 0.5, closed="right")],
        "n_folds": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        degree=2,
        alpha=1e-3,
        n_components=None,
        window=4,
        refine=2,
        contamination=0.005,
        n_folds=5,
        random_state=None,
    ):
        self.degree = degree
        self.alpha = alpha
        self.n_components = n_components
        self.window = window
        self.refine = refine
        self.contamination = contamination
        self.n_folds = n_folds
        self.random_state = random_state

    @classmethod
    def _get_test_params(cls):
        return {"n_folds": 2, "window": 1, "random_state": 0}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the polynomial of every pixel, its scatter and the thresholds.

        Parameters
        ----------
        X : array-like of shape (n_spectra, n_labels)
            The training labels (each column in its own unit).
        y : array-like of shape (n_spectra, n_pixels) or (n_spectra,)
            The training spectra, continuum-normalised.
        sample_weight : array-like of shape (n_spectra,), default=None
            Weight of each training spectrum in the least squares (None: equal). The inverse
            noise variance, ``snr**2``, is the statistically right weight when the training
            stars span a range of S/N: on the mock survey (S/N 30-150) it brings the labels of
            :meth:`fit_labels` 5-15 % closer (docs/performance.rst). The similarity filter's
            label check fits with equal weights, the setting its thresholds were measured with.

        Returns
        -------
        self : SpectrumEmulator
        """
        labels, flux = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        flux = flux.reshape(len(flux), -1)
        n, p = flux.shape
        weight = _check_sample_weight(sample_weight, labels, dtype=np.float64, ensure_non_negative=True)
        if n < self.n_folds:
            raise ValueError(
                f"SpectrumEmulator needs at least n_folds={self.n_folds} training spectra; got n_samples={n}."
            )
        self.n_pixels_ = p
        self._scaler = StandardScaler().fit(labels, sample_weight=weight)
        self._poly = PolynomialFeatures(self.degree).fit(self._scaler.transform(labels))
        design = self._design(labels)
        rms_flux = float(np.sqrt(np.mean(flux**2)))
        self._noise_floor = max(rms_flux * _NOISE_FLOOR, np.finfo(np.float64).tiny)
        target = flux if self.n_components is None else self._projected(flux, weight)
        folds = np.empty(n, dtype=int)
        splitter = KFold(n_splits=self.n_folds, shuffle=True, random_state=self.random_state)
        for k, (_, held_out) in enumerate(splitter.split(labels)):
            folds[held_out] = k
        # Sufficient statistics per fold: the model without fold k is solve(A - A_k, B - B_k).
        weighted = design * weight[:, None]
        gram = np.stack([weighted[folds == k].T @ design[folds == k] for k in range(self.n_folds)])
        cross = np.stack([weighted[folds == k].T @ target[folds == k] for k in range(self.n_folds)])
        penalty = self.alpha * np.eye(design.shape[1])
        penalty[0, 0] = 0.0
        mass = np.bincount(folds, weights=weight, minlength=self.n_folds)
        self.coefficients_, fold_coefficients = _fold_solutions(gram, cross, penalty, mass)
        # One fold at a time (the fold's residual, its square and its variance), so memory is the
        # training flux plus a few fifths of it.
        residual = np.empty_like(flux)
        noise = np.empty(n)
        for k in range(self.n_folds):
            rows = folds == k
            residual[rows] = flux[rows] - design[rows] @ fold_coefficients[k]
            noise[rows] = self._noise(flux[rows], residual[rows])
        # The misfit is not the same for every star (saturated cores of cool dwarfs, say): its
        # variance is modelled with the same polynomial, so that a star is judged against the
        # misfit of stars like it, not of the average star. Out of fold too: a star with a large
        # residual would pull its own variance up and hide it.
        cross = np.empty((self.n_folds, design.shape[1], p))
        total = np.zeros(p)
        for k in range(self.n_folds):
            rows = folds == k
            excess = residual[rows] ** 2 - noise[rows, None] ** 2
            cross[k] = weighted[rows].T @ excess
            total += weight[rows] @ excess
        self.scatter_ = np.sqrt(np.maximum(total / weight.sum(), 0.0))
        self.scatter_coefficients_, fold_scatter = _fold_solutions(gram, cross, penalty, mass)
        del target
        parts, rows_of = [], [np.flatnonzero(folds == k) for k in range(self.n_folds)]
        for rows, coefficients in zip(rows_of, fold_scatter):
            variance = np.maximum(design[rows] @ coefficients, self.scatter_**2)
            parts.append(self._scores(flux[rows], residual[rows], noise[rows], variance, None))
        self.training_scores_ = vstack(parts)[np.argsort(np.concatenate(rows_of), kind="stable")]
        self.thresholds_ = _scores.calibrate(
            {name: np.asarray(self.training_scores_[name]) for name in ("residual", "local")},
            {"residual": None, "local": None},
            self.contamination,
            {"residual": _SCORE_FLOOR, "local": _SCORE_FLOOR},
        )
        return self

    def predict(self, X):
        """The emulated spectra of the labels X.

        Parameters
        ----------
        X : array-like of shape (n_spectra, n_labels)

        Returns
        -------
        ndarray of shape (n_spectra, n_pixels), or (n_spectra,) for one pixel
        """
        check_is_fitted(self)
        labels = validate_data(self, X, reset=False, dtype=np.float64)
        out = self._design(labels) @ self.coefficients_
        return out[:, 0] if self.n_pixels_ == 1 else out

    def score_spectra(
        self, labels, flux, *, label_errors=None, wavelength=None, regions=None, half_width=1.0, n_jobs=None
    ):
        """How far each spectrum is from the emulated spectrum of its labels, in units of the expected residual.

        Parameters
        ----------
        labels : array-like of shape (n_spectra, n_labels)
            E.g. a regressor's predictions. Rows with a non-finite label get NaN scores.
        flux : array-like of shape (n_spectra, n_pixels)
            The spectra the emulator was fitted on the grid of.
        wavelength : array-like of shape (n_pixels,), default=None
            Rest wavelength (Angstrom) of each pixel; with it the table has the wavelength of
            the worst window and one column per line region.
        label_errors : array-like of shape (n_spectra, n_labels), default=None
            1-sigma errors of the labels (an ensemble's calibrated std): their effect on the
            emulated flux, ``(d flux / d label * error)**2`` summed over labels, is added to
            the expected residual, so a network's honest errors are not held against it.
        regions : dict of str to sequence of float, default=None
            Line centres (in the unit of ``wavelength``) per region name; None:
            :data:`LINE_REGIONS` (Ca II triplet, H alpha, He I 6678, Li I 6708, Mg I, Al I lines).
        half_width : float, default=1.0
            Half-width of each line region (1 A: the core and near wings at GIRAFFE resolution).
        n_jobs : int or None, default=None
            Threads over chunks of spectra (None: 1, -1: all the task's threads); the scores do
            not depend on it.

        Returns
        -------
        astropy.table.Table
            One row per spectrum: ``residual`` (RMS over all pixels), ``local`` (RMS over
            the worst run of ``window`` pixels: the largest ``abs(z)`` they all reach), ``local_pixel``
            (the centre of that run; -1 for NaN rows),
            with a wavelength ``local_wavelength`` and ``<region>`` (RMS over the region's
            pixels, NaN where the grid does not cover it).
        """
        check_is_fitted(self)
        labels = validate_data(self, labels, reset=False, dtype=np.float64, ensure_all_finite=False)
        flux = np.asarray(flux, dtype=np.float64)
        if flux.ndim != 2 or flux.shape != (len(labels), self.n_pixels_):
            raise ValueError(
                f"score_spectra: flux of shape {flux.shape} does not match {len(labels)} label rows and the "
                f"{self.n_pixels_} pixels the SpectrumEmulator was fitted on."
            )
        if wavelength is not None:
            wavelength = np.asarray(wavelength, dtype=np.float64)
            if wavelength.shape != (self.n_pixels_,):
                raise ValueError(
                    f"score_spectra: wavelength has shape {wavelength.shape}; expected ({self.n_pixels_},)."
                )
        finite = np.isfinite(labels).all(axis=1)
        if label_errors is not None:
            label_errors = np.asarray(label_errors, dtype=np.float64)
            if label_errors.shape != labels.shape:
                raise ValueError(
                    f"score_spectra: label_errors of shape {label_errors.shape} do not match labels {labels.shape}."
                )
            finite &= np.isfinite(label_errors).all(axis=1)
        parts = {}

        def one(rows):
            lab = np.where(finite[rows, None], labels[rows], 0.0)
            noise = None
            if self.refine:
                lab, noise = self._gauss_newton(flux[rows], lab, self.refine)
            design = self._design(lab)
            residual = flux[rows] - _product(design, self.coefficients_)
            variance = self._variance(design)
            if label_errors is not None:
                variance = variance + self._propagated(lab, np.where(finite[rows, None], label_errors[rows], 0.0))
            if noise is None:
                noise = self._noise(flux[rows], residual)
            parts[rows.start] = self._scores(flux[rows], residual, noise, variance, wavelength, regions, half_width)

        _for_each_block(len(labels), one, n_jobs)
        table = vstack([parts[start] for start in sorted(parts)])
        for name in table.colnames:
            column = np.asarray(table[name])
            if column.dtype.kind == "f":
                table[name] = np.where(finite, column, np.nan)
        table["local_pixel"] = np.where(finite, table["local_pixel"], -1)
        return table

    def fit_labels(self, flux, initial_labels, *, n_iter=5, n_jobs=None):
        """The labels whose emulated spectrum best fits each spectrum: The Cannon's test step.

        Gauss-Newton on the chi^2 of the spectrum against the emulator, weighted by the
        spectrum's noise and the emulator's misfit variance (:meth:`score_spectra`), from
        ``initial_labels`` (e.g. a network's or a linear model's). After the first step, pixels
        more than 5 expected residuals off the emulated spectrum are ignored (cosmic-ray hits
        the cleaner leaves in line cores, where they stay under the median), as are runs of
        equal values (holes the cleaner filled). Where the emulator is
        accurate this approaches the information limit of the pixels; where it is not (the
        quadratic model's misfit), its labels inherit the misfit as a bias. The performance
        page compares both on the mock survey.

        Parameters
        ----------
        flux : array-like of shape (n_spectra, n_pixels)
        initial_labels : array-like of shape (n_spectra, n_labels)
            Starting point; rows with a non-finite label stay NaN.
        n_iter : int, default=5
            Gauss-Newton steps (the model is polynomial: 2-3 usually converge).
        n_jobs : int or None, default=None
            Threads over chunks of spectra; the result does not depend on it.

        Returns
        -------
        ndarray of shape (n_spectra, n_labels)
        """
        check_is_fitted(self)
        labels = validate_data(self, initial_labels, reset=False, dtype=np.float64, ensure_all_finite=False).copy()
        flux = np.asarray(flux, dtype=np.float64)
        if flux.shape != (len(labels), self.n_pixels_):
            raise ValueError(
                f"fit_labels: flux of shape {flux.shape} does not match {len(labels)} label rows and the "
                f"{self.n_pixels_} pixels the SpectrumEmulator was fitted on."
            )
        finite = np.isfinite(labels).all(axis=1)
        def one(block):
            rows = np.arange(block.start, block.stop)[finite[block]]
            labels[rows] = self._gauss_newton(flux[rows], labels[rows], n_iter)[0]

        _for_each_block(len(labels), one, n_jobs)
        return labels

    def explains(self, labels, flux, *, scores=None):
        """True where the labels explain the spectrum (both scores under their thresholds).

        Parameters
        ----------
        labels : array-like of shape (n_spectra, n_labels)
        flux : array-like of shape (n_spectra, n_pixels)
        scores : astropy.table.Table, default=None
            :meth:`score_spectra` of the same spectra, if already computed.

        Returns
        -------
        ndarray of shape (n_spectra,), bool
            False also for rows with non-finite labels (nothing to explain them with).
        """
        check_is_fitted(self)
        if scores is None:
            scores = self.score_spectra(labels, flux)
        ratio = np.max(
            [
                _scores.ratios(np.asarray(scores[name], float), *self.thresholds_[name])
                for name in ("residual", "local")
            ],
            axis=0,
        )
        return ratio <= 1.0  # NaN (no labels) compares False

    # -- internals -----------------------------------------------------------------------
    def _projected(self, flux, weight):
        """The training spectra on their leading ``n_components`` principal components (weighted)."""
        if self.n_components > min(flux.shape):
            raise ValueError(
                f"SpectrumEmulator: n_components={self.n_components} is more than the training set has "
                f"({flux.shape[0]} spectra of {flux.shape[1]} pixels)."
            )
        mean = np.average(flux, axis=0, weights=weight)
        scaled = (flux - mean) * np.sqrt(weight / weight.mean())[:, None]
        _, _, basis = randomized_svd(scaled, self.n_components, random_state=self.random_state)
        return mean + ((flux - mean) @ basis.T) @ basis

    def _design(self, labels):
        return self._poly.transform(self._scaler.transform(labels))

    def _noise(self, flux, residual):
        floor = self._noise_floor
        return np.minimum(_scores.noise_level(flux, floor), _scores.noise_level(residual, floor))

    def _gauss_newton(self, flux, labels, n_iter, noise=None):
        """``n_iter`` Gauss-Newton steps of the labels towards the best fit of flux; and the noise.

        The noise is measured once, at the starting labels (DER_SNR is the costly part), unless given."""
        filled = _filled_runs(flux)
        for step in range(n_iter):
            design = self._design(labels)
            residual = flux - _product(design, self.coefficients_)
            if noise is None:
                noise = self._noise(flux, residual)
            weight = 1.0 / (noise[:, None] ** 2 + self._variance(design))
            # Holes the cleaner filled and, once the labels are near, pixels beyond _CLIP sigma (cosmic-ray
            # hits the cleaner leaves in line cores, where they stay under the median) carry no weight.
            weight[filled] = 0.0
            if step:
                weight[residual**2 * weight > _CLIP**2] = 0.0
            # (n, k, p): one row of the Jacobian per label
            jacobian = np.stack([_product(d, self.coefficients_) for d in self._design_derivatives(labels)], axis=1)
            weighted = jacobian * weight[:, None, :]
            normal = weighted @ jacobian.transpose(0, 2, 1)
            # A little damping (Levenberg): a label the spectrum does not constrain stays put.
            normal += 1e-9 * np.trace(normal, axis1=1, axis2=2)[:, None, None] * np.eye(normal.shape[1]) + 1e-300
            gradient = (weighted @ residual[:, :, None])[..., 0]
            labels = labels + np.linalg.solve(normal, gradient[..., None])[..., 0]
            # Far outside the training labels the polynomial means nothing: no step goes beyond.
            labels = np.clip(labels, self._scaler.mean_ - 10 * self._scaler.scale_,
                             self._scaler.mean_ + 10 * self._scaler.scale_)
        return labels, noise

    def _design_derivatives(self, labels):
        """d design / d label_k for every label k, ``(n, n_terms)`` each: exact, ``p u^(p-1)``
        times the other factors of a term, over the scale of the label."""
        u = self._scaler.transform(labels)
        powers = self._poly.powers_
        out = []
        for k in range(labels.shape[1]):
            lowered = powers.copy()
            lowered[:, k] = np.maximum(lowered[:, k] - 1, 0)
            derivative = powers[:, k] * np.prod(u[:, None, :] ** lowered[None, :, :], axis=2)
            out.append(derivative / self._scaler.scale_[k])
        return out

    def _propagated(self, labels, errors):
        """Flux variance from independent label errors, ``sum_k (d flux / d label_k * error_k)**2``."""
        total = np.zeros((len(labels), self.n_pixels_))
        for k, derivative in enumerate(self._design_derivatives(labels)):
            total += np.square(_product(derivative * errors[:, k : k + 1], self.coefficients_))
        return total

    def _variance(self, design):
        """The emulator's misfit variance of each pixel for each star, from its labels."""
        # At least the pixel's mean misfit: where the misfit is noise, its polynomial dips below zero.
        return np.maximum(_product(design, self.scatter_coefficients_), self.scatter_**2)

    def _scores(self, flux, residual, noise, variance, wavelength, regions=None, half_width=1.0):
        z2 = residual**2 / (noise[:, None] ** 2 + variance)
        # Runs of equal flux are holes the cleaner filled with one value (zero-flux runs): no
        # information, so not evidence against the labels; the status flags report them.
        filled = _filled_runs(flux)
        z2[filled] = 0.0
        table = Table()
        used = np.maximum(z2.shape[1] - filled.sum(axis=1), 1)
        table["residual"] = np.sqrt(z2.sum(axis=1) / used)
        # The smallest z^2 of each run of `window` pixels, not their mean: a cleaned cosmic-ray hit
        # in a deep line core is one or two pixels set to the continuum, an emission core a run.
        w = min(self.window, z2.shape[1])
        window = minimum_filter1d(z2, size=w, axis=1, mode="nearest")
        worst = np.argmax(window, axis=1)
        table["local"] = np.sqrt(window[np.arange(len(z2)), worst])
        table["local_pixel"] = worst
        if wavelength is not None:
            table["local_wavelength"] = wavelength[worst]
            for name, centres in (LINE_REGIONS if regions is None else regions).items():
                inside = np.zeros(len(wavelength), dtype=bool)
                for centre in np.atleast_1d(np.asarray(centres, dtype=np.float64)):
                    inside |= np.abs(wavelength - centre) <= half_width
                table[name] = np.sqrt(np.mean(z2[:, inside], axis=1)) if inside.any() else np.full(len(z2), np.nan)
        return table


def _filled_runs(flux, length=3):
    """Pixels in runs of at least ``length`` exactly equal values along each row."""
    n, p = flux.shape
    if p < length:
        return np.zeros((n, p), dtype=bool)
    same = flux[:, 1:] == flux[:, :-1]  # pixel i equals pixel i + 1
    # A run of `length` equal pixels starts at i when same[i], ..., same[i + length - 2] all hold.
    start = np.ones((n, p - length + 1), dtype=bool)
    for k in range(length - 1):
        start &= same[:, k : k + p - length + 1]
    filled = np.zeros((n, p), dtype=bool)
    for k in range(length):
        filled[:, k : k + p - length + 1] |= start
    return filled


def _fold_solutions(gram, cross, penalty, mass):
    """Ridge solutions on all rows and without each fold, from per-fold sums ``gram[k] = Q_k^T W_k Q_k``
    and ``cross[k] = Q_k^T W_k Y_k`` (the penalty scales with the weight ``mass[k]`` of the rows used)."""
    full = np.linalg.solve(gram.sum(axis=0) + mass.sum() * penalty, cross.sum(axis=0))
    without = [
        np.linalg.solve(gram.sum(axis=0) - gram[k] + (mass.sum() - mass[k]) * penalty, cross.sum(axis=0) - cross[k])
        for k in range(len(gram))
    ]
    return full, without


def _for_each_block(n, func, n_jobs):
    """``func(rows)`` for consecutive slices of ``_ROWS`` rows, on ``n_jobs`` threads of one BLAS thread
    each: a multi-threaded gemm rounds with its thread count, and a verdict must not depend on the machine."""
    with threadpool_limits(1):
        for_each_chunk(func, [slice(start, min(start + _ROWS, n)) for start in range(0, n, _ROWS)],
                       resolve_n_jobs(n_jobs))


def _product(a, b):
    """``a @ b`` in blocks of exactly ``_ROWS`` rows of ``a`` (the last zero-padded): BLAS takes other
    kernels for other row counts, rounding the last bit differently, and a star's scores must not
    depend on how many stars share its chunk."""
    out = np.empty((len(a), b.shape[1]), dtype=np.result_type(a, b))
    padded = np.zeros((_ROWS, a.shape[1]), dtype=a.dtype)
    for start in range(0, len(a), _ROWS):
        block = a[start : start + _ROWS]
        padded[: len(block)] = block
        padded[len(block) :] = 0.0
        out[start : start + len(block)] = (padded @ b)[: len(block)]
    return out
