"""Gradient saliency of a fitted CNN ensemble: d(label)/d(flux) on the wavelength axis."""

import weakref
from numbers import Integral

import numpy as np
from sklearn.pipeline import Pipeline

from .._labels import LABEL_UNITS
from ..utils._sklearn import check_is_fitted

__all__ = ["SaliencyMap", "saliency"]

SALIENCY_BATCH = 128  # spectra per graph call: memory ~ batch x pixels x (labels + activations)
_PER = ("mean", "spectrum", "member")


class SaliencyMap:
    """The saliency of each label with respect to each input pixel, with its axes.

    Built by :func:`saliency`; read its attributes or :meth:`to_table`.

    Attributes
    ----------
    values : ndarray, float32
        ``(n_labels, n_pixels)`` for ``per="mean"``; ``(n_spectra, n_labels, n_pixels)``
        for "spectrum"; ``(n_members, n_labels, n_pixels)`` for "member". In the unit of each
        label per unit of continuum-normalised flux (K, dex): the change of the label when
        the flux of one pixel rises by 1 (a line there made shallower).
    wavelength : ndarray of shape (n_pixels,), float64
        Rest-frame wavelength (Angstrom) of each pixel from the pipeline's fitted
        :class:`~skstellar.preprocessing.SetupStitcher`, or the pixel index when there is none.
    setup : ndarray of shape (n_pixels,), str
        Setup of each pixel ("" without a stitcher).
    labels : tuple of str
        Label names, in the order of the values' label axis.
    units : tuple of str
        Unit of each label, and so of its saliency ("" when the label is unknown).
    per : {"mean", "spectrum", "member"}
        What the first axis of a 3-D ``values`` runs over.
    members : ndarray of int
        Positions in the estimator's ``members_`` of the members used.
    mean_flux : ndarray of shape (n_pixels,), float32
        Mean of the spectra (as the network's pixel axis sees them, before any
        :class:`~skstellar.preprocessing.LineMasker`), to draw under the map.
    n_spectra : int
        Number of spectra averaged over or kept.
    wavelength_unit : str
        "Angstrom", or "pixel" without a stitcher.
    """

    def __init__(self, values, *, wavelength, setup, labels, units, per, members, mean_flux, n_spectra,
                 wavelength_unit):
        self.values = values
        self.wavelength = wavelength
        self.setup = setup
        self.labels = tuple(labels)
        self.units = tuple(units)
        self.per = per
        self.members = members
        self.mean_flux = mean_flux
        self.n_spectra = n_spectra
        self.wavelength_unit = wavelength_unit

    def __repr__(self):
        return (f"SaliencyMap(labels={list(self.labels)}, per={self.per!r}, values shape {self.values.shape}, "
                f"{self.n_spectra} spectra, {self.members.size} member(s))")

    def label_index(self, label):
        """Position of ``label`` on the label axis; a ValueError names the known labels."""
        if label not in self.labels:
            raise ValueError(f"unknown label {label!r}; this saliency map has labels {list(self.labels)}.")
        return self.labels.index(label)

    def mean_values(self):
        """The ``(n_labels, n_pixels)`` map averaged over spectra and members (``values`` itself for "mean")."""
        return self.values if self.values.ndim == 2 else self.values.mean(axis=0)

    def to_table(self):
        """An astropy Table: one row per pixel, ``wavelength``, ``setup`` and one column per label.

        A label column has the label's unit; with ``per`` "spectrum" or "member" it is 2-D,
        ``(n_pixels, n_spectra)`` or ``(n_pixels, n_members)``.
        """
        from astropy.table import Table

        table = Table()
        table["wavelength"] = self.wavelength
        table["wavelength"].unit = "Angstrom" if self.wavelength_unit == "Angstrom" else None
        table["setup"] = self.setup
        for i, (label, unit) in enumerate(zip(self.labels, self.units)):
            column = self.values[i] if self.values.ndim == 2 else self.values[:, i].T
            table[label] = column
            table[label].unit = unit or None
            table[label].description = f"d {label} / d normalised flux"
        table.meta.update(per=self.per, n_spectra=self.n_spectra, members=self.members.tolist())
        return table


def _flat_steps(steps):
    """The steps of nested pipelines (``make_pipeline(giraffe_preprocessor(), cnn)``) in one list."""
    flat = []
    for name, step in steps:
        flat.extend(_flat_steps(step.steps) if isinstance(step, Pipeline) else [(name, step)])
    return flat


def _split_model(model):
    """``(upstream, downstream, regressor, stitcher, maskers)`` of a fitted model.

    The pixel axis is the output of the last SetupStitcher, or, without one, the output of the last
    step that is neither a pass-through nor a LineMasker: ``upstream`` (fitted steps) makes
    it, ``downstream`` (pass-through filters and maskers) follows it, and both are applied as
    they are; the maskers' Jacobian (0 on masked pixels, else 1) enters the gradient.
    """
    from ..filters import TSNESimilarityFilter
    from ..models import CNNLabelRegressor
    from ..preprocessing import LineMasker, SetupStitcher

    if isinstance(model, CNNLabelRegressor):
        check_is_fitted(model)
        return [], [], model, None, []
    if not isinstance(model, Pipeline):
        raise TypeError(f"model must be a fitted CNNLabelRegressor or a Pipeline ending in one; got "
                        f"{type(model).__name__}.")
    steps = _flat_steps(model.steps)
    name, regressor = steps[-1]
    if not isinstance(regressor, CNNLabelRegressor):
        raise TypeError(f"the pipeline must end in a CNNLabelRegressor; its last step {name!r} is "
                        f"{type(regressor).__name__}.")
    check_is_fitted(regressor)
    steps = steps[:-1]
    maskers = [step for _, step in steps if isinstance(step, LineMasker)]
    boundary = len(steps)
    while boundary > 0 and (steps[boundary - 1][1] in (None, "passthrough")
                            or isinstance(steps[boundary - 1][1], (TSNESimilarityFilter, LineMasker))):
        boundary -= 1
    stitchers = [i for i, (_, step) in enumerate(steps) if isinstance(step, SetupStitcher)]
    stitcher = None
    if stitchers:
        if stitchers[-1] != boundary - 1:
            name, step = steps[boundary - 1]
            raise ValueError(
                f"saliency differentiates the steps between the SetupStitcher and the CNNLabelRegressor, and "
                f"knows only pass-through filters and LineMasker there; step {name!r} "
                f"({type(step).__name__}) is neither. Put it before the stitcher.")
        stitcher = steps[stitchers[-1]][1]
    upstream = [step for _, step in steps[:boundary] if step not in (None, "passthrough")]
    downstream = [step for _, step in steps[boundary:] if step not in (None, "passthrough")]
    return upstream, downstream, regressor, stitcher, maskers


def _choose_labels(regressor, labels):
    names = [str(n) for n in regressor.label_names_]
    if labels is None:
        return list(range(len(names))), names
    chosen = [labels] if isinstance(labels, str) else list(labels)
    if not chosen:
        raise ValueError(f"labels is empty; choose among {names}.")
    unknown = [label for label in chosen if label not in names]
    if unknown:
        raise ValueError(f"unknown label(s) {unknown}; the model predicts {names}.")
    return [names.index(label) for label in chosen], [str(label) for label in chosen]


def _choose_members(regressor, members):
    n = len(regressor.members_)
    if isinstance(members, str):
        if members != "kept":
            raise ValueError(f"members must be 'kept', a position or positions in members_ (0 to {n - 1}); "
                             f"got {members!r}.")
        return np.arange(n)
    positions = np.atleast_1d(np.asarray(members))
    if (positions.size == 0 or positions.ndim != 1 or not all(isinstance(p, Integral) for p in positions.tolist())
            or (positions < 0).any() or (positions >= n).any()):
        raise ValueError(f"members must be 'kept', a position or positions in members_ (0 to {n - 1}); "
                         f"got {members!r}.")
    return positions.astype(int)


# Traced gradient functions per fitted regressor: tracing one costs seconds (as much as the
# saliency of a few hundred spectra), so repeated calls on one model reuse it.
_TRACED = weakref.WeakKeyDictionary()


def _gradient_function(regressor, members, label_index):
    """A tf.function ``x -> (n_labels, n, p)``: the gradient of the members' mean prediction of each label.

    Cached per regressor, keyed by the member networks themselves (a refit makes new ones) and
    the labels; entries of networks the regressor no longer holds are dropped.
    """
    networks = tuple(id(regressor.members_[i]) for i in members)
    key = (networks, tuple(label_index))
    traced = _TRACED.setdefault(regressor, {})
    if key not in traced:
        current = {id(network) for network in regressor.members_}
        for stale in [k for k in traced if not set(k[0]) <= current]:
            del traced[stale]
        traced[key] = _trace_gradient_function(regressor, members, label_index)
    return traced[key]


def _trace_gradient_function(regressor, members, label_index):
    import tensorflow as tf

    predict = regressor.label_function(members=members.tolist())
    p = regressor.n_features_in_

    @tf.function(input_signature=[tf.TensorSpec([None, p], tf.float32)], reduce_retracing=True)
    def gradients(x):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            # Spectra are independent, so the gradient of the batch sum is each spectrum's own.
            outputs = tf.reduce_mean(predict(x), axis=0)
            totals = [tf.reduce_sum(outputs[:, j]) for j in label_index]
        result = tf.stack([tape.gradient(total, x) for total in totals])
        del tape
        return result

    return gradients


def saliency(model, X, *, labels=None, per="mean", members="kept", batch_size=SALIENCY_BATCH):
    """The gradient of each predicted label with respect to each input flux pixel.

    The whole prediction function is differentiated: the estimator's input transform, each
    member network with its linear skip path, and the label standardisation undone, so the
    saliency is in the label's own unit (K, dex) per unit of continuum-normalised flux. A
    negative value at a line means that a deeper line (lower flux) raises the label, as an
    abundance read from its element's lines should.

    Parameters
    ----------
    model : CNNLabelRegressor or Pipeline
        A fitted :class:`~skstellar.models.CNNLabelRegressor`, or a fitted Pipeline ending in
        one. For a Pipeline, ``X`` goes through the earlier steps, and the pixels are those
        of its last :class:`~skstellar.preprocessing.SetupStitcher` (with their wavelengths):
        the steps between the stitcher and the regressor must be pass-through filters
        (:class:`~skstellar.filters.TSNESimilarityFilter`) or
        :class:`~skstellar.preprocessing.LineMasker` steps. A LineMasker anywhere in the
        pipeline makes the saliency exactly 0 on the pixels it masks (they carry nothing of
        the spectrum to the network).
    X : SpectralSet or array-like of shape (n_spectra, n_pixels)
        Spectra, as ``model.predict`` takes them.
    labels : str or sequence of str, default=None
        Names of the labels (``label_names_``) to differentiate; None: all.
    per : {"mean", "spectrum", "member"}, default="mean"
        "mean" averages over the spectra and the members; "spectrum" keeps one map per
        spectrum (averaged over members), "member" one per member (averaged over spectra).
    members : "kept", int or sequence of int, default="kept"
        The members (positions in ``members_``) whose mean prediction is differentiated.
    batch_size : int, default=128
        Spectra per TensorFlow call. Beyond the input itself (run through the pipeline's
        steps, as ``predict`` does), memory is bounded by the batch, not by the number of
        spectra (except for the output of ``per="spectrum"``).

    Returns
    -------
    SaliencyMap

    See Also
    --------
    line_attribution : Which known lines carry each label's saliency.
    saliency_correlation : How alike the labels' maps are.
    plot_saliency : The maps on the wavelength axis.

    Notes
    -----
    Computed with one ``tf.GradientTape`` per batch in float32, one backward pass per
    label. The compiled CPU path of ``predict`` has no gradient, so the Keras members run
    here; their predictions agree with ``predict`` to float32 rounding. The first call on a
    model traces its TensorFlow graph (a few seconds for Table-2 networks); later calls on
    the same fitted model, members and labels reuse it.

    Examples
    --------
    >>> import numpy as np
    >>> from skstellar.explain import saliency
    >>> from skstellar.models import CNNLabelRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = (1 - 0.5 * rng.random((40, 30))).astype(np.float32)
    >>> reg = CNNLabelRegressor(filters=(2,), kernel_size=3, dense_units=(4,), max_epochs=2, n_models=1,
    ...                         n_keep=1, random_state=0, label_names=["teff", "feh"])
    >>> smap = saliency(reg.fit(X, X[:, :2] @ [[4000.0, 1.0], [1000.0, -0.5]]), X)
    >>> smap.values.shape, smap.labels, smap.units
    ((2, 30), ('teff', 'feh'), ('K', 'dex'))
    >>> smap.to_table().colnames
    ['wavelength', 'setup', 'teff', 'feh']
    """
    if per not in _PER:
        raise ValueError(f"per must be one of {_PER}; got {per!r}.")
    if not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    upstream, downstream, regressor, stitcher, maskers = _split_model(model)
    label_index, label_names = _choose_labels(regressor, labels)
    positions = _choose_members(regressor, members)

    X_axis = X
    for step in upstream:
        X_axis = step.transform(X_axis)
    from ..spectra import SpectralSet

    if isinstance(X_axis, SpectralSet):
        raise TypeError("saliency needs spectra on one pixel grid: give an array, or a pipeline with a "
                        "SetupStitcher for a SpectralSet.")
    X_axis = np.asarray(X_axis)
    p = regressor.n_features_in_
    if X_axis.ndim != 2 or X_axis.shape[1] != p:
        raise ValueError(f"X gives spectra of shape {X_axis.shape[1:]} on the model's pixel axis but the "
                         f"CNNLabelRegressor was fitted on {p} pixels.")
    X_in = X_axis
    for step in downstream:
        X_in = step.transform(X_in)
    X_in = np.asarray(X_in, dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(X_in).all(axis=1))
    if bad.size:
        raise ValueError(f"X contains NaN or inf in {bad.size} spectra (rows {bad[:10].tolist()}); the network "
                         "has no gradient there. Clean them first (skstellar.preprocessing.SpectrumCleaner).")

    if stitcher is not None:
        wavelength = np.asarray(stitcher.wavelength_, dtype=np.float64)
        setup = np.empty(p, dtype=f"U{max(len(s) for s in stitcher.setups_)}")
        for name, columns in stitcher.setup_slices_.items():
            setup[columns] = name
        unit = "Angstrom"
    else:
        wavelength, setup, unit = np.arange(p, dtype=np.float64), np.full(p, ""), "pixel"
    keep = np.ones(p, dtype=np.float32)
    for masker in maskers:
        grid = wavelength if stitcher is not None or masker.wavelength is None else masker.wavelength
        keep[masker.pixel_mask(grid)] = 0.0

    groups = [positions[i:i + 1] for i in range(positions.size)] if per == "member" else [positions]
    n = X_in.shape[0]
    k = len(label_index)
    out = np.zeros((n, k, p) if per == "spectrum" else (len(groups), k, p), dtype=np.float32)
    for g, group in enumerate(groups):
        gradients = _gradient_function(regressor, group, label_index)
        for start in range(0, n, batch_size):
            grad = gradients(X_in[start:start + batch_size]).numpy()  # (k, rows, p)
            if per == "spectrum":
                out[start:start + batch_size] = grad.transpose(1, 0, 2)
            else:
                out[g] += grad.sum(axis=1)
    if per != "spectrum":
        out /= n
    out *= keep
    values = out[0] if per == "mean" else out
    return SaliencyMap(
        values, wavelength=wavelength, setup=setup, labels=label_names,
        units=[LABEL_UNITS.get(name, "") for name in label_names], per=per, members=positions,
        mean_flux=X_axis.mean(axis=0, dtype=np.float64).astype(np.float32), n_spectra=n, wavelength_unit=unit,
    )
