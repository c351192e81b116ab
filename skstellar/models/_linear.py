"""The ridge map that seeds the linear skip path of the network (``linear_skip="ridge"``).

Mock and real spectra carry much of a label (Teff above all) in many weak lines, each nearly
linear in the label: ridge regression on every pixel finds it easily, a narrow convolutional
trunk less so. With ``linear_skip="ridge"`` the network's output is this ridge map (frozen)
plus the CNN, which then learns the residual. Pure numpy: it runs before Keras is loaded.
"""

import numpy as np

# Ridge penalties tried, relative to the mean eigenvalue of the centred Gram matrix.
RELATIVE_ALPHAS = np.logspace(-7, 1, 33)


def _solve_group(X, y, X_val, y_val):
    """Ridge of ``y`` (n, k) on ``X`` (n, p), one penalty per column chosen on the validation set.

    Solved through the eigendecomposition of the smaller of the two Gram matrices, so that all
    penalties cost one decomposition.
    """
    mean = X.mean(axis=0)
    Xc = X - mean
    Vc = X_val - mean
    n, p = Xc.shape
    if n <= p:
        lam, Q = np.linalg.eigh(Xc @ Xc.T)
        Qty = Q.T @ y                      # (n, k)
        val_basis = (Vc @ Xc.T) @ Q        # (n_val, n)
    else:
        lam, Q = np.linalg.eigh(Xc.T @ Xc)
        Qty = Q.T @ (Xc.T @ y)             # (p, k)
        val_basis = Vc @ Q                 # (n_val, p)
    lam = np.clip(lam, 0, None)
    alphas = RELATIVE_ALPHAS * max(lam.mean(), np.finfo(float).tiny)
    present = ~np.isnan(y_val)
    target = np.where(present, y_val, 0.0)
    best = np.full(y.shape[1], np.inf)
    best_alpha = np.zeros(y.shape[1])
    for alpha in alphas:
        pred = val_basis @ (Qty / (lam + alpha)[:, None])
        mse = (np.where(present, pred - target, 0.0) ** 2).sum(axis=0) / np.maximum(present.sum(axis=0), 1)
        better = mse < best
        best[better], best_alpha[better] = mse[better], alpha
    coef = np.empty((p, y.shape[1]))
    for j, alpha in enumerate(best_alpha):
        dual = Q @ (Qty[:, j] / (lam + alpha))
        coef[:, j] = Xc.T @ dual if n <= p else dual
    return coef, -mean @ coef + y.mean(axis=0), best_alpha


def fit_ridge_skip(X, y, X_val, y_val):
    """Ridge map from (scaled) pixels to standardised labels; NaN labels are left out per label.

    Parameters
    ----------
    X, X_val : ndarray of shape (n, p) and (n_val, p), float32
    y, y_val : ndarray of shape (n, k) and (n_val, k); NaN marks a missing label.

    Returns
    -------
    kernel : ndarray of shape (p, k), float32
    bias : ndarray of shape (k,), float32
    alpha : ndarray of shape (k,)
        The penalty chosen for each label.
    """
    X = np.asarray(X, dtype=np.float64)
    X_val = np.asarray(X_val, dtype=np.float64)
    kernel = np.zeros((X.shape[1], y.shape[1]))
    bias = np.zeros(y.shape[1])
    alpha = np.zeros(y.shape[1])
    # Labels missing for the same stars share one decomposition (all of them when none is missing).
    masks = ~np.isnan(y)
    groups = {}
    for j in range(y.shape[1]):
        groups.setdefault(masks[:, j].tobytes(), []).append(j)
    for columns in groups.values():
        rows = masks[:, columns[0]]
        if rows.sum() < 2:
            continue  # too few stars to fit: the skip path stays zero for these labels
        X_rows = X if rows.all() else X[rows]  # no copy of the spectra when no label is missing
        coef, intercept, chosen = _solve_group(X_rows, y[rows][:, columns], X_val, y_val[:, columns])
        kernel[:, columns], bias[columns], alpha[columns] = coef, intercept, chosen
    return kernel.astype(np.float32), bias.astype(np.float32), alpha
