"""skstellar: stellar labels from spectra with convolutional neural networks, the scikit-learn way.

Importing the package is cheap: TensorFlow is loaded only by `skstellar.models` and
`skstellar.explain`, on first use.
"""

from importlib import import_module

from .spectra import SpectralSet
from .utils._status import StarFlag

__version__ = "0.1.0"

_SUBMODULES = ("datasets", "explain", "filters", "io", "models", "predict", "preprocessing", "science", "spectra")
_LAZY = {"predict_table": "skstellar._predict_table"}

__all__ = ["SpectralSet", "StarFlag", "predict_table", "__version__", *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        return import_module(f"skstellar.{name}")
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'skstellar' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
