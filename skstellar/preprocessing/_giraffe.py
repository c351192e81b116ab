"""The preprocessing chains of the two papers: Ambrosch et al. (2023) for Gaia-ESO GIRAFFE
HR10 + HR21, Nepal et al. (2023) for HR15N (lithium)."""

import warnings

from sklearn.pipeline import Pipeline

from ._clean import SpectrumCleaner
from ._rebin import Rebinner
from ._rv import RadialVelocityCorrector
from ._stitch import SetupStitcher

__all__ = [
    "GIRAFFE_RANGES",
    "GIRAFFE_STEPS",
    "LITHIUM_RANGE",
    "LITHIUM_STEP",
    "giraffe_preprocessor",
    "lithium_preprocessor",
]

#: Output bin width (Angstrom) per setup.
GIRAFFE_STEPS = {"HR10": 0.06, "HR21": 0.1}
#: First and last output bin centre (Angstrom) per setup.
GIRAFFE_RANGES = {"HR10": (5350.0, 5600.0), "HR21": (8480.0, 8930.0)}
#: Output bin width (Angstrom) of the HR15N chain: the resolution element at Li I 6707.8 A
#: (R = 17 000: FWHM 0.39 A) spans 5.3 bins, as HR10's (4.6 at 0.06 A) and HR21's (5.4 at 0.1 A).
LITHIUM_STEP = 0.075
#: First and last output bin centre (Angstrom) of the HR15N chain: the native 6444-6818 A less
#: 11 A (510 km/s) and 10.5 A (460 km/s), so any star with |rv| < 460 km/s covers it (the mock
#: survey draws |rv| <= 350 km/s); H alpha (6562.8 A) and Li I (6707.8 A) lie well inside.
LITHIUM_RANGE = (6455.0, 6807.5)


def giraffe_preprocessor(*, sigma=5.0, rv="rv", on_bad="flag", flux_range=(0.1, 10.0),
                         max_padded=0.05, errors=False, uncovered=None):
    """The four preprocessing steps with the settings of Ambrosch et al. (2023).

    Clean (5 sigma spikes, zero and NaN pixels) -> shift to the rest frame (metadata
    column ``rv``) -> rebin HR10 to 0.06 A over 5350-5600 A and HR21 to 0.1 A over
    8480-8930 A -> stitch HR10 then HR21 into 4168 + 4501 = 8669 columns, the thesis'
    number (see :class:`SetupStitcher`).

    Parameters
    ----------
    sigma : float, default=5.0
        Spike threshold of the :class:`SpectrumCleaner`.
    rv : str, float or array-like, default="rv"
        Radial velocities for the :class:`RadialVelocityCorrector`.
    on_bad : {"flag", "raise"}, default="flag"
        What every step does with one star's bad data (no usable pixel, flux out of
        range, invalid radial velocity, grid not covered): flag it and go on (the
        default: a survey run never stops for one star; :func:`skstellar.predict_table`
        reports it in its ``flags`` and ``status`` columns), or raise at the first such
        star, naming it (strict mode).
    flux_range : tuple (lo, hi) or None, default=(0.1, 10.0)
        Accepted median flux of a spectrum (:class:`SpectrumCleaner`): the chain expects
        continuum-normalised spectra, whose median is close to 1 even for the coolest,
        most line-rich stars.
    max_padded : float, default=0.05
        Fraction of a setup's bins a star may have padded with continuum
        (:class:`Rebinner`) and still be training-like.
    errors : bool, default=False
        Whether the :class:`SpectrumCleaner` and the :class:`Rebinner` carry flux
        errors along. The stitched output never carries them, so the default skips that
        work (a third of the cleaner's, 40 % of the rebinner's); set True to use the
        rebinned SpectralSet (``pipe[:-1]``) with its errors. The output of the whole
        chain is the same either way.
    uncovered : {"raise", "continuum"} or None, default=None
        Deprecated spelling of ``on_bad`` ("continuum" is "flag").

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``"clean"``, ``"rv"``, ``"rebin"``, ``"stitch"``; fit it on a SpectralSet
        with setups HR10 and HR21, then append an estimator or call ``transform``.

    Examples
    --------
    >>> import numpy as np
    >>> from skstellar.spectra import SpectralSet
    >>> from skstellar.preprocessing import giraffe_preprocessor
    >>> w10, w21 = np.arange(5339.0, 5619.0, 0.05), np.arange(8475.0, 8982.0, 0.05)
    >>> s = SpectralSet.from_arrays({"HR10": (w10, np.ones((2, w10.size))),
    ...                              "HR21": (w21, np.ones((2, w21.size)))},
    ...                             meta={"rv": [12.0, -40.0]})
    >>> giraffe_preprocessor().fit_transform(s).shape
    (2, 8669)
    """
    return _chain(dict(GIRAFFE_STEPS), dict(GIRAFFE_RANGES), sigma=sigma, rv=rv, on_bad=on_bad,
                  flux_range=flux_range, max_padded=max_padded, errors=errors, uncovered=uncovered,
                  name="giraffe_preprocessor")


def lithium_preprocessor(*, sigma=5.0, rv="rv", on_bad="flag", flux_range=(0.1, 10.0), max_padded=0.05,
                         errors=False, uncovered=None):
    """The preprocessing steps of the lithium chain (Nepal et al. 2023), GIRAFFE HR15N.

    Clean (5 sigma spikes, zero and NaN pixels) -> shift to the rest frame (metadata
    column ``rv``) -> rebin HR15N to 0.075 A over 6455-6807.5 A -> one 4701-column array
    covering H alpha and Li I 6707.8 A (and the Ca I 6717.7 A and Fe I lines beside it).
    The same steps and parameters as :func:`giraffe_preprocessor`; only the setup, step
    and range differ (see ``LITHIUM_STEP`` and ``LITHIUM_RANGE`` for why these).

    The labels of the paper (Teff, log g, [Fe/H], A(Li)) are learnt by the same
    :class:`~skstellar.models.CNNLabelRegressor` with its default recipe: the package has
    no separate "nepal2023" network preset, the Table 2 layers adapting to the shorter
    input.

    Parameters
    ----------
    sigma : float, default=5.0
        Spike threshold of the :class:`SpectrumCleaner`.
    rv : str, float or array-like, default="rv"
        Radial velocities for the :class:`RadialVelocityCorrector`.
    on_bad, flux_range, max_padded : see :func:`giraffe_preprocessor`
        One star's bad data is flagged (default) or raises; accepted median flux; fraction
        of the bins a star may have padded and still be training-like.
    errors : bool, default=False
        Whether the cleaner and the rebinner carry flux errors along (see
        :func:`giraffe_preprocessor`).
    uncovered : {"raise", "continuum"} or None, default=None
        Deprecated spelling of ``on_bad`` ("continuum" is "flag").

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``"clean"``, ``"rv"``, ``"rebin"``, ``"stitch"``; fit it on a SpectralSet
        with the setup HR15N.

    See Also
    --------
    giraffe_preprocessor : The HR10 + HR21 chain of Ambrosch et al. (2023).

    Examples
    --------
    >>> import numpy as np
    >>> from skstellar.spectra import SpectralSet
    >>> from skstellar.preprocessing import lithium_preprocessor
    >>> w = 6444.0 + 0.05 * np.arange(7481)
    >>> s = SpectralSet.from_arrays({"HR15N": (w, np.ones((2, w.size)))},
    ...                             meta={"rv": [12.0, -300.0]})
    >>> X = lithium_preprocessor().fit_transform(s)
    >>> X.shape
    (2, 4701)
    """
    return _chain({"HR15N": LITHIUM_STEP}, {"HR15N": LITHIUM_RANGE}, sigma=sigma, rv=rv, on_bad=on_bad,
                  flux_range=flux_range, max_padded=max_padded, errors=errors, uncovered=uncovered,
                  name="lithium_preprocessor")


def _chain(steps, ranges, *, sigma, rv, on_bad, flux_range, max_padded, errors, uncovered, name):
    if uncovered is not None:
        on_bad = {"raise": "raise", "continuum": "flag"}[uncovered]
        warnings.warn(f"{name}(uncovered={uncovered!r}) is deprecated; use on_bad={on_bad!r}.", FutureWarning,
                      stacklevel=3)
    return Pipeline(
        [
            ("clean", SpectrumCleaner(sigma=sigma, on_bad=on_bad, flux_range=flux_range, errors=errors)),
            ("rv", RadialVelocityCorrector(rv=rv, on_bad=on_bad)),
            ("rebin", Rebinner(step=steps, ranges=ranges, on_bad=on_bad, max_padded=max_padded, errors=errors)),
            ("stitch", SetupStitcher(setups=list(steps), copy=False)),
        ]
    )
