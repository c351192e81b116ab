"""One t-SNE map of training and new spectra together (openTSNE)."""

import numpy as np
from scipy.spatial import cKDTree

from ._scores import threads

# Settings the filter sets itself; ``tsne_params`` may not override them.
RESERVED = ("n_components", "perplexity", "random_state", "n_jobs")
# openTSNE settings that choose its own neighbour search instead of ours.
_NEIGHBOR_SETTINGS = ("neighbors", "metric", "metric_params", "knn_kwargs")
# The filter's own defaults of openTSNE settings (``tsne_params`` overrides them): 250
# iterations after the 250 of early exaggeration instead of 500, and FFT grid cells of 3
# map units instead of 1. On 15 000 + 20 100 mock spectra they gave the same verdicts as
# openTSNE's defaults in a third of the time (the FFT grid grows with the map, so its
# last iterations cost the most).
TSNE_DEFAULTS = {"n_iter": 250, "ints_in_interval": 3}
def exact_neighbors(points, k, n_jobs=None):
    """The ``k`` nearest other points of every point, exactly (a k-d tree, float64).

    PCA coordinates of spectra have a few dominant axes, so the tree prunes well even in
    50 dimensions: 35 000 points in a few seconds on 2 cores. Deterministic, unlike
    openTSNE's default (Annoy trees built on several threads, then queried one point per
    joblib task: 13 s for 35 000 points on 2 cores).

    Returns
    -------
    indices : ndarray of shape (n, k), int64
    distances : ndarray of shape (n, k), float64, ascending per row
    """
    n = len(points)
    distances, indices = cKDTree(points).query(points, k=k + 1, workers=threads(n_jobs))
    # Each point is its own nearest hit, unless exact duplicates of it come first.
    own = indices == np.arange(n)[:, None]
    own[~own.any(axis=1), -1] = True
    keep = ~own
    return indices[keep].reshape(n, k).astype(np.int64), distances[keep].reshape(n, k)


def joint_map(training, new, *, perplexity, random_state, n_jobs, tsne_params):
    """Embed training and new PCA coordinates in one 2-D openTSNE map.

    Parameters
    ----------
    training : ndarray of shape (n_training, k)
    new : ndarray of shape (n_new, k)
    perplexity : float
    random_state : int
    n_jobs : int or None
    tsne_params : dict or None
        Further keyword arguments of `openTSNE.TSNE`.

    Returns
    -------
    training_map : ndarray of shape (n_training, 2)
    new_map : ndarray of shape (n_new, 2)
    """
    # A 0.3 s import that only fitting and predicting need.
    from openTSNE import TSNE  # noqa: PLC0415
    from openTSNE.affinity import PerplexityBasedNN  # noqa: PLC0415
    from openTSNE.nearest_neighbors import PrecomputedNeighbors  # noqa: PLC0415

    points = np.vstack([training, new]).astype(np.float64, copy=False)
    if points.shape[1] < 2:
        # openTSNE's PCA initialisation needs two input dimensions; a zero column keeps every distance.
        points = np.hstack([points, np.zeros((len(points), 2 - points.shape[1]))])
    params = {**TSNE_DEFAULTS, **(tsne_params or {})}
    n_threads = threads(n_jobs)
    tsne = TSNE(n_components=2, perplexity=perplexity, random_state=random_state, n_jobs=n_threads, **params)
    affinities = None
    if not set(params) & set(_NEIGHBOR_SETTINGS):
        # openTSNE's own rule: 3 * perplexity neighbours, at most all other points.
        k = min(len(points) - 1, int(3 * perplexity))
        affinities = PerplexityBasedNN(
            perplexity=perplexity,
            knn_index=PrecomputedNeighbors(*exact_neighbors(points, k, n_jobs)),
            n_jobs=n_threads,
            random_state=random_state,
        )
    embedding = np.asarray(tsne.fit(points, affinities=affinities), dtype=np.float64)
    return embedding[: len(training)], embedding[len(training) :]
