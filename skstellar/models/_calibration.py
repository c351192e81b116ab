"""Calibration of the ensemble standard deviation into an error bar (``std_calibration``).

The spread of bagged members measures how much the fitted model would change with other
training stars; the error of one star's prediction is dominated by its own noise and by what
no member can represent. On the mock survey the first is 7-8 times smaller than the second,
on every label alike, while it still ranks stars by their error. One factor per label, fitted
on the validation stars (shared by all members, never in any member's resample), turns the
spread into an error bar. Pure numpy.
"""

import numpy as np

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

