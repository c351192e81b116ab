"""CNN ensembles that predict stellar labels from spectra (:class:`CNNLabelRegressor`).

Importing this module does not load TensorFlow; fitting, predicting or unpickling a model does.
"""

from ._architecture import PRESETS, build_table2
from ._ensemble import CNNLabelRegressor

__all__ = ["PRESETS", "CNNLabelRegressor", "build_table2"]
