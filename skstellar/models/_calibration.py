"""Calibration of the ensemble standard deviation into an error bar (``std_calibration``).

The spread of bagged members measures how much the fitted model would change with other
training stars; the error of one star's prediction is dominated by its own noise and by what
no member can represent. On the mock survey the first is 7-8 times smaller than the second,
on every label alike, while it still ranks stars by their error. One factor per label, fitted
on the validation stars (shared by all members, never in any member's resample), turns the
spread into an error bar. Pure numpy.
"""

import numpy as np
from scipy.optimize import minimize

# 68.27 % of a normal variable lies within one standard deviation of its mean.
ONE_SIGMA = 0.6826894921370859


def std_scale(error, std, kind="q68"):
    """Per-label factor that turns the member spread ``std`` into an error bar for ``error``.

    Parameters
    ----------
    error : ndarray of shape (n, n_labels)
        Ensemble mean minus truth on the calibration stars; NaN where a label is missing.
    std : ndarray of shape (n, n_labels)
        Spread of the members on the same stars.
    kind : {"q68", "rms", "mad"}, default="q68"
        "q68": the 68.27th percentile of ``|error| / std``, so that 68.27 % of the calibration
        stars lie within one calibrated std (the meaning of a 1-sigma bar, whatever the shape
        of the distribution). "rms": ``sqrt(mean((error / std) ** 2))``, so that the reduced
        chi-square of the calibration stars is 1 (pulled up by the few stars whose spread is
        far too small). "mad": ``median(|error| / std) / 0.6745``, right for normal pulls.

    Returns
    -------
    scale : ndarray of shape (n_labels,)
        NaN for a label whose spread is zero on every calibration star that has it (a single
        member) or which no calibration star has.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        pull = np.abs(error) / std
    scale = np.full(error.shape[1], np.nan)
    for j in range(error.shape[1]):
        # A star missing label j says nothing about it; one of zero spread gives no pull.
        z = pull[np.isfinite(error[:, j]) & (std[:, j] > 0), j]
        if z.size == 0:
            continue
        if kind == "q68":
            scale[j] = np.quantile(z, ONE_SIGMA)
        elif kind == "rms":
            scale[j] = np.sqrt(np.mean(z**2))
        elif kind == "mad":
            scale[j] = np.median(z) / 0.6744897501960817
        else:
            raise ValueError(f"unknown kind {kind!r}; expected 'q68', 'rms' or 'mad'.")
    return scale


def std_floor(error, std):
    """Per-label ``(scale, floor)`` of the error bar ``sqrt((scale * std) ** 2 + floor ** 2)``.

    The error of a star is its noise, which the spread of the members follows, plus what no
    member represents, which it does not: a spread scaled by one factor is too small for the
    best spectra and too large for the worst. The shape (``floor / scale``) is the maximum
    likelihood of normal errors of that variance; both are then scaled so that 68.27 % of the
    calibration stars lie within one error bar, as for :func:`std_scale`.

    Returns
    -------
    scale, floor : ndarray of shape (n_labels,)
        NaN for a label no calibration star has; ``scale`` is NaN also where every spread
        is zero (a single member: the bar is the floor alone).
    """
    scale = np.full(error.shape[1], np.nan)
    floor = np.full(error.shape[1], np.nan)
    for j in range(error.shape[1]):
        has = np.isfinite(error[:, j])
        if not has.any():
            continue
        e, s = np.abs(error[has, j]), std[has, j]
        unit = np.std(e) if np.std(e) > 0 else 1.0
        e, s = e / unit, s / unit
        if (s > 0).any():
            def nll(log_ab):
                var = np.exp(2 * log_ab[0]) * s**2 + np.exp(2 * log_ab[1])
                return np.mean(np.log(var) + e**2 / var)

            start = np.log([np.quantile(e[s > 0] / s[s > 0], ONE_SIGMA), 0.5])
            a, b = np.exp(minimize(nll, start, method="Nelder-Mead").x)
        else:
            a, b = np.nan, 1.0
        c = np.quantile(e / np.sqrt(np.nan_to_num(a) ** 2 * s**2 + b**2), ONE_SIGMA)
        scale[j], floor[j] = a * c, b * c * unit
    return scale, floor
