"""What the CNN ensemble learned: gradient saliency on the wavelength axis, line by line.

:func:`saliency` differentiates the whole prediction function of a fitted
:class:`~skstellar.models.CNNLabelRegressor` (or a pipeline ending in one) with respect to
every input pixel, in the label's unit per unit of normalised flux; :func:`line_attribution`
ranks the known lines by their share of it, :func:`saliency_correlation` shows labels that
read each other's lines, :func:`plot_saliency` draws the maps.

Importing this module does not load TensorFlow; :func:`saliency` does.
"""

from ._lines import (
           LABEL_ELEMENTS,
           default_lines,
           line_attribution,
           saliency_correlation,
)
from ._plot import plot_saliency
from ._saliency import SaliencyMap, saliency

__all__ = ["LABEL_ELEMENTS", "SaliencyMap", "default_lines", "line_attribution", "plot_saliency", "saliency",
           "saliency_correlation"]
