"""Science with the labels: thin/thick disks, Li-rich giants, quality cuts, abundance scales.

Every helper works on tables -- an astropy Table, a pandas DataFrame, a numpy structured
array or a dict of columns -- or on plain arrays, names a missing column, and never
assigns or selects a star whose label is NaN. No TensorFlow is imported here.
"""

from ._abundances import from_xfe, from_xh, to_xfe, to_xh
from ._disks import DiskSeparation, DiskSeparator, separate_disks
from ._lithium import LI_RICH_COLUMNS, select_li_rich
from ._quality import QUALITY_COLUMNS, QualityCuts, quality_cuts

__all__ = [
    "LI_RICH_COLUMNS",
    "QUALITY_COLUMNS",
    "DiskSeparation",
    "DiskSeparator",
    "QualityCuts",
    "from_xfe",
    "from_xh",
    "quality_cuts",
    "select_li_rich",
    "separate_disks",
    "to_xfe",
    "to_xh",
]
