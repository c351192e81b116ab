"""Flag spectra that are unlike the training set (:class:`TSNESimilarityFilter`).

Importing this module does not load TensorFlow.
"""

from ._tsne import SimilarityMap, TSNESimilarityFilter

__all__ = ["SimilarityMap", "TSNESimilarityFilter"]
