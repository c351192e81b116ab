"""The t-SNE similarity filter: :class:`TSNESimilarityFilter`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from astropy.table import Table
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, OutlierMixin, TransformerMixin, clone
from sklearn.decomposition import PCA
from sklearn.utils import check_random_state

from ..spectra import SpectralSet
from ..utils._persist import VersionStampMixin, contiguous_arrays
from ..utils._sklearn import Interval, StrOptions, _fit_context, check_is_fitted, validate_data
from . import _scores
from ._embed import RESERVED, joint_map
from ._emulator import SpectrumEmulator

__all__ = ["SimilarityMap", "TSNESimilarityFilter"]

# Map distances are never exactly zero between distinct points; this only guards a division.
_MAP_FLOOR = 1e-12
# Noise below this fraction of the RMS flux is treated as this fraction (noise-free input).
_NOISE_FLOOR = 1e-6
# Largest training |flux|: beyond it sums of squares over ~10^4 pixels overflow float32
# (3.4e38) in the PCA and the t-SNE affinities, and scipy fails with "data must be finite".
_MAX_FLUX = 1e15
# Residual/noise ratios below this are round-off (a PCA reproducing X exactly).
_RESIDUAL_FLOOR = 1e-6


@dataclass(frozen=True, eq=False)  # arrays: identity comparison, as for estimators
class SimilarityMap:
    """The verdict of a :class:`TSNESimilarityFilter` on a batch of spectra, with its map.

    Every per-spectrum array has one entry per input spectrum, in input order.

    Attributes
    ----------
    embedding : ndarray of shape (n, 2)
        Map coordinates of each spectrum. Coordinates of different batches (``batch``)
        lie in different maps and are not comparable.
    batch : ndarray of shape (n,), int
        Which joint map the spectrum was placed in (0 unless ``batch_size`` split them).
    training_embedding : ndarray of shape (n_maps, m, 2)
        Coordinates of the training spectra in each map.
    training_index : ndarray of shape (m,), int
        Rows of the training set placed in every map (all of them unless
        ``training_subsample`` is set).
    training_twin : ndarray of shape (n,), int
        Row of the identical training spectrum for a spectrum that is already in the
        training set (judged leave-one-out, against the other training spectra), else -1.
    map_distance : ndarray of shape (n,)
        Distance in the map to the nearest (other) training spectrum.
    map_threshold : ndarray of shape (n,)
        The map-distance threshold of the spectrum's map.
    residual : ndarray of shape (n,)
        RMS PCA reconstruction residual over ``sqrt(noise**2 + misfit_**2)``: about 1 for
        a spectrum like the training ones whatever its S/N (NaN when the score is off).
    residual_threshold : ndarray of shape (n,)
        Its threshold (NaN when off).
    pca_distance : ndarray of shape (n,)
        Distance to the nearest (other) training spectrum in the PCA's signal components,
        each in units of its training standard deviation (NaN when the score is off).
    pca_threshold : ndarray of shape (n,)
        Its threshold (NaN when off).
    score : ndarray of shape (n,)
        Largest of ``map_distance / map_threshold``, ``residual / residual_threshold`` and
        ``pca_distance / pca_threshold``: above 1 the spectrum is unlike the training set
        ("outer").
    map_outer, residual_outer, pca_outer : ndarray of shape (n,), bool
        Which of the three scores is over its threshold.
    """

    embedding: np.ndarray
    batch: np.ndarray
    training_embedding: np.ndarray
    training_index: np.ndarray
    training_twin: np.ndarray
    map_distance: np.ndarray
    map_threshold: np.ndarray
    residual: np.ndarray
    residual_threshold: np.ndarray
    pca_distance: np.ndarray
    pca_threshold: np.ndarray
    score: np.ndarray
    map_outer: np.ndarray
    residual_outer: np.ndarray
    pca_outer: np.ndarray

    @property
    def training_like(self) -> np.ndarray:
        """True for the spectra within every threshold ("inner")."""
        return self.score <= 1.0

    def to_table(self) -> Table:
        """The per-spectrum columns as an astropy Table, in input order."""
        return Table(
            {
                "map_x": self.embedding[:, 0],
                "map_y": self.embedding[:, 1],
                "batch": self.batch,
                "training_twin": self.training_twin,
                "map_distance": self.map_distance,
                "map_threshold": self.map_threshold,
                "residual": self.residual,
                "residual_threshold": self.residual_threshold,
                "pca_distance": self.pca_distance,
                "pca_threshold": self.pca_threshold,
                "score": self.score,
                "map_outer": self.map_outer,
                "residual_outer": self.residual_outer,
                "pca_outer": self.pca_outer,
                "training_like": self.training_like,
            }
        )


class _LastMap:
    """The map of the last batch judged: a cache (t-SNE is costly), not fitted state.

    Key and map are one tuple, replaced in one assignment, so that threads sharing the filter
    (a threaded Dask worker running two chunks) never read one batch's key with another's map.
    """

    __slots__ = ("entry",)

    def __init__(self):
        self.entry = (None, None)

    def get(self, key):
        cached_key, value = self.entry
        return value if cached_key == key else None

    def put(self, key, value):
        self.entry = (key, value)


class TSNESimilarityFilter(
    VersionStampMixin, OneToOneFeatureMixin, OutlierMixin, TransformerMixin, BaseEstimator
):
    """Flag spectra that are unlike the training set: a joint t-SNE map and two PCA scores.

    A neural network cannot label spectra outside its training set. Following Ambrosch
    et al. (2023) and Guiglion et al. (2024), new spectra are embedded in one t-SNE map
    together with the training spectra (openTSNE, on PCA coordinates); a new spectrum
    farther from its nearest training spectrum than the threshold is "outer". Two more
    scores complete it: the PCA reconstruction residual relative to the spectrum's noise
    catches broken spectra (emission lines, bad normalisation) that the map places among
    normal stars, and the distance to the nearest training spectrum in the PCA's signal
    components, whitened, catches stars just beyond the edge of the training set that the
    map joins to its border (metal-rich giants). All thresholds come from the training
    spectra themselves: ``contamination`` is the fraction of training spectra above them,
    hence, for new spectra drawn like the training ones, the expected fraction of false
    flags.

    In a :class:`~sklearn.pipeline.Pipeline` the filter passes X through unchanged
    (``transform`` is the identity); the flags come from ``predict``, :meth:`flag_table`
    or :func:`skstellar.predict_table`. It follows the novelty-detection idiom of
    ``LocalOutlierFactor(novelty=True)``: ``predict`` returns +1 (training-like) or -1
    (outer), ``score_samples`` is lower for stranger spectra.

    Parameters
    ----------
    n_components : int, default=50
        PCA components fitted on the training spectra; the map is built from them (at
        most the number of training spectra or of pixels: see ``n_components_``).
    perplexity : float, default=30.0
        t-SNE perplexity (the thesis found 20-50 equivalent). The training set needs
        more than ``3 * perplexity`` spectra.
    contamination : float in (0, 0.5], default=0.01
        Fraction of training spectra above the "auto" thresholds: the threshold of a map
        is the value that ``floor(contamination * n_training)`` leave-one-out training
        scores of that same map exceed (see Notes).
    map_threshold : "auto" or float, default="auto"
        Absolute map-distance threshold instead. Map units grow with the number of
        points in the map, so an absolute value only transfers between maps of the
        same size; prefer "auto".
    residual_threshold : "auto", float or None, default="auto"
        Absolute threshold of the normalised residual instead (e.g. 2: a reconstruction
        misfit twice what an alike spectrum shows); None turns the residual score off.
    pca_threshold : "auto", float or None, default="auto"
        Absolute threshold of the whitened PCA distance instead (in training standard
        deviations); None turns that score off. With both ``residual_threshold`` and
        ``pca_threshold`` None the filter is the thesis' map alone.
    n_signal_components : "auto" or int, default="auto"
        Leading PCA components in which ``pca_distance`` is measured. "auto": those whose
        variance exceeds twice that of the last of the ``n_components_`` components (the
        trailing ones are noise; see Notes).
    batch_size : int, default=None
        Most new spectra per joint map; more are split (in a pseudo-random order fixed by
        their content) into batches, each embedded with the training spectra. None: one map.
    training_subsample : int, default=None
        Number of training spectra (drawn once at fit) placed in each joint map; None: all.
        With ``batch_size`` this bounds the cost of a map for 10**5-10**6 new spectra.
    tsne_params : dict, default=None
        Further keyword arguments of `openTSNE.TSNE` (e.g. ``{"n_iter": 500}``); not
        ``n_components``, ``perplexity``, ``random_state`` or ``n_jobs``. The filter's
        own defaults differ from openTSNE's in two: ``n_iter=250`` (after 250 iterations
        of early exaggeration) and ``ints_in_interval=3`` (a coarser FFT grid); they gave
        the same verdicts three times faster (see Notes). The neighbours are found exactly
        unless ``neighbors``, ``metric``, ``metric_params`` or ``knn_kwargs`` is given.
    label_check : "auto", SpectrumEmulator or None, default="auto"
        The generative check on the labels: when ``fit`` is given the training labels (as a
        Pipeline does), a :class:`SpectrumEmulator` ("auto": with its defaults, or a clone
        of the one given) is fitted to reproduce the training spectra from their labels, and
        :meth:`check_labels` (called by :func:`skstellar.predict_table` with the
        regressor's labels) flags spectra the predicted labels do not explain
        (emission cores, bad normalisation, labels far off). None, or ``fit`` without
        labels: no check.
    random_state : int, RandomState instance or None, default=None
        Seeds the PCA, the residual folds, the subsample and every map: with an int,
        results are reproducible.
    n_jobs : int or None, default=-1
        Threads for openTSNE and the neighbour searches; -1: all the threads the
        package's execution policy gives a task (every core, or a Dask worker's threads:
        see :func:`skstellar.utils.task_threads`; t-SNE is the costly step and its
        threads give the same map), None: 1.

    Attributes
    ----------
    n_components_ : int
        PCA components used.
    pca_ : sklearn.decomposition.PCA
        The PCA fitted on the training spectra.
    training_coordinates_ : ndarray of shape (n_training, ``n_components_``)
        PCA coordinates of the training spectra.
    training_residual_ : ndarray of shape (n_training,) or None
        Out-of-fold normalised residual of each training spectrum (5-fold: a
        spectrum's own PCA would hide part of its residual); None when the residual is off.
    n_signal_components_ : int or None
        Components of ``pca_distance`` (None when that score is off).
    training_pca_distance_ : ndarray of shape (n_training,) or None
        Leave-one-out ``pca_distance`` of each training spectrum.
    misfit_ : float or None
        Typical RMS residual that the PCA leaves on training spectra beyond their noise
        (median of ``sqrt(rms**2 - noise**2)``, out-of-fold).
    training_map_ : SimilarityMap
        The filter's verdict on its own training set, from a map of the training spectra
        alone (thesis Fig. 17); see :meth:`training_outliers`.
    training_embedding_ : ndarray of shape (n_training, 2)
        Coordinates of the training spectra in that map.
    map_threshold_, residual_threshold_, pca_threshold_ : float
        The thresholds of that map (every joint map recomputes its own; NaN for a score
        that is off).
    label_check_ : SpectrumEmulator or None
        The fitted emulator of the label check (None when it is off or ``fit`` had no labels).
    offset_ : float
        ``-1``: ``decision_function = score_samples - offset_``.
    n_features_in_ : int
        Number of pixels.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the features seen during fit, when X has string feature names.

    See Also
    --------
    skstellar.predict_table : Labels, uncertainties and these flags in one table.
    sklearn.neighbors.LocalOutlierFactor : The novelty-detection idiom followed here.

    Notes
    -----
    **Scores.** ``map_distance`` is the distance in the map from a spectrum to the nearest
    training spectrum; for a training spectrum, to the nearest *other* one (leave-one-out).
    ``residual`` is the RMS over pixels of the difference between a spectrum and its
    reconstruction by the PCA, divided by ``sqrt(noise**2 + misfit_**2)``: the noise is
    measured on the spectrum itself by the DER_SNR estimator (Stoehr et al. 2008; the
    lower of its values on the flux and on the residual), ``misfit_`` is the typical
    residual the PCA leaves on training spectra beyond their noise. For training spectra
    it is computed out-of-fold. So noisier spectra than the training ones are not
    flagged for their noise alone (a plain RMS flagged 85-100 % of S/N < 30 disk stars of a
    filter trained at S/N >= 30; this ratio none). ``pca_distance`` is the Euclidean
    distance to the nearest (other) training spectrum over the first
    ``n_signal_components_`` PCA coordinates, each divided by its training standard
    deviation. Whitening lets a small excursion along a component of small spread (line
    depths saturating in metal-rich giants) count as much as one along the dominant
    Teff component; the trailing components are left out because their variance is
    noise (a floor of equal variances): whitened, they would drown the signal.
    **Thresholds.** Each map recomputes the map threshold from its own training points,
    so the threshold follows the map's scale (t-SNE maps grow with the number of
    points). Under exchangeability (new spectra drawn like the training ones) a new
    spectrum's nearest-training distance is distributed like a training spectrum's
    leave-one-out distance, so about ``contamination`` of alike spectra are flagged. The
    "auto" scores share that budget (each divided by its own training quantile, then all
    by the quantile of their maximum). ``score`` is the largest ratio of a score to its
    threshold; a spectrum is outer when it exceeds 1.
    **Spectra of the training set**, met again in ``predict``, are recognised by their
    exact values and judged leave-one-out, so ``fit(X).predict(X)`` equals
    ``fit_predict(X)`` and finds the training set's own outliers.
    **Batch dependence.** A joint map depends on the whole batch: the same spectrum
    can score slightly differently in another batch. The last map is cached, so
    ``predict`` and ``score_samples`` on the same X cost one map.
    **Blind spots.** Spectra that differ from the training set only in a few weak lines
    (extreme [Al/Fe]) or in subtle wing shapes (log g > 4.9 dwarfs) look like training
    spectra to every score: the filter sees few of them (see the documentation's figures).

    Examples
    --------
    >>> import numpy as np
    >>> from skstellar.filters import TSNESimilarityFilter
    >>> rng = np.random.default_rng(0)
    >>> X_train = 1 + 0.01 * rng.normal(size=(60, 30))
    >>> X_new = np.vstack([X_train[:3] + 0.001, X_train[:2] + 0.5])  # 3 alike, 2 shifted
    >>> filt = TSNESimilarityFilter(n_components=5, perplexity=5, random_state=0,
    ...                             tsne_params={"n_iter": 200})
    >>> filt.fit(X_train).predict(X_new)
    array([ 1,  1,  1, -1, -1])
    >>> bool(np.array_equal(filt.transform(X_new), X_new))  # X passes through unchanged
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "perplexity": [Interval(Real, 1, None, closed="left")],
        "contamination": [Interval(Real, 0, 0.5, closed="right")],
        "map_threshold": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "residual_threshold": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither"), None],
        "pca_threshold": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither"), None],
        "n_signal_components": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "training_subsample": [Interval(Integral, 2, None, closed="left"), None],
        "tsne_params": [dict, None],
        "label_check": [StrOptions({"auto"}), SpectrumEmulator, None],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        *,
        n_components=50,
        perplexity=30.0,
        contamination=0.01,
        map_threshold="auto",
        residual_threshold="auto",
        pca_threshold="auto",
        n_signal_components="auto",
        batch_size=None,
        training_subsample=None,
        tsne_params=None,
        label_check="auto",
        random_state=None,
        n_jobs=-1,
    ):
        self.n_components = n_components
        self.perplexity = perplexity
        self.contamination = contamination
        self.map_threshold = map_threshold
        self.residual_threshold = residual_threshold
        self.pca_threshold = pca_threshold
        self.n_signal_components = n_signal_components
        self.batch_size = batch_size
        self.training_subsample = training_subsample
        self.tsne_params = tsne_params
        self.label_check = label_check
        self.random_state = random_state
        self.n_jobs = n_jobs

    @classmethod
    def _get_test_params(cls):
        # Few components and iterations; perplexity 3 lets the 10-sample checks fit.
        return {
            "n_components": 2,
            "perplexity": 3.0,
            "tsne_params": {"n_iter": 100, "early_exaggeration_iter": 50},
            "random_state": 0,
        }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def __getstate__(self):
        state = super().__getstate__()
        if "_last_map" in state:
            state["_last_map"] = _LastMap()  # a cache: not worth pickling
        return state

    # -- fitting ------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the PCA, the residual threshold and the training map.

        Parameters
        ----------
        X : array-like of shape (n_training, n_pixels)
            Training spectra (e.g. the output of ``SetupStitcher``).
        y : array-like of shape (n_training,) or (n_training, n_labels), default=None
            Training labels, for the label check (``label_check``); a Pipeline passes the
            regressor's. The scores of the spectra themselves do not use them.

        Returns
        -------
        self : TSNESimilarityFilter
        """
        X_arr = self._check_X(X, reset=True)
        n, p = X_arr.shape
        reserved = sorted(set(self.tsne_params or {}) & set(RESERVED))
        if reserved:
            raise ValueError(
                f"tsne_params may not set {reserved}: use the filter's own parameters of those names."
            )
        needed = int(np.floor(3 * self.perplexity)) + 1
        if n < needed:
            raise ValueError(
                f"TSNESimilarityFilter needs at least {needed} training spectra for perplexity="
                f"{self.perplexity} (t-SNE needs more than 3 x perplexity neighbours); got {n}. "
                "Lower perplexity or add spectra."
            )
        keys = _scores.row_fingerprints(X_arr)
        n_distinct = len(np.unique(keys))
        if n_distinct < needed:
            raise ValueError(
                f"TSNESimilarityFilter: the {n} training spectra hold only {n_distinct} distinct "
                f"ones; t-SNE with perplexity={self.perplexity} needs at least {needed} distinct "
                "spectra (identical spectra collapse onto one point). Check the training set."
            )
        scale = float(np.max(np.abs(X_arr)))
        if scale > _MAX_FLUX:
            raise ValueError(
                f"TSNESimilarityFilter: training flux reaches {scale:.3g}; squared distances of "
                f"such spectra overflow (limit {_MAX_FLUX:.0e}). The filter expects "
                "continuum-normalised spectra (flux about 1): normalise them first."
            )
        if self.training_subsample is not None and self.training_subsample < needed:
            raise ValueError(
                f"training_subsample={self.training_subsample} is too small for perplexity="
                f"{self.perplexity}: at least {needed} training spectra must be in each map."
            )
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        self.n_components_ = int(min(self.n_components, n, p))
        self.pca_ = PCA(n_components=self.n_components_, random_state=seed).fit(X_arr)
        contiguous_arrays(self.pca_)  # a reloaded filter must project bit for bit alike
        use_residual = self.residual_threshold is not None
        rms_flux = np.sqrt(np.mean(self.pca_.mean_**2) + self.pca_.explained_variance_.sum() / p)
        # Spectra of < 5 pixels have no noise estimate: their residual is relative to the RMS flux.
        self._noise_floor = max(float(rms_flux) * (1.0 if p < 5 else _NOISE_FLOOR), np.finfo(np.float64).tiny)
        self.training_coordinates_, _, training_noise = _scores.project(
            self.pca_, X_arr, self._noise_floor, self.n_jobs
        )
        self.training_residual_, self.misfit_ = None, None
        if use_residual:
            rms, noise = _scores.out_of_fold_residuals(X_arr, self.n_components_, seed, self._noise_floor, self.n_jobs)
            self.misfit_ = _scores.typical_misfit(rms, noise)
            self.training_residual_ = _scores.normalised_residual(rms, noise, self.misfit_)
        self.n_signal_components_, self.training_pca_distance_ = None, None
        use_pca = self.pca_threshold is not None
        if use_pca:
            k = (
                _scores.signal_components(self.pca_.explained_variance_)
                if self.n_signal_components == "auto"
                else min(self.n_signal_components, self.n_components_)
            )
            self.n_signal_components_ = k
            ev = self.pca_.explained_variance_
            self._white = _scores.whiten(self.training_coordinates_, ev, k)
            # RMS noise of the training spectra: the reference their spread already contains.
            self._reference_noise = float(np.sqrt(np.mean(training_noise**2)))
            self.training_pca_distance_ = _scores.noise_corrected(
                _scores.nearest_training_distances(self._white, self._white[:0], self.n_jobs)[0],
                _scores.excess_noise(training_noise, self._reference_noise, ev, k),
            )
        self._training_keys = keys
        if self.training_subsample is None or self.training_subsample >= n:
            self._map_rows = np.arange(n)
        else:
            self._map_rows = np.sort(rng.choice(n, size=self.training_subsample, replace=False))
        # Frozen at fit, so that later set_params calls do not silently change a fitted filter.
        self._settings = {
            "perplexity": float(self.perplexity),
            "contamination": float(self.contamination),
            "map_threshold": None if self.map_threshold == "auto" else float(self.map_threshold),
            "residual": use_residual,
            "residual_threshold": (
                None if self.residual_threshold in ("auto", None) else float(self.residual_threshold)
            ),
            "pca": use_pca,
            "pca_threshold": None if self.pca_threshold in ("auto", None) else float(self.pca_threshold),
            "batch_size": self.batch_size,
            "tsne_params": dict(self.tsne_params or {}),
            "seed": seed,
        }
        self.label_check_ = self._fit_label_check(X_arr, y, seed)
        self._last_map = _LastMap()
        self.offset_ = -1.0
        self.training_map_ = self._similarity_map(X_arr)
        self.training_embedding_ = self.training_map_.embedding
        self.map_threshold_ = float(self.training_map_.map_threshold[0])
        self.residual_threshold_ = float(self.training_map_.residual_threshold[0])
        self.pca_threshold_ = float(self.training_map_.pca_threshold[0])
        return self

    # -- judging new spectra --------------------------------------------------------------
    def embed(self, X):
        """Place spectra in a joint map with the training spectra and score them.

        Parameters
        ----------
        X : array-like of shape (n, n_pixels)

        Returns
        -------
        SimilarityMap
            Map coordinates, scores, thresholds and flags, in input order.
        """
        check_is_fitted(self)
        return self._similarity_map(self._check_X(X, reset=False))

    def score_samples(self, X):
        """Opposite of ``score``: lower for spectra less like the training set.

        Parameters
        ----------
        X : array-like of shape (n, n_pixels)

        Returns
        -------
        ndarray of shape (n,)
            ``-max(map_distance / map_threshold, residual / residual_threshold)``.
        """
        return -self.embed(X).score

    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative for outer spectra.

        Parameters
        ----------
        X : array-like of shape (n, n_pixels)

        Returns
        -------
        ndarray of shape (n,)
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """+1 for spectra like the training set ("inner"), -1 for the others ("outer").

        Parameters
        ----------
        X : array-like of shape (n, n_pixels)

        Returns
        -------
        ndarray of shape (n,), int
        """
        return np.where(self.decision_function(X) >= 0, 1, -1)

    def flag_table(self, X=None):
        """Scores, thresholds and which score flagged each spectrum, as a Table.

        Parameters
        ----------
        X : array-like of shape (n, n_pixels), default=None
            Spectra to judge; None gives the training set's own table (from ``training_map_``).

        Returns
        -------
        astropy.table.Table
            One row per spectrum in input order: ``map_x``, ``map_y``, ``batch``,
            ``training_twin``, ``map_distance``, ``map_threshold``, ``residual``,
            ``residual_threshold``, ``score``, ``map_outer``, ``residual_outer``,
            ``training_like``.
        """
        check_is_fitted(self)
        return (self.training_map_ if X is None else self.embed(X)).to_table()

    def training_outliers(self):
        """Rows of the training set that are outliers of the training set itself.

        The thesis (Fig. 17) found such spectra (emission lines, failed cleaning, wrong
        normalisation) with the map of the training set; remove them and refit before
        training a network. Exactly ``floor(contamination * n_training)`` rows are
        returned (barring ties), strangest first: inspect them rather than drop them blindly.

        Returns
        -------
        ndarray of int
        """
        check_is_fitted(self)
        score = self.training_map_.score
        outer = np.flatnonzero(score > 1.0)
        return outer[np.argsort(-score[outer], kind="stable")]

    def check_labels(self, X, labels, *, label_errors=None, wavelength=None):
        """Do the labels predicted for the spectra X explain them? The generative check.

        Parameters
        ----------
        X : array-like of shape (n, n_pixels)
            The spectra, as the filter sees them.
        labels : array-like of shape (n, n_labels)
            Labels predicted for them, in the units of the training labels given to ``fit``.
            Rows with a NaN label are not judged (``labels_explained`` True, scores NaN).
        label_errors : array-like of shape (n, n_labels), default=None
            Their 1-sigma errors: their effect on the emulated spectrum is added to the
            expected residual. Useful with ``SpectrumEmulator(refine=0)``; by default the
            emulator refines the labels instead (an unusual star's wide error would excuse it).
        wavelength : array-like of shape (n_pixels,), default=None
            Rest wavelength of each pixel (a pipeline's ``SetupStitcher.wavelength_``):
            adds the wavelength of the worst window and the residual per line region.

        Returns
        -------
        astropy.table.Table
            :meth:`SpectrumEmulator.score_spectra` (``residual``, ``local``, ``local_pixel``,
            with a wavelength ``local_wavelength`` and one column per line region), and
            ``labels_explained`` (bool).

        Raises
        ------
        ValueError
            If the filter has no label check (``label_check=None`` or fitted without labels),
            or the labels do not match the training labels in number.
        """
        check_is_fitted(self)
        if self.label_check_ is None:
            raise ValueError(
                "check_labels: this TSNESimilarityFilter has no label check; fit it with the training "
                "labels (fit(X, y), as a Pipeline does) and label_check='auto'."
            )
        X_arr = self._check_X(X, reset=False)
        labels = np.asarray(labels, dtype=np.float64).reshape(len(X_arr), -1)
        expected = self.label_check_.n_features_in_
        if labels.shape[1] != expected:
            raise ValueError(
                f"check_labels: {labels.shape[1]} labels per spectrum given, but the label check was fitted "
                f"on {expected} training labels."
            )
        if label_errors is not None:
            label_errors = np.asarray(label_errors, dtype=np.float64).reshape(labels.shape)
        table = self.label_check_.score_spectra(
            labels, X_arr, label_errors=label_errors, wavelength=wavelength, n_jobs=self.n_jobs
        )
        judged = np.isfinite(labels).all(axis=1)
        explained = self.label_check_.explains(labels, X_arr, scores=table)
        table["labels_explained"] = explained | ~judged
        return table

    def transform(self, X):
        """Return X unchanged (validated): the filter flags, it never drops or alters spectra.

        Parameters
        ----------
        X : array-like of shape (n, n_pixels)

        Returns
        -------
        ndarray of shape (n, n_pixels)
            The same values, float32 or float64 as given.
        """
        check_is_fitted(self)
        return self._check_X(X, reset=False)

    # -- internals -----------------------------------------------------------------------
    def _fit_label_check(self, X, y, seed):
        if y is None or self.label_check is None:
            return None
        labels = np.asarray(y, dtype=np.float64)
        labels = labels.reshape(len(labels), -1)
        if len(labels) != len(X):
            raise ValueError(
                f"TSNESimilarityFilter: {len(labels)} label rows for {len(X)} training spectra (label_check)."
            )
        finite = np.isfinite(labels).all(axis=1)
        emulator = (
            SpectrumEmulator(random_state=seed) if self.label_check == "auto" else clone(self.label_check)
        )
        if finite.sum() < max(2 * emulator.n_folds, labels.shape[1] + 1):
            raise ValueError(
                f"TSNESimilarityFilter: only {int(finite.sum())} of {len(labels)} training spectra have finite "
                "labels; too few for the label check. Give labels or set label_check=None."
            )
        # Training stars without a label (NaN) teach the emulator nothing.
        return emulator.fit(labels[finite], X[finite])

    def _check_X(self, X, reset):
        X_arr = validate_data(
            self,
            X,
            reset=reset,
            dtype=[np.float64, np.float32],
            ensure_all_finite=False,
            ensure_min_samples=2 if reset else 1,
        )
        for start in range(0, X_arr.shape[0], _scores.CHUNK):
            finite = np.isfinite(X_arr[start : start + _scores.CHUNK])
            if not finite.all():
                row, pixel = np.unravel_index(np.argmin(finite), finite.shape)
                row += start
                value = X_arr[row, pixel]
                star = X.describe_star(row) if isinstance(X, SpectralSet) else f"spectrum {row} (row {row})"
                raise ValueError(
                    f"{star} has a non-finite value ({'NaN' if np.isnan(value) else value}) at pixel "
                    f"{pixel}; TSNESimilarityFilter needs finite flux: clean the spectra first "
                    "(skstellar.preprocessing.SpectrumCleaner) or leave the star out."
                )
        return X_arr

    def _similarity_map(self, X):
        keys = _scores.row_fingerprints(X)
        cache_key = hashlib.blake2b(keys.tobytes(), digest_size=16).digest()
        cached = self._last_map.get(cache_key)
        if cached is not None:
            return cached
        settings = self._settings
        rows = self._map_rows
        n = len(X)

        twin_in_map = _scores.match_rows(self._training_keys[rows], keys)
        training_twin = np.where(twin_in_map >= 0, rows[np.maximum(twin_in_map, 0)], -1)
        new_rows = np.flatnonzero(twin_in_map < 0)
        # Distinct new spectra in the order of their fingerprints: the map is then independent
        # of the input order, and batches are pseudo-random mixtures of the input.
        _, first, inverse = np.unique(keys[new_rows], return_index=True, return_inverse=True)
        distinct = new_rows[first]
        new_coords, new_rms, new_noise = _scores.project(self.pca_, X[distinct], self._noise_floor, self.n_jobs)
        n_maps = max(1, -(-len(distinct) // settings["batch_size"])) if settings["batch_size"] else 1
        batches = np.array_split(np.arange(len(distinct)), n_maps)

        train_coords = self.training_coordinates_[rows]
        train_scores = {}
        if settings["residual"]:
            train_scores["residual"] = self.training_residual_[rows]
        if settings["pca"]:
            train_scores["pca"] = self.training_pca_distance_[rows]
        absolute = {
            "map": settings["map_threshold"],
            "residual": settings["residual_threshold"],
            "pca": settings["pca_threshold"],
        }
        floors = {"map": _MAP_FLOOR, "residual": _RESIDUAL_FLOOR, "pca": _MAP_FLOOR}

        u = len(distinct)
        d_emb, d_dist, d_batch = np.empty((u, 2)), np.empty(u), np.empty(u, dtype=int)
        d_cal = [None] * n_maps
        train_maps, train_dists = [], []
        for b, members in enumerate(batches):
            coords = new_coords[members]
            t_map, n_map = joint_map(
                train_coords,
                coords,
                perplexity=settings["perplexity"],
                random_state=settings["seed"],
                n_jobs=self.n_jobs,
                tsne_params=settings["tsne_params"],
            )
            t_dist, n_dist = _scores.nearest_training_distances(t_map, n_map, self.n_jobs)
            d_cal[b] = _scores.calibrate(
                {"map": t_dist, **train_scores}, absolute, settings["contamination"], floors
            )
            train_maps.append(t_map)
            train_dists.append(t_dist)
            d_emb[members], d_dist[members], d_batch[members] = n_map, n_dist, b

        # Per input row: spectra of the training set take their training values in map 0.
        is_twin = twin_in_map >= 0
        twin = twin_in_map[is_twin]
        new_at = inverse.reshape(-1)
        embedding = np.empty((n, 2))
        batch = np.zeros(n, dtype=int)
        map_distance = np.empty(n)
        embedding[is_twin], map_distance[is_twin] = train_maps[0][twin], train_dists[0][twin]
        embedding[new_rows], map_distance[new_rows] = d_emb[new_at], d_dist[new_at]
        batch[new_rows] = d_batch[new_at]

        def per_row(name, index):
            base = np.array([d_cal[b][name][index] for b in range(n_maps)])
            return base[batch]

        map_base, map_factor = per_row("map", 0), per_row("map", 1)
        map_ratio = _scores.ratios(map_distance, map_base, map_factor)
        residual = np.full(n, np.nan)
        residual_threshold = np.full(n, np.nan)
        residual_ratio = np.zeros(n)
        if settings["residual"]:
            residual[is_twin] = train_scores["residual"][twin]
            residual[new_rows] = _scores.normalised_residual(new_rms, new_noise, self.misfit_)[new_at]
            res_base, res_factor = per_row("residual", 0), per_row("residual", 1)
            residual_ratio = _scores.ratios(residual, res_base, res_factor)
            residual_threshold = res_base * res_factor
        pca_distance = np.full(n, np.nan)
        pca_threshold = np.full(n, np.nan)
        pca_ratio = np.zeros(n)
        if settings["pca"]:
            k = self.n_signal_components_
            # Any spectrum of the training set (in the map's subsample or not) is judged leave-one-out.
            own = _scores.match_rows(self._training_keys, keys)
            ev = self.pca_.explained_variance_
            new_distance = _scores.noise_corrected(
                _scores.nearest_distances(self._white, _scores.whiten(new_coords, ev, k), self.n_jobs),
                _scores.excess_noise(new_noise, self._reference_noise, ev, k),
            )
            pca_distance[new_rows] = new_distance[new_at]
            pca_distance[own >= 0] = self.training_pca_distance_[own[own >= 0]]
            pca_base, pca_factor = per_row("pca", 0), per_row("pca", 1)
            pca_ratio = _scores.ratios(pca_distance, pca_base, pca_factor)
            pca_threshold = pca_base * pca_factor
        score = np.maximum.reduce([map_ratio, residual_ratio, pca_ratio])
        result = SimilarityMap(
            embedding=embedding,
            batch=batch,
            training_embedding=np.stack(train_maps),
            training_index=rows,
            training_twin=training_twin,
            map_distance=map_distance,
            map_threshold=map_base * map_factor,
            residual=residual,
            residual_threshold=residual_threshold,
            pca_distance=pca_distance,
            pca_threshold=pca_threshold,
            score=score,
            map_outer=map_ratio > 1.0,
            residual_outer=residual_ratio > 1.0,
            pca_outer=pca_ratio > 1.0,
        )
        for value in vars(result).values():
            value.flags.writeable = False  # the cached map is shared by later calls
        self._last_map.put(cache_key, result)
        return result
