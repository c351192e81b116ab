"""The mock Gaia-ESO survey: the package's embedded default dataset.

`make_giraffe_survey` draws stars from survey-like populations and returns their raw
GIRAFFE spectra (a `~skstellar.spectra.SpectralSet`) with the true labels;
`synthesize_spectra` gives the spectra of labels you choose.
"""

from ._survey import make_giraffe_survey, synthesize_spectra

__all__ = ["make_giraffe_survey", "synthesize_spectra"]
