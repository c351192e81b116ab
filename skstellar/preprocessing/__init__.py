"""From raw spectra to one feature array: clean, shift to rest frame, rebin, stitch.

Each step is a scikit-learn transformer taking a :class:`~skstellar.spectra.SpectralSet`
(or a plain 2-D array for a single setup, with its ``wavelength`` grid) and never
modifying its input; :func:`giraffe_preprocessor` chains the four with the settings of
Ambrosch et al. (2023), :func:`lithium_preprocessor` with those of the HR15N chain of
Nepal et al. (2023).
"""

from ._clean import SpectrumCleaner
from ._giraffe import (
    GIRAFFE_RANGES,
    GIRAFFE_STEPS,
    LITHIUM_RANGE,
    LITHIUM_STEP,
    giraffe_preprocessor,
    lithium_preprocessor,
)
from ._mask import LineMasker
from ._rebin import Rebinner
from ._rv import RadialVelocityCorrector
from ._stitch import SetupStitcher

__all__ = [
    "GIRAFFE_RANGES",
    "GIRAFFE_STEPS",
    "LITHIUM_RANGE",
    "LITHIUM_STEP",
    "LineMasker",
    "RadialVelocityCorrector",
    "Rebinner",
    "SetupStitcher",
    "SpectrumCleaner",
    "giraffe_preprocessor",
    "lithium_preprocessor",
]
