"""Labels, their uncertainties and the similarity flags in one table: :func:`predict_table`."""

import inspect

import numpy as np
from astropy.table import Table
from sklearn.pipeline import Pipeline

from .filters import TSNESimilarityFilter
from .preprocessing import SetupStitcher
from .spectra import SpectralSet
from .utils._status import (
    UNPREDICTABLE,
    UNTRUSTED,
    StarFlag,
    collect_flags,
    combined,
    describe_flags,
    flags_doc,
)

__all__ = ["predict_table"]

# Columns of the filter verdict copied into the table, by table name.
_FLAG_COLUMNS = {
    "training_like": "training_like",
    "filter_score": "score",
    "map_distance": "map_distance",
    "map_outer": "map_outer",
    "residual": "residual",
    "residual_outer": "residual_outer",
    "pca_distance": "pca_distance",
    "pca_outer": "pca_outer",
}


def predict_table(pipeline, X):
    """Predict with a fitted pipeline and return one row per input spectrum, none dropped.

    The pipeline is run step by step; at each :class:`~skstellar.filters.TSNESimilarityFilter`
    the spectra are judged (the filter passes them on unchanged), and the final regressor
    predicts the labels, with their ensemble standard deviation when its ``predict``
    accepts ``return_std`` (as ``CNNLabelRegressor`` does).

    Parameters
    ----------
    pipeline : Pipeline or estimator
        Fitted. Its last step is a regressor (or a filter, for flags alone); a filter may
        sit anywhere before it, also inside a nested pipeline, or nowhere.
    X : SpectralSet or array-like of shape (n, n_features)
        Spectra, as the pipeline's first step expects them.

    Returns
    -------
    astropy.table.Table
        In input order, ``n`` rows:

        - ``id``: the SpectralSet's ``id`` metadata, else the row number;
        - per label, its prediction and ``e_<label>`` (the ensemble std, a calibrated
          1-sigma error with CNNLabelRegressor's default preset). Labels are named
          by the regressor's ``label_names_``, else ``y0, y1, ...``. A regressor whose
          ``predict`` has no ``return_std`` gives no ``e_`` columns;
        - with a filter: ``training_like`` (bool; False means do not trust the labels),
          ``filter_score`` (above 1: outer), ``map_distance``, ``map_outer``, ``residual``,
          ``residual_outer``, ``pca_distance``, ``pca_outer`` (see
          :class:`~skstellar.filters.SimilarityMap`). With several filters these columns
          are prefixed by the step name and ``training_like`` requires all of them. Without a
          filter there are no flag columns;
        - with a filter fitted with the training labels (its ``label_check``, on by default
          in a pipeline): the generative check of the predicted labels
          (:meth:`~skstellar.filters.TSNESimilarityFilter.check_labels`):
          ``explain_residual`` (RMS residual between the spectrum and the one the labels
          emulate, in units of the expected residual: about 1), ``explain_local`` (the same
          over the worst run of 4 pixels), ``explain_local_pixel``, and after a
          ``SetupStitcher`` ``explain_local_wavelength`` and the residual per line region:
          ``explain_ca_triplet``, ``explain_halpha``, ``explain_he_6678``, ``explain_li``,
          ``explain_mg``, ``explain_al`` (NaN where the grid does not cover the region); ``labels_explained``
          (bool). A star whose labels do not explain its spectrum is not training-like
          (``LABELS_UNEXPLAINED``);
        - ``flags``: the per-star status bits the steps recorded (see
          :class:`skstellar.StarFlag`; the column's description lists them)
          and ``status``: the same in words, ``"ok"`` for a star nothing happened to.
          A star whose spectrum could not be used (``EMPTY_SETUP``, ``FLUX_RANGE``,
          ``RV_INVALID``, ``NO_COVERAGE``, ...) gets NaN labels and errors, never a
          plausible number, and is not training-like; so is one padded beyond the
          Rebinner's ``max_padded`` (its labels stand).

    Raises
    ------
    ValueError
        If a step returns a different number of spectra than it was given.

    Notes
    -----
    All of X goes through the pipeline at once, so the filter embeds it in one joint map
    (or in the filter's own batches). For very large surveys call it per chunk of
    spectra and stack the tables (`astropy.table.vstack`); each chunk is then its own batch.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import BayesianRidge
    >>> from sklearn.pipeline import make_pipeline
    >>> from skstellar import predict_table
    >>> from skstellar.filters import TSNESimilarityFilter
    >>> rng = np.random.default_rng(0)
    >>> X = 1 + 0.01 * rng.normal(size=(60, 20))
    >>> y = X[:, :3].sum(axis=1)
    >>> pipe = make_pipeline(TSNESimilarityFilter(n_components=5, perplexity=5, random_state=0,
    ...                                           tsne_params={"n_iter": 200}), BayesianRidge())
    >>> table = predict_table(pipe.fit(X, y), np.vstack([X[:4] + 0.001, X[:1] + 0.5]))
    >>> table.colnames  # doctest: +NORMALIZE_WHITESPACE
    ['id', 'y0', 'e_y0', 'training_like', 'filter_score', 'map_distance', 'map_outer', 'residual',
     'residual_outer', 'pca_distance', 'pca_outer', 'explain_residual', 'explain_local',
     'explain_local_pixel', 'labels_explained', 'flags', 'status']
    >>> table["training_like"].tolist()
    [True, True, True, True, False]
    """
    named = _flatten(pipeline) if isinstance(pipeline, Pipeline) else [("filter", pipeline)]
    names, steps = [name for name, _ in named], [step for _, step in named]
    n = _n_spectra(X)
    table = Table({"id": np.asarray(X.ids) if isinstance(X, SpectralSet) else np.arange(n)})

    last = steps[-1]
    regressor = None if isinstance(last, TSNESimilarityFilter) else last
    verdicts = []
    data = X
    meta = X.meta if isinstance(X, SpectralSet) else None
    checks = []  # (name, filter, its input, the wavelength axis there or None): the label checks
    wavelength = None
    for name, step in zip(names, steps if regressor is None else steps[:-1]):
        if step is None or (isinstance(step, str) and step == "passthrough"):
            continue
        if isinstance(step, TSNESimilarityFilter):
            verdicts.append((name, step.embed(data)))
            if regressor is not None and getattr(step, "label_check_", None) is not None:
                axis = wavelength if wavelength is not None and wavelength.size == step.n_features_in_ else None
                checks.append((name, step, data, axis))
        if isinstance(step, SetupStitcher):
            wavelength = np.asarray(step.wavelength_, dtype=np.float64)
        data = step.transform(data)
        _check_rows(n, _n_spectra(data), f"step {name!r}")
        if isinstance(data, SpectralSet):
            meta = data.meta
    star_flags, setup_flags = collect_flags(meta, n)
    dead = (combined(star_flags, setup_flags) & int(UNPREDICTABLE)) != 0

    if regressor is not None:
        labels = getattr(regressor, "label_names_", None)
        if "return_std" in inspect.signature(regressor.predict).parameters:
            pred, std = regressor.predict(data, return_std=True)
        else:
            pred, std = regressor.predict(data), None
        pred = np.asarray(pred).reshape(n, -1) if np.ndim(pred) == 1 else np.asarray(pred)
        _check_rows(n, pred.shape[0], f"the regressor {type(regressor).__name__}")
        labels = [str(label) for label in labels] if labels is not None else [f"y{j}" for j in range(pred.shape[1])]
        std = None if std is None else np.asarray(std).reshape(pred.shape)
        pred = np.array(pred, dtype=np.result_type(pred.dtype, np.float32))  # a copy that holds NaN
        star_flags |= np.where(~np.isfinite(pred).all(axis=1), int(StarFlag.PREDICTION_NONFINITE), 0)
        pred[dead] = np.nan
        if std is not None:
            std = np.array(std, dtype=np.result_type(std.dtype, np.float32))
            std[dead] = np.nan
        for j, label in enumerate(labels):
            table[label] = pred[:, j]
            if std is not None:
                table[f"e_{label}"] = std[:, j]

    for name, verdict in verdicts:
        prefix = f"{name}_" if len(verdicts) > 1 else ""
        for column, attribute in _FLAG_COLUMNS.items():
            table[prefix + column] = np.asarray(getattr(verdict, attribute))
    explained = np.ones(n, dtype=bool)
    for name, step, filtered, axis in checks:
        prefix = f"{name}_" if len(verdicts) > 1 else ""
        # A dead star's placeholder has NaN labels: not judged. The check refines the labels itself
        # (SpectrumEmulator.refine), so the ensemble's std is not passed: an unusual star's wide std
        # would excuse exactly the residual the check is there to see.
        check = step.check_labels(filtered, pred, wavelength=axis)
        for column in check.colnames:
            if column != "labels_explained":
                table[f"{prefix}explain_{column}"] = check[column]
        table[prefix + "labels_explained"] = check["labels_explained"]
        explained &= np.asarray(check["labels_explained"])
    star_flags |= np.where(explained, 0, int(StarFlag.LABELS_UNEXPLAINED))
    if verdicts:
        alike = np.logical_and.reduce([np.asarray(v.training_like) for _, v in verdicts])
        # the filter judged the placeholder of a dead star: no news
        star_flags |= np.where(alike | dead, 0, int(StarFlag.NOT_TRAINING_LIKE))
    flags = combined(star_flags, setup_flags)
    if verdicts:
        table["training_like"] = alike & ((flags & int(UNTRUSTED)) == 0)
    table["flags"] = flags
    table["flags"].description = "per-star status bits (OR of): " + flags_doc()
    table["status"] = describe_flags(star_flags, setup_flags)
    table["status"].description = "why a star's labels are NaN or untrusted; 'ok' when clean"
    return table


def _flatten(pipeline, prefix=""):
    """(name, step) pairs of a pipeline, nested pipelines expanded (names joined by "__")."""
    named = []
    for name, step in pipeline.steps:
        if isinstance(step, Pipeline):
            named.extend(_flatten(step, f"{prefix}{name}__"))
        else:
            named.append((prefix + name, step))
    return named


def _n_spectra(X):
    return len(X) if isinstance(X, SpectralSet) else np.shape(X)[0]


def _check_rows(expected, got, where):
    if got != expected:
        raise ValueError(
            f"predict_table: {where} returned {got} spectra for {expected} given; every step must "
            "keep every spectrum (no spectrum may be dropped from the table)."
        )
