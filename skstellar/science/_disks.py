"""The chemical thin and thick disks: HDBSCAN in the ([Fe/H], [Mg/Fe]) plane (thesis Sect. 5.3)."""

from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator

from ..utils._sklearn import (
    Interval,
    StrOptions,
    _fit_context,
    check_is_fitted,
    validate_data,
)
from ._tables import column

__all__ = ["DiskSeparation", "DiskSeparator", "separate_disks"]

POPULATIONS = ("thin", "thick", "other", "noise", "missing")


class DiskSeparation(NamedTuple):
    """Per star: ``population`` (str) and its membership ``probability`` (0 for noise, NaN
    for missing labels)."""

    population: np.ndarray
    probability: np.ndarray


class DiskSeparator(BaseEstimator):
    """Separate the thin and thick disks with HDBSCAN on standardised [Fe/H] and [Mg/Fe].

    The two axes are scaled to unit variance (on the fitted stars) so that neither
    dominates the density, then the ``hdbscan`` package clusters them. Clusters are named
    by their mean [Mg/Fe], never by cluster number: the lowest is ``"thin"``, the highest
    ``"thick"``, any between ``"other"``; when HDBSCAN finds no cluster (one blob, which it
    does not call a cluster) every star is ``"noise"``. Stars in no cluster are ``"noise"``
    -- a sizable fraction is expected (35 % in the thesis), not an error. Stars with a NaN
    label are ``"missing"``: they take no part in the fit and are never assigned. New stars
    are assigned to the fitted clusters with ``hdbscan.approximate_predict``.

    Parameters
    ----------
    min_cluster_size : int >= 2 or float in (0, 1), default=0.05
        HDBSCAN's smallest cluster; a float is a fraction of the fitted stars.
    min_samples : int >= 1 or None, default=10
        HDBSCAN's neighbourhood size for the core distance (None: ``min_cluster_size``).
        The ``hdbscan`` package counts the point itself, unlike scikit-learn's ``HDBSCAN``.
    cluster_selection_method : {"eom", "leaf"}, default="eom"
        HDBSCAN's choice of clusters from the tree.
    alpha_column : int, default=-1
        The column of X that names the clusters ([Mg/Fe]); X is ([Fe/H], [Mg/Fe]).

    Attributes
    ----------
    clusterer_ : hdbscan.HDBSCAN
        The fitted clusterer (with prediction data).
    cluster_names_ : dict of int to str
        Population of each HDBSCAN cluster number.
    cluster_means_ : ndarray of shape (n_clusters, n_features)
        Mean of each cluster in the units of X, in cluster-number order.
    labels_ : ndarray of str of shape (n_samples,)
        Population of each fitted star.
    probabilities_ : ndarray of shape (n_samples,)
        Membership probability of each fitted star.
    mean_, scale_ : ndarray of shape (n_features,)
        The standardisation.
    n_features_in_ : int

    See Also
    --------
    separate_disks : The same for one table or pair of arrays, in one call.

    Examples
    --------
    >>> import numpy as np
    >>> from skstellar.science import DiskSeparator
    >>> rng = np.random.default_rng(0)
    >>> feh = np.r_[rng.normal(-0.1, 0.2, 300), rng.normal(-0.5, 0.2, 150)]
    >>> mgfe = np.r_[0.03 - 0.15 * feh[:300], 0.25 - 0.08 * feh[300:]] + rng.normal(0, 0.03, 450)
    >>> sep = DiskSeparator().fit(np.column_stack([feh, mgfe]))
    >>> sorted(sep.cluster_names_.values())
    ['thick', 'thin']
    >>> sep.predict([[0.0, 0.03], [-0.6, 0.3], [np.nan, 0.1]]).tolist()
    ['thin', 'thick', 'missing']
    """

    _parameter_constraints: dict = {
        "min_cluster_size": [Interval(Integral, 2, None, closed="left"), Interval(Real, 0, 1, closed="neither")],
        "min_samples": [Interval(Integral, 1, None, closed="left"), None],
        "cluster_selection_method": [StrOptions({"eom", "leaf"})],
        "alpha_column": [Integral],
    }

    def __init__(self, *, min_cluster_size=0.05, min_samples=10, cluster_selection_method="eom", alpha_column=-1):
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.cluster_selection_method = cluster_selection_method
        self.alpha_column = alpha_column

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Cluster the stars of X (n_samples, n_features): [Fe/H], [Mg/Fe].

        Returns
        -------
        self
        """
        import hdbscan  # here, not at the top: it takes seconds and imports pandas

        X = validate_data(self, X, ensure_all_finite="allow-nan", ensure_min_samples=2, dtype=np.float64)
        if not -X.shape[1] <= self.alpha_column < X.shape[1]:
            raise ValueError(f"alpha_column={self.alpha_column} is not a column of X with {X.shape[1]} columns.")
        known = ~np.isnan(X).any(axis=1)
        n = int(known.sum())
        if n < 2:
            raise ValueError(
                f"X has {n} star(s) with finite labels (of {X.shape[0]}); at least 2 are needed to separate disks."
            )
        self.mean_ = X[known].mean(axis=0)
        scale = X[known].std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)  # a constant column carries no information
        size = self.min_cluster_size
        if isinstance(size, Real) and not isinstance(size, Integral):
            size = round(size * n)
        size = int(min(max(size, 2), n))
        samples = None if self.min_samples is None else int(min(self.min_samples, n))
        self.clusterer_ = hdbscan.HDBSCAN(
            min_cluster_size=size,
            min_samples=samples,
            cluster_selection_method=self.cluster_selection_method,
            prediction_data=True,
        ).fit(self._standardise(X[known]))
        ids = np.unique(self.clusterer_.labels_[self.clusterer_.labels_ >= 0])
        fitted = X[known]
        self.cluster_means_ = np.array([fitted[self.clusterer_.labels_ == i].mean(axis=0) for i in ids]).reshape(
            ids.size, X.shape[1]
        )
        order = ids[np.argsort(self.cluster_means_[:, self.alpha_column], kind="stable")]
        self.cluster_names_ = {int(i): "other" for i in ids}
        if ids.size >= 2:
            self.cluster_names_[int(order[0])] = "thin"
            self.cluster_names_[int(order[-1])] = "thick"
        self.labels_ = np.full(X.shape[0], "missing", dtype="<U7")
        self.probabilities_ = np.full(X.shape[0], np.nan)
        self.labels_[known] = self._name(self.clusterer_.labels_)
        self.probabilities_[known] = self.clusterer_.probabilities_
        return self

    def predict(self, X, return_probability=False):
        """Population of new stars ("thin", "thick", "other", "noise", "missing").

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_probability : bool, default=False
            Also return the membership probability (NaN for missing labels).

        Returns
        -------
        population : ndarray of str
        probability : ndarray, only with ``return_probability``
        """
        import hdbscan

        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64)
        known = ~np.isnan(X).any(axis=1)
        population = np.full(X.shape[0], "missing", dtype="<U7")
        probability = np.full(X.shape[0], np.nan)
        # No cluster fitted: every star is noise (hdbscan would say so with a warning).
        if known.any() and not self.cluster_names_:
            population[known], probability[known] = "noise", 0.0
        elif known.any():
            ids, strength = hdbscan.approximate_predict(self.clusterer_, self._standardise(X[known]))
            population[known] = self._name(ids)
            probability[known] = strength
        return (population, probability) if return_probability else population

    def _standardise(self, X):
        return (X - self.mean_) / self.scale_

    def _name(self, ids):
        out = np.full(ids.shape, "noise", dtype="<U7")
        for i, name in self.cluster_names_.items():
            out[ids == i] = name
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def separate_disks(feh, mgfe=None, *, columns=("feh", "mgfe"), **params):
    """Thin / thick disk / noise per star, with membership probability (HDBSCAN).

    A one-call :class:`DiskSeparator`: fitted on these stars and returning their
    populations. Stars with a NaN [Fe/H] or [Mg/Fe] are ``"missing"``, never assigned.

    Parameters
    ----------
    feh : array-like of shape (n,), or a table
        [Fe/H]; or a table (astropy Table, pandas DataFrame, structured array, dict of
        columns) holding both labels, then ``mgfe`` is None.
    mgfe : array-like of shape (n,), default=None
        [Mg/Fe] (or another alpha element's abundance ratio).
    columns : (str, str), default=("feh", "mgfe")
        The table's [Fe/H] and [Mg/Fe] columns.
    **params
        Parameters of :class:`DiskSeparator` (``min_cluster_size``, ``min_samples``,
        ``cluster_selection_method``).

    Returns
    -------
    DiskSeparation
        Named tuple ``(population, probability)``: str array of "thin", "thick",
        "other", "noise", "missing" and float array.

    Examples
    --------
    >>> import numpy as np
    >>> from skstellar.science import separate_disks
    >>> rng = np.random.default_rng(1)
    >>> feh = np.r_[rng.normal(-0.1, 0.2, 300), rng.normal(-0.5, 0.2, 150)]
    >>> mgfe = np.r_[0.03 - 0.15 * feh[:300], 0.25 - 0.08 * feh[300:]] + rng.normal(0, 0.03, 450)
    >>> population, probability = separate_disks({"feh": feh, "mgfe": mgfe})
    >>> np.unique(population).tolist()
    ['noise', 'thick', 'thin']
    >>> bool((population[300:] == "thick").mean() > 0.5)
    True
    """
    if mgfe is None:
        if not isinstance(columns, (tuple, list)) or len(columns) != 2:
            raise ValueError(f"columns must be two column names ([Fe/H], [Mg/Fe]), got {columns!r}.")
        x = column(feh, columns[0], what="[Fe/H]")
        y = column(feh, columns[1], what="[Mg/Fe]")
    else:
        x = np.asarray(feh, dtype=np.float64)
        y = np.asarray(mgfe, dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape:
            raise ValueError(f"feh and mgfe must be 1-D arrays of one length; got shapes {x.shape} and {y.shape}.")
    sep = DiskSeparator(**params).fit(np.column_stack([x, y]))
    return DiskSeparation(sep.labels_, sep.probabilities_)
