"""Prediction over many spectra: one table per call, or a whole survey streamed from disk.

- :func:`predict_table`: labels, uncertainties and similarity flags of a batch in one table;
- :func:`predict_survey`: the same over a survey chunk by chunk (an on-disk
  :class:`~skstellar.io.SpectralStore`, SpectralSets or FITS files) into an ECSV table,
  in bounded memory, resumable after an interruption, on this machine or on a Dask cluster;
- :func:`convert_main`: the command line converting FITS files into a store.

Nothing here imports TensorFlow or Dask: the pipeline's models load TensorFlow when they
predict, and Dask is imported only when a ``client`` is given.
"""

from .._predict_table import predict_table
from ._commands import convert_main
from ._stream import SurveyRun, predict_survey

__all__ = ["SurveyRun", "convert_main", "predict_survey", "predict_table"]
