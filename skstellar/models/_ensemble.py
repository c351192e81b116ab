"""CNNLabelRegressor: an ensemble of 1-D CNNs as a scikit-learn regressor."""

import math
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_array, check_consistent_length, check_random_state

from ..utils._persist import VersionStampMixin
from ..utils._sklearn import Interval, StrOptions, _fit_context, check_is_fitted, validate_data
from ._architecture import ARCHITECTURE_KEYS, PRESETS, build_table2, conv_output_length
from ._calibration import std_scale
from ._linear import fit_ridge_skip
from ._predict import PREDICT_BATCH, make_ensemble_function
from ._training import fit_member, model_from_bytes

_RECIPE_KEYS = (*ARCHITECTURE_KEYS, "optimizer", "learning_rate", "batch_size", "input_scaling", "lr_schedule",
                "bootstrap", "std_calibration", "patience")


def _positive_ints(name, value):
    values = tuple(np.asarray(value).ravel().tolist())
    if not all(isinstance(v, Integral) and v > 0 for v in values):
        raise ValueError(f"{name} must be a sequence of positive integers; got {value!r}.")
    return values


def _finite_rows(X, chunk=PREDICT_BATCH):
    # Chunked so that a 10^5-spectrum X needs no second full-size boolean array.
    bad = [start + np.flatnonzero(~np.isfinite(X[start:start + chunk]).all(axis=1))
           for start in range(0, X.shape[0], chunk)]
    return np.concatenate(bad) if bad else np.empty(0, dtype=int)


class CNNLabelRegressor(VersionStampMixin, RegressorMixin, BaseEstimator):
    """Stellar labels from spectra with an ensemble of 1-D convolutional networks.

    Each member is the network of Ambrosch et al. (2023, Table 2) -- or a variant, or a
    network of the user's ``builder`` -- trained with its own seed (and, by default, on its
    own bootstrap resample of the training stars) on standardised labels, with early stopping
    on a validation set shared by all. The ``n_keep`` members with the lowest
    validation loss form the ensemble: :meth:`predict` returns their mean and, on request,
    their standard deviation -- by default scaled per label on the validation stars into an
    error bar -- in the physical units of ``y``.

    Parameters
    ----------
    preset : {"default", "thesis"}, default="default"
        Fills every recipe parameter left as None. "thesis" is Table 2 trained as in the
        thesis (SGD, learning rate 1e-4, batch 16, dropout 0.2 also on the flattened
        features, raw flux, no linear skip); "default" is the same convolutional trunk with the
        recipe measured best here (Adam 1e-3, batch 64, flux centred as ``1 - flux``, no
        dropout on the flattened features, learning rate halved on plateaus, and
        ``linear_skip="ridge"``). See ``PRESETS`` and the models page of the documentation.
    filters : tuple of int, default=None
        Filters of each convolution (both presets: ``(8, 6, 4)``).
    kernel_size : int, default=None
        Width of every convolution kernel in pixels (presets: 20).
    pool_size : int, default=None
        Width of the max pooling after every convolution but the last (presets: 2).
    dense_units : tuple of int, default=None
        Units of the hidden dense layers (presets: ``(64, 128, 32)``).
    dropout : float, default=None
        Dropout after each hidden dense layer (presets: 0.2).
    flatten_dropout : float, default=None
        Dropout on the flattened convolutional features (thesis 0.2, default 0).
    negative_slope : float, default=None
        Slope of every LeakyReLU (presets: 0.3).
    padding : {"valid", "same"}, default=None
        Padding of convolutions and poolings (presets: "valid", as Table 2).
    linear_skip : {"none", "trained", "ridge"}, default=None
        A linear map from the (scaled) input pixels straight to the output, summed with the
        network's output ("wide and deep"). "none" (thesis): Table 2 as it is. "trained": a
        Dense layer trained with the rest. "ridge": ridge regression of the standardised labels
        on the pixels (penalty per label chosen on the validation set), frozen, with the network's
        last layer starting at zero, so that a member starts as the ridge model and the CNN learns
        its residual. Ignored with a user ``builder``.
    bootstrap : bool, default=None
        Bagging: each member trains (its ridge part and its network) on its own bootstrap
        resample of the training stars, drawn from its seed, so that the spread of the members
        estimates the error of their mean (``return_std``). The validation set stays the same
        for all. Only with ``n_models > 1``. Default preset True, thesis False.
    std_calibration : {"validation", "none"}, default=None
        What ``predict(X, return_std=True)`` returns. "none" (thesis): the standard deviation
        of the kept members, the ensemble's internal precision -- on mock spectra 7-8 times
        smaller than the error. "validation" (default): that spread times ``std_scale_``, one
        factor per label such that 68.27 % of the validation stars (which every member
        shares and none trains on) lie within one calibrated std of the truth, so that it reads
        as a 1-sigma error bar. With a single kept member (no spread) it is ``val_scatter_``,
        the same for every star. On mock spectra (3 members) 61-69 % of held-out S/N >= 30
        stars and 67-80 % of S/N < 30 ones lay within one calibrated std: the spread grows a
        little faster with the noise than the error does (see the models page).
    builder : callable, default=None
        ``builder(n_features, n_outputs) -> keras.Model``, a user network taking a float32
        ``(batch, n_features)`` input and returning ``(batch, n_outputs)``. When given, the
        architecture parameters above are ignored. It must be picklable (a module-level
        function) for ``n_jobs`` and for persistence of the unfitted estimator.
    optimizer : {"adam", "sgd", "rmsprop"}, default=None
        Optimizer (thesis "sgd", default "adam").
    learning_rate : float, default=None
        Learning rate (thesis 1e-4, default 1e-3).
    batch_size : int, default=None
        Mini-batch size (thesis 16, default 64).
    input_scaling : {"none", "center", "standardize"}, default=None
        What the network sees: the flux as given ("none", thesis); ``1 - flux`` ("center",
        default: continuum at 0, lines positive, for continuum-normalised spectra); or each
        pixel standardised with the training mean and standard deviation ("standardize").
    lr_schedule : {"constant", "plateau"}, default=None
        "constant" (thesis) or "plateau" (default): the learning rate is halved whenever the
        validation loss has not improved for ``max(patience // 3, 1)`` epochs, down to 1/64
        of its start.
    max_epochs : int, default=300
        Upper bound on the epochs of each member.
    patience : int, default=None
        Epochs without improvement of the validation loss before a member stops; its best
        weights are restored (thesis 30, default 10: with the plateau schedule the best
        epoch comes early, and a long patience was most of the training time).
    validation_fraction : float, default=0.4
        Fraction of the training set held out (at random, one split shared by all members)
        for early stopping, member selection and the calibration of the std, unless
        ``validation_data`` is given to fit.
    n_models : int, default=10
        Members trained, each with its own seed.
    n_keep : int, default=8
        Members kept: those with the lowest best validation loss.
    n_jobs : int, default=None
        Members trained in parallel through :class:`joblib.Parallel`, so that
        ``joblib.parallel_config(backend="dask")`` runs them on a Dask cluster. Each worker
        process loads TensorFlow, which by default uses every core of its machine.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split and the members (weights, dropout, batch order). With an
        int, a fit on the CPU is reproducible.
    verbose : int, default=0
        0 silent; 1 a progress bar over members; 2 also Keras' per-epoch lines.
    label_names : sequence of str, default=None
        Names of the labels (columns of y). When None, the columns of a pandas DataFrame y, or
        ``"y0", "y1", ...``.

    Attributes
    ----------
    members_ : list of keras.Model
        The kept members, best validation loss first.
    val_losses_ : ndarray of shape (n_models,)
        Best validation loss (masked MSE in standardised label units) of every member trained.
    kept_ : ndarray of shape (n_keep,)
        Indices (into ``val_losses_`` and ``history_``) of the kept members.
    history_ : list of dict
        Per member trained, Keras' per-epoch history (``"loss"``, ``"val_loss"``, with the plateau
        schedule ``"learning_rate"``) as arrays, and ``"epoch_seconds"``, the wall time of each
        epoch (validation included; the first also traces the training step).
    recipe_ : dict
        The architecture and training settings used (preset and explicit parameters merged).
    label_names_ : ndarray of str of shape (n_labels,)
        Names of the labels.
    ridge_alpha_ : ndarray of shape (n_models, n_labels)
        Ridge penalty chosen for each member trained and label (only with
        ``linear_skip="ridge"``), in the units of the scaled pixels.
    std_scale_ : ndarray of shape (n_labels,)
        Factor from the members' spread to the calibrated std per label: the 68.27th
        percentile over the validation stars having the label of ``abs(mean - truth) / spread``
        (see ``std_calibration``). NaN where the spread is zero (one kept member). Computed
        with either ``std_calibration``; applied only with "validation".
    val_scatter_ : ndarray of shape (n_labels,)
        Standard deviation of the ensemble mean minus the truth over the validation stars
        having the label, in the units of ``y`` (optimistic by a little: the validation stars
        also chose the members and the epoch each stopped at).
    validation_index_ : ndarray of int or None
        Rows of the ``X`` given to :meth:`fit` that formed the validation set (sorted), so
        that training and validation stars can be told apart afterwards; None when
        ``validation_data`` was passed.
    label_mean_, label_scale_ : ndarray of shape (n_labels,)
        Mean and standard deviation of each label over the stars that have it.
    input_offset_, input_scale_ : float32 scalar or ndarray of shape (``n_features_in_``,), or None
        The input transform: the members see ``(X - input_offset_) / input_scale_`` (1 and
        -1 for ``input_scaling="center"``, the training mean and standard deviation of
        every pixel for "standardize"; None for "none": the flux as given).
    n_features_in_ : int
        Number of pixels of each spectrum seen at fit.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the features, when X has string column names.

    See Also
    --------
    build_table2 : The network builder used unless ``builder`` is given.

    Notes
    -----
    Labels are standardised internally and NaN labels are masked out of the loss, so a star
    missing some labels still trains the others. Prediction runs all kept members over
    chunks of spectra: on a CPU, networks of :func:`build_table2` as compiled loops (numba;
    the same arithmetic, faster than TensorFlow there, see the models page), other networks
    and every network on a GPU in one compiled ``tf.function``.
    Pickling (``joblib.dump``) stores each member as the bytes of a ``.keras`` file.
    TensorFlow is imported only when a model is fitted, used or unpickled.

    Examples
    --------
    >>> import numpy as np
    >>> from skstellar.models import CNNLabelRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = 1 - 0.5 * rng.random((40, 30))
    >>> y = X[:, :2] @ [[1.0, 0.5], [2.0, -1.0]]
    >>> reg = CNNLabelRegressor(filters=(2,), kernel_size=3, dense_units=(4,), max_epochs=3,
    ...                         n_models=2, n_keep=1, random_state=0).fit(X, y)
    >>> mean, std = reg.predict(X[:3], return_std=True)
    >>> mean.shape, std.shape, mean.dtype
    ((3, 2), (3, 2), dtype('float64'))
    >>> reg.label_names_.tolist()
    ['y0', 'y1']
    """

    _parameter_constraints: dict = {
        "preset": [StrOptions(set(PRESETS))],
        "filters": ["array-like", None],
        "kernel_size": [Interval(Integral, 1, None, closed="left"), None],
        "pool_size": [Interval(Integral, 1, None, closed="left"), None],
        "dense_units": ["array-like", None],
        "dropout": [Interval(Real, 0, 1, closed="left"), None],
        "flatten_dropout": [Interval(Real, 0, 1, closed="left"), None],
        "negative_slope": [Interval(Real, 0, None, closed="left"), None],
        "padding": [StrOptions({"valid", "same"}), None],
        "linear_skip": [StrOptions({"none", "trained", "ridge"}), None],
        "builder": [callable, None],
        "optimizer": [StrOptions({"adam", "sgd", "rmsprop"}), None],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "input_scaling": [StrOptions({"none", "center", "standardize"}), None],
        "lr_schedule": [StrOptions({"constant", "plateau"}), None],
        "bootstrap": ["boolean", None],
        "std_calibration": [StrOptions({"validation", "none"}), None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "patience": [Interval(Integral, 0, None, closed="left"), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_models": [Interval(Integral, 1, None, closed="left")],
        "n_keep": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "label_names": ["array-like", None],
    }

    def __init__(
        self,
        *,
        preset="default",
        filters=None,
        kernel_size=None,
        pool_size=None,
        dense_units=None,
        dropout=None,
        flatten_dropout=None,
        negative_slope=None,
        padding=None,
        linear_skip=None,
        builder=None,
        optimizer=None,
        learning_rate=None,
        batch_size=None,
        input_scaling=None,
        lr_schedule=None,
        bootstrap=None,
        std_calibration=None,
        max_epochs=300,
        patience=None,
        validation_fraction=0.4,
        n_models=10,
        n_keep=8,
        n_jobs=None,
        random_state=None,
        verbose=0,
        label_names=None,
    ):
        self.preset = preset
        self.filters = filters
        self.kernel_size = kernel_size
        self.pool_size = pool_size
        self.dense_units = dense_units
        self.dropout = dropout
        self.flatten_dropout = flatten_dropout
        self.negative_slope = negative_slope
        self.padding = padding
        self.linear_skip = linear_skip
        self.builder = builder
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.input_scaling = input_scaling
        self.lr_schedule = lr_schedule
        self.bootstrap = bootstrap
        self.std_calibration = std_calibration
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.n_models = n_models
        self.n_keep = n_keep
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.label_names = label_names

    @classmethod
    def _get_test_params(cls):
        # Tiny and 'same'-padded so that the common checks (some with a single feature) run in seconds.
        return {"filters": (2,), "kernel_size": 3, "dense_units": (4,), "padding": "same", "max_epochs": 1,
                "n_models": 1, "n_keep": 1, "batch_size": 16, "random_state": 0}

    # ------------------------------------------------------------------ validation (no TensorFlow)
    def _resolve_recipe(self):
        recipe = dict(PRESETS[self.preset])
        for key in _RECIPE_KEYS:
            value = getattr(self, key)
            if value is not None:
                recipe[key] = _positive_ints(key, value) if key in ("filters", "dense_units") else value
        return recipe

    def _check_X(self, X, *, reset):
        X = validate_data(self, X, reset=reset, dtype=[np.float32, np.float64], ensure_all_finite=False,
                          ensure_min_samples=1)
        bad = _finite_rows(X)
        if bad.size:
            raise ValueError(
                f"Input X contains NaN or inf in {bad.size} spectra (rows {bad[:10].tolist()}"
                f"{', ...' if bad.size > 10 else ''}); mask or interpolate bad pixels first "
                "(skstellar.preprocessing.SpectrumCleaner)."
            )
        return X

    def _check_y(self, y, n_samples):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        names = getattr(y, "columns", None)
        y = check_array(y, ensure_2d=False, allow_nd=True, dtype=np.float64, ensure_all_finite="allow-nan",
                        input_name="y")
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D (one label) or 2-D (n_samples, n_labels); got shape {y.shape}.")
        check_consistent_length(np.empty((n_samples, 0)), y)
        y2 = y.reshape(-1, 1) if y.ndim == 1 else y
        if np.isinf(y2).any():
            raise ValueError("y contains inf; use NaN for a missing label (it is masked out of the loss).")
        empty = np.flatnonzero(np.isnan(y2).all(axis=0))
        if empty.size:
            raise ValueError(f"label column(s) {empty.tolist()} of y are all NaN: nothing to learn them from.")
        if self.label_names is not None:
            label_names = np.asarray(self.label_names, dtype=str)
            if label_names.shape != (y2.shape[1],):
                raise ValueError(f"label_names has {label_names.size} names but y has {y2.shape[1]} labels.")
        elif names is not None and y.ndim == 2:
            label_names = np.asarray([str(c) for c in names])
        else:
            label_names = np.asarray([f"y{i}" for i in range(y2.shape[1])])
        return y, y2, label_names

    def _check_pixels(self, n_features, recipe):
        if self.builder is not None:
            return
        length = conv_output_length(n_features, **recipe)
        if length < 1:
            raise ValueError(
                f"spectra of {n_features} pixels are too short for {len(recipe['filters'])} convolutions of "
                f"kernel_size={recipe['kernel_size']} with pool_size={recipe['pool_size']} and "
                f"padding={recipe['padding']!r}; use more pixels, a smaller kernel_size or padding='same'."
            )

    def _split(self, n_samples, rng):
        n_val = math.ceil(self.validation_fraction * n_samples)
        if n_samples < 2 or n_val >= n_samples:
            raise ValueError(
                f"too few samples for a validation split: got {n_samples} sample(s) with "
                f"validation_fraction={self.validation_fraction}; need at least one spectrum to train on and "
                "one to validate on (or pass validation_data to fit)."
            )
        order = rng.permutation(n_samples)
        return order[n_val:], order[:n_val]

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, validation_data=None):
        """Train ``n_models`` networks and keep the ``n_keep`` best.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels)
            Continuum-normalised spectra on one pixel grid (e.g. the output of SetupStitcher).
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Labels; NaN marks a missing label (masked out of the loss).
        validation_data : tuple (X_val, y_val), default=None
            A validation set for early stopping, member selection and the calibration of
            the std (``std_scale_``); when None, ``validation_fraction`` of X is held out.

        Returns
        -------
        self : CNNLabelRegressor
        """
        if self.n_keep > self.n_models:
            raise ValueError(f"n_keep={self.n_keep} is larger than n_models={self.n_models}.")
        recipe = self._resolve_recipe()
        if not recipe["filters"] and self.builder is None:
            raise ValueError("filters must name at least one convolution.")
        X = self._check_X(X, reset=True)
        y, y2, self.label_names_ = self._check_y(y, X.shape[0])
        self._check_pixels(X.shape[1], recipe)
        rng = check_random_state(self.random_state)
        if validation_data is None:
            train, val = self._split(X.shape[0], rng)
            X_train, y_train, X_val, y_val = X[train], y2[train], X[val], y2[val]
            self.validation_index_ = np.sort(val)
        else:
            self.validation_index_ = None
            X_train, y_train = X, y2
            X_val = self._check_X(validation_data[0], reset=False)
            _, y_val, _ = self._check_y(validation_data[1], X_val.shape[0])
            if y_val.shape[1] != y2.shape[1]:
                raise ValueError(f"validation y has {y_val.shape[1]} labels but y has {y2.shape[1]}.")
        missing = np.flatnonzero(np.isnan(y_val).all(axis=0))
        if missing.size and recipe["std_calibration"] == "validation":
            raise ValueError(
                f"label column(s) {missing.tolist()} have no value in the validation set, so their std cannot "
                "be calibrated; give more validation stars with these labels or std_calibration='none'."
            )
        y_val_units = y_val  # y_val is standardised below; the std is calibrated in the units of y

        self._y_1d = y.ndim == 1
        self.label_mean_ = np.nanmean(y_train, axis=0)
        scale = np.nanstd(y_train, axis=0)
        self.label_scale_ = np.where((scale > 0) & np.isfinite(scale), scale, 1.0)
        if not np.isfinite(self.label_mean_).all():
            empty = np.flatnonzero(~np.isfinite(self.label_mean_)).tolist()
            raise ValueError(f"label column(s) {empty} have no value in the training part of the split.")
        self.input_offset_, self.input_scale_ = self._input_transform(X_train, recipe["input_scaling"])
        X_train, X_val = (self._scale_X(part) for part in (X_train, X_val))
        y_train, y_val = (((part - self.label_mean_) / self.label_scale_).astype(np.float32)
                          for part in (y_train, y_val))

        seeds = rng.randint(0, 2**31 - 1, size=self.n_models)
        builder = self.builder if self.builder is not None else build_table2
        builder_kwargs = {} if self.builder is not None else {k: recipe[k] for k in ARCHITECTURE_KEYS}
        ridge_skip = self.builder is None and recipe["linear_skip"] == "ridge"
        if self.builder is None:
            builder_kwargs["linear_skip"] = recipe["linear_skip"] != "none"
        bootstrap = bool(recipe["bootstrap"]) and self.n_models > 1
        # without bagging every member's ridge map is the same: solve it once (~25 s at 8 800 stars)
        shared_ridge = fit_ridge_skip(X_train, y_train, X_val, y_val) if ridge_skip and not bootstrap else None
        jobs = (
            delayed(fit_member)(
                X_train, y_train, X_val, y_val, seed=seed, builder=builder, builder_kwargs=builder_kwargs,
                optimizer=recipe["optimizer"], learning_rate=recipe["learning_rate"],
                batch_size=recipe["batch_size"], max_epochs=self.max_epochs, patience=recipe["patience"],
                verbose=self.verbose, lr_schedule=recipe["lr_schedule"], ridge_skip=ridge_skip,
                bootstrap=bootstrap, ridge=shared_ridge,
            )
            for seed in seeds
        )
        results = Parallel(n_jobs=self.n_jobs, return_as="generator")(jobs)
        if self.verbose:
            from tqdm.auto import tqdm

            results = tqdm(results, total=self.n_models, desc="CNN members", unit="model")
        results = list(results)

        self.recipe_ = recipe
        self.val_losses_ = np.array([loss for _, loss, _, _ in results])
        self.history_ = [history for _, _, history, _ in results]
        self.__dict__.pop("ridge_alpha_", None)  # from an earlier fit with another recipe
        if ridge_skip:
            self.ridge_alpha_ = np.array([alpha for _, _, _, alpha in results])
        self.kept_ = np.argsort(self.val_losses_, kind="stable")[: self.n_keep]
        self._member_bytes = [results[i][0] for i in self.kept_]
        self._load_members()
        self._calibrate_std(X_val, y_val_units)
        return self

    def _member_predictions(self, X, *, offset, scale):
        # (n_keep, n, n_labels) float64 in the units of y
        raw = self._ensemble_fn(X, offset=offset, scale=scale)
        return raw.astype(np.float64) * self.label_scale_ + self.label_mean_

    def _calibrate_std(self, X_val, y_val):
        """``std_scale_`` and ``val_scatter_`` from the (already scaled) validation spectra."""
        raw = self._member_predictions(X_val, offset=None, scale=None)
        error = raw.mean(axis=0) - y_val
        self.val_scatter_ = np.array([np.std(e[np.isfinite(e)]) if np.isfinite(e).any() else np.nan
                                      for e in error.T])
        self.std_scale_ = std_scale(error, raw.std(axis=0))

    @staticmethod
    def _input_transform(X, how):
        if how == "none":
            return None, None
        if how == "center":
            return np.float32(1.0), np.float32(-1.0)
        mean = X.mean(axis=0, dtype=np.float64)
        std = X.std(axis=0, dtype=np.float64)
        return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)

    def _scale_X(self, X):
        X = np.asarray(X, dtype=np.float32)
        if self.input_offset_ is not None:
            X = (X - self.input_offset_) / self.input_scale_
        return np.ascontiguousarray(X, dtype=np.float32)

    def _load_members(self):
        self.members_ = [model_from_bytes(data) for data in self._member_bytes]
        recipe = self.recipe_ if self.builder is None else None
        self._ensemble_fn = make_ensemble_function(self.members_, self.n_features_in_, recipe)

    # ------------------------------------------------------------------ predict
    def predict(self, X, return_std=False):
        """Predict labels as the mean of the kept members.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels)
            Spectra on the pixel grid seen at fit.
        return_std : bool, default=False
            Also return the standard deviation across the kept members, scaled by
            ``std_scale_`` when ``std_calibration`` is "validation" (``val_scatter_`` for a
            label whose factor is NaN: a single kept member).

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_labels), float64
            Shaped like the y given to fit.
        y_std : ndarray, same shape as y_mean
            Only when ``return_std`` is True: a 1-sigma error bar (calibrated), or the raw
            spread of the members with ``std_calibration="none"``.
        """
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        raw = self._member_predictions(X, offset=self.input_offset_, scale=self.input_scale_)
        mean = raw.mean(axis=0)
        std = raw.std(axis=0)
        if self.recipe_["std_calibration"] == "validation":
            # Without a spread to scale, the validation scatter is the honest error bar.
            std = np.where(np.isfinite(self.std_scale_), std * self.std_scale_, self.val_scatter_)
        if self._y_1d:
            mean, std = mean[:, 0], std[:, 0]
        return (mean, std) if return_std else mean

    def label_function(self, members=None):
        """The prediction function of the members as one differentiable TensorFlow function.

        ``function(flux)`` maps a float32 tensor of spectra, as given to :meth:`predict`, to
        the float32 predictions of each member in the units of y: input transform
        (``input_offset_``, ``input_scale_``), network (with its linear skip, which is one of
        its layers), label standardisation undone (``label_mean_``, ``label_scale_``). It is
        what :meth:`predict` computes before the mean over the members, but in TensorFlow (the
        compiled CPU path of :meth:`predict` has no gradient), so that a ``tf.GradientTape``
        differentiates it: :func:`skstellar.explain.saliency` does. It is a plain Python
        function; wrap it in ``tf.function`` (with the tape inside) for speed.

        Parameters
        ----------
        members : sequence of int, default=None
            Positions in ``members_`` of the members to run; None runs all kept members.

        Returns
        -------
        function : callable
            ``function(flux) -> labels``: ``flux`` of shape (n, ``n_features_in_``), float32;
            ``labels`` of shape (n_members, n, n_labels), float32.

        Examples
        --------
        >>> import numpy as np
        >>> from skstellar.models import CNNLabelRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = (1 - 0.5 * rng.random((40, 30))).astype(np.float32)
        >>> reg = CNNLabelRegressor(filters=(2,), kernel_size=3, dense_units=(4,), max_epochs=2,
        ...                         n_models=2, n_keep=2, random_state=0).fit(X, X[:, :2])
        >>> labels = reg.label_function()(X[:3]).numpy()
        >>> labels.shape
        (2, 3, 2)
        >>> np.allclose(labels.mean(axis=0), reg.predict(X[:3]), atol=1e-5)
        True
        """
        check_is_fitted(self)
        import tensorflow as tf

        if members is None:
            chosen = list(self.members_)
        else:
            positions = np.atleast_1d(np.asarray(members))
            if positions.size == 0 or positions.dtype.kind not in "iu" or (
                    (positions < 0) | (positions >= len(self.members_))).any():
                raise ValueError(f"members must be positions in members_ (0 to {len(self.members_) - 1}); "
                                 f"got {members!r}.")
            chosen = [self.members_[int(i)] for i in positions]
        offset, scale = self.input_offset_, self.input_scale_
        label_mean = tf.constant(self.label_mean_, dtype=tf.float32)
        label_scale = tf.constant(self.label_scale_, dtype=tf.float32)

        def function(flux):
            x = flux if offset is None else (flux - offset) / scale
            return tf.stack([model(x, training=False) for model in chosen]) * label_scale + label_mean

        return function

    # ------------------------------------------------------------------ persistence
    def __getstate__(self):
        state = dict(super().__getstate__())
        # Keras models and tf.functions do not pickle portably; the .keras bytes do.
        state.pop("members_", None)
        state.pop("_ensemble_fn", None)
        return state

    def __setstate__(self, state):
        if "_x_offset" in state:  # models pickled before the input transform was public
            state["input_offset_"], state["input_scale_"] = state.pop("_x_offset"), state.pop("_x_scale")
        super().__setstate__(state)
        if "_member_bytes" in state:
            self._load_members()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        # A few epochs of a tiny network (the common checks) cannot reach R^2 > 0.5.
        tags.regressor_tags.poor_score = True
        return tags
