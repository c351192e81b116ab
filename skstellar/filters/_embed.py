"""One t-SNE map of training and new spectra together (openTSNE)."""

import numpy as np

# Settings the filter sets itself; ``tsne_params`` may not override them.
RESERVED = ("n_components", "perplexity", "random_state", "n_jobs")


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
    from openTSNE import TSNE  # noqa: PLC0415 - a 0.3 s import that only fitting and predicting need

    points = np.vstack([training, new]).astype(np.float64, copy=False)
    if points.shape[1] < 2:
        # openTSNE's PCA initialisation needs two input dimensions; a zero column keeps every distance.
        points = np.hstack([points, np.zeros((len(points), 2 - points.shape[1]))])
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        random_state=random_state,
        n_jobs=1 if n_jobs is None else n_jobs,
        **(tsne_params or {}),
    )
    embedding = np.asarray(tsne.fit(points), dtype=np.float64)
    return embedding[: len(training)], embedding[len(training) :]
