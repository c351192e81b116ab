"""Flag spectra that are unlike the training set (:class:`TSNESimilarityFilter`).

Importing this module does not load TensorFlow.
"""

from ._emulator import LINE_REGIONS, SpectrumEmulator
from ._tsne import SimilarityMap, TSNESimilarityFilter

__all__ = ["LINE_REGIONS", "SimilarityMap", "SpectrumEmulator", "TSNESimilarityFilter"]
