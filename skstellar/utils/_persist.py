"""What a saved estimator carries beyond scikit-learn's own state: the skstellar version.

scikit-learn stamps its own version into a pickled estimator and warns when another
version loads it; :class:`VersionStampMixin` does the same for skstellar, whose fitted
state (grids, thresholds, network weights) may change meaning between releases.
"""

import warnings

import numpy as np

__all__ = ["SkstellarVersionWarning", "VersionStampMixin", "contiguous_arrays"]

_KEY = "_skstellar_version"


class SkstellarVersionWarning(UserWarning):
    """An estimator saved by another skstellar version was loaded."""


class VersionStampMixin:
    """Pickling stamps the skstellar version; unpickling under another version warns."""

    def __getstate__(self):
        from .. import __version__

        state = dict(super().__getstate__())
        state[_KEY] = __version__
        return state

    def __setstate__(self, state):
        from .. import __version__

        state = dict(state)
        saved = state.pop(_KEY, "unknown (before 0.1.0)")
        if saved != __version__:
            warnings.warn(
                f"{type(self).__name__} was saved with skstellar {saved} and is loaded with "
                f"{__version__}: its results may differ. Refit it, or load it with skstellar {saved}.",
                SkstellarVersionWarning,
                stacklevel=2,
            )
        super().__setstate__(state)


def contiguous_arrays(*objects):
    """Make every ndarray attribute of ``objects`` C-contiguous, in place.

    A pickled non-contiguous array comes back C-contiguous, and BLAS takes another path
    for it: products differ in the last bits, which t-SNE amplifies until a star near a
    threshold flips. Fitted arrays stored contiguous come back as they were.
    """
    for obj in objects:
        for name, value in vars(obj).items():
            if isinstance(value, np.ndarray) and not (value.flags.c_contiguous or value.flags.f_contiguous):
                setattr(obj, name, np.ascontiguousarray(value))
