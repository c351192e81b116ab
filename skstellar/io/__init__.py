"""Reading spectra into a :class:`~skstellar.spectra.SpectralSet` and writing predictions.

- :func:`read_ges_giraffe`: Gaia-ESO Survey GIRAFFE files, several setups matched by star id;
- :func:`read_galah`: GALAH files, the four HERMES cameras matched by ``sobject_id``;
- :func:`write_ges_giraffe`: a SpectralSet written as GES GIRAFFE files (the inverse);
- :func:`read_fits_spectra`: generic 1-D FITS spectra with a linear wavelength axis;
- :func:`to_specutils` / :func:`from_specutils`: conversion to and from specutils ``Spectrum``;
- :func:`write_predictions` / :func:`read_predictions`: labels, uncertainties, flags and ids
  as FITS, ECSV or CSV;
- :func:`save_model` / :func:`load_model`: a fitted pipeline with its manifest (versions,
  setups and grid, labels, training summary); :func:`model_manifest` builds one.
- :class:`ReadError`: what every reader raises for a file it cannot read, naming the file.
- :class:`SpectralStore`, :func:`open_store`, :func:`write_store`, :func:`convert_to_store`:
  spectra of a whole survey on disk (HDF5), appended and read chunk by chunk.

Nothing here imports TensorFlow; specutils is imported only by the conversion functions.
"""

from ._convert import convert_to_store
from ._fits import read_fits_spectra
from ._fitsfile import ReadError
from ._galah import read_galah
from ._giraffe import read_ges_giraffe
from ._giraffe_write import write_ges_giraffe
from ._model import load_model, model_manifest, save_model
from ._specutils import from_specutils, to_specutils
from ._store import SpectralStore, open_store, write_store
from ._write import read_predictions, write_predictions

__all__ = [
    "ReadError",
    "read_ges_giraffe",
    "read_galah",
    "write_ges_giraffe",
    "read_fits_spectra",
    "to_specutils",
    "from_specutils",
    "write_predictions",
    "read_predictions",
    "save_model",
    "load_model",
    "model_manifest",
    "SpectralStore",
    "open_store",
    "write_store",
    "convert_to_store",
]
