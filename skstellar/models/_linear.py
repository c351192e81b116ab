"""The ridge map that seeds the linear skip path of the network (``linear_skip="ridge"``).

Mock and real spectra carry much of a label (Teff above all) in many weak lines, each nearly
linear in the label: ridge regression on every pixel finds it easily, a narrow convolutional
trunk less so. With ``linear_skip="ridge"`` the network's output is this ridge map (frozen)
plus the CNN, which then learns the residual. In an ensemble each member's map is fitted on
its own bootstrap resample of the training stars (bagging), so that the members differ as
much as their training data could and their spread estimates the error. Pure numpy: it runs
before Keras is loaded.
"""

import numpy as np

# Ridge penalties tried, relative to the mean eigenvalue of the centred Gram matrix.
RELATIVE_ALPHAS = np.logspace(-7, 1, 33)


def _solve_group(X, y, X_val, y_val, weight):
    """Weighted ridge of ``y`` (n, k) on ``X`` (n, p), one penalty per column chosen on the validation set.

    Solved through the eigendecomposition of the smaller of the two Gram matrices, so that all
    penalties cost one decomposition. The spectra stay float32 (one centred copy, no float64
    copy of X or X_val); the Gram matrix is summed in float32 and decomposed in float64.
    """
    w = weight.astype(np.float64)
    mean = (w.astype(np.float32) @ X).astype(np.float64) / w.sum()
    y_mean = w @ y / w.sum()
    root = np.sqrt(w).astype(np.float32)[:, None]
    Xc = X - mean.astype(np.float32)
    Xc *= root  # rows weighted by sqrt(count): the Gram matrix of the resample with its repeats
    yc = (y - y_mean) * np.sqrt(w)[:, None]
    Vc = X_val - mean.astype(np.float32)
    n, p = Xc.shape
    if n <= p:
        lam, Q = np.linalg.eigh((Xc @ Xc.T).astype(np.float64))
        Qty = Q.T @ yc                                           # (n, k)
        val_basis = (Vc @ Xc.T).astype(np.float64) @ Q           # (n_val, n)
    else:
        lam, Q = np.linalg.eigh((Xc.T @ Xc).astype(np.float64))
        Qty = Q.T @ (Xc.T @ yc.astype(np.float32)).astype(np.float64)  # (p, k)
        val_basis = (Vc @ Q.astype(np.float32)).astype(np.float64)      # (n_val, p)
    del Vc
    lam = np.clip(lam, 0, None)
    alphas = RELATIVE_ALPHAS * max(lam.mean(), np.finfo(float).tiny)
    present = ~np.isnan(y_val)
    target = np.where(present, y_val - y_mean, 0.0)
    best = np.full(y.shape[1], np.inf)
    best_alpha = np.zeros(y.shape[1])
    for alpha in alphas:
        pred = val_basis @ (Qty / (lam + alpha)[:, None])
        mse = (np.where(present, pred - target, 0.0) ** 2).sum(axis=0) / np.maximum(present.sum(axis=0), 1)
        better = mse < best
        best[better], best_alpha[better] = mse[better], alpha
    solution = Q @ (Qty / (lam[:, None] + best_alpha[None, :]))  # (n, k) dual or (p, k) primal
    coef = (Xc.T @ solution.astype(np.float32)).astype(np.float64) if n <= p else solution
    return coef, y_mean - mean @ coef, best_alpha


def bootstrap_counts(n, seed):
    """How often each of ``n`` stars is drawn in a bootstrap resample seeded by ``seed``."""
    return np.bincount(np.random.default_rng(seed).integers(0, n, n), minlength=n)


def fit_ridge_skip(X, y, X_val, y_val, *, sample_weight=None):
    """Ridge map from (scaled) pixels to standardised labels; NaN labels are left out per label.

    Parameters
    ----------
    X, X_val : ndarray of shape (n, p) and (n_val, p), float32
    y, y_val : ndarray of shape (n, k) and (n_val, k); NaN marks a missing label.
    sample_weight : ndarray of shape (n,), default=None
        Non-negative weight of each star, e.g. its count in a bootstrap resample
        (:func:`bootstrap_counts`): the fit is that of the resample with its repeats. The
        penalty is still chosen on ``X_val``.

    Returns
    -------
    kernel : ndarray of shape (p, k), float32
    bias : ndarray of shape (k,), float32
    alpha : ndarray of shape (k,)
        The penalty chosen for each label.
    """
    X = np.asarray(X, dtype=np.float32)
    X_val = np.asarray(X_val, dtype=np.float32)
    counts = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    kernel = np.zeros((X.shape[1], y.shape[1]))
    bias = np.zeros(y.shape[1])
    alpha = np.zeros(y.shape[1])
    # Labels missing for the same stars share one decomposition (all of them when none is missing).
    masks = ~np.isnan(y) & (counts > 0)[:, None]
    groups = {}
    for j in range(y.shape[1]):
        groups.setdefault(masks[:, j].tobytes(), []).append(j)
    for columns in groups.values():
        rows = masks[:, columns[0]]
        if rows.sum() < 2:
            continue  # too few stars to fit: the skip path stays zero for these labels
        X_rows = X if rows.all() else X[rows]  # Xc in _solve_group is the only full copy otherwise
        coef, intercept, chosen = _solve_group(X_rows, y[rows][:, columns], X_val, y_val[:, columns],
                                               counts[rows])
        kernel[:, columns], bias[columns], alpha[columns] = coef, intercept, chosen
    return kernel.astype(np.float32), bias.astype(np.float32), alpha
