"""Reading spectra into a :class:`~skstellar.spectra.SpectralSet` and writing predictions.

- :func:`read_ges_giraffe`: Gaia-ESO Survey GIRAFFE files, several setups matched by star id;
- :func:`read_fits_spectra`: generic 1-D FITS spectra with a linear wavelength axis;
- :func:`to_specutils` / :func:`from_specutils`: conversion to and from specutils ``Spectrum``;
- :func:`write_predictions` / :func:`read_predictions`: labels, uncertainties, flags and ids
  as FITS, ECSV or CSV;
- :class:`SpectralStore`, :func:`open_store`, :func:`write_store`, :func:`convert_to_store`:
  spectra of a whole survey on disk (HDF5), appended and read chunk by chunk.

Nothing here imports TensorFlow; specutils is imported only by the conversion functions.
"""

from ._convert import convert_to_store
from ._fits import read_fits_spectra
from ._giraffe import read_ges_giraffe
from ._specutils import from_specutils, to_specutils
from ._store import SpectralStore, open_store, write_store
from ._write import read_predictions, write_predictions

__all__ = [
    "read_ges_giraffe",
    "read_fits_spectra",
    "to_specutils",
    "from_specutils",
    "write_predictions",
    "read_predictions",
    "SpectralStore",
    "open_store",
    "write_store",
    "convert_to_store",
]
