"""The example gallery's reading order, and which examples are fast (imported by docs/conf.py).

Adding an example is one file, ``examples/plot_<name>.py``, plus, to place it, one line in
``GALLERY_ORDER`` (unlisted examples come last, by file name). The class lives in a module of
its own because Sphinx pickles its configuration, which a function defined in conf.py defeats.
"""

from pathlib import Path

GALLERY_ORDER = (
    "plot_read_giraffe",
    "plot_preprocessing_chain",
    "plot_ensemble_uncertainty",
    "plot_similarity_filter",
    "plot_grid_search",
    "plot_persistence",
    "plot_command_line",
    "plot_survey_scale",
    "plot_saliency",
    "plot_disks_and_li_rich",
)
# Run by SKSTELLAR_GALLERY=fast (CI): the examples that train no network and take seconds.
FAST_EXAMPLES = ("plot_read_giraffe", "plot_preprocessing_chain", "plot_grid_search", "plot_disks_and_li_rich")


class GalleryOrder:
    """sphinx-gallery ``within_subsection_order``: GALLERY_ORDER first, then the rest by name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        stem = Path(filename).stem
        return (GALLERY_ORDER.index(stem) if stem in GALLERY_ORDER else len(GALLERY_ORDER), stem)

    def __repr__(self):
        return "<GalleryOrder>"
