"""The two inputs every preprocessing step takes: a SpectralSet, or a plain 2-D array.

A plain array is one setup: its columns are pixels on the grid given by the step's
``wavelength`` parameter, or on the pixel index ``0, 1, ..., p - 1`` when that is None.
It travels through the step as a one-setup SpectralSet named after the fitted setup
(``"spectrum"`` when fitted on an array) and leaves as a plain float32 array again.
"""

import numpy as np

from ..spectra import SetupData, SpectralSet
from ..utils._sklearn import validate_data
from ..utils._status import warn_flagged_in_fit

__all__ = ["ARRAY_SETUP", "FlaggingMixin", "as_output", "as_spectral_set", "check_setups", "rebuild"]

ARRAY_SETUP = "spectrum"


def as_spectral_set(estimator, X, *, reset, ensure_all_finite=True, same_pixels=True):
    """Validate ``X`` and return ``(spectral_set, from_array)``.

    On ``reset`` (in ``fit``) it records ``n_features_in_``, ``setups_`` and
    ``n_pixels_in_``; otherwise it checks ``X`` against them (see :func:`check_setups`).
    """
    name = type(estimator).__name__
    if isinstance(X, SpectralSet):
        if getattr(estimator, "wavelength", None) is not None:
            raise ValueError(
                f"{name}: the wavelength parameter is for plain arrays only; a SpectralSet "
                "carries its own grids. Leave wavelength=None."
            )
        if len(X) == 0:
            raise ValueError(f"{name}: the SpectralSet holds no stars (0 spectra); need at least 1.")
        if reset:
            estimator.n_features_in_ = X.shape[1]
            if hasattr(estimator, "feature_names_in_"):
                del estimator.feature_names_in_
            estimator.setups_ = X.setups
            estimator.n_pixels_in_ = {s: X.n_pixels(s) for s in X.setups}
        else:
            check_setups(estimator, X, same_pixels=same_pixels)
        return X, False

    if not reset and len(estimator.setups_) != 1:
        raise ValueError(
            f"{name} was fitted on a SpectralSet with setups {estimator.setups_}; a plain array "
            "holds one setup only. Pass a SpectralSet."
        )
    X = validate_data(
        estimator, X, reset=reset, dtype=(np.float32, np.float64), ensure_all_finite=ensure_all_finite
    )
    setup = ARRAY_SETUP if reset else estimator.setups_[0]
    if reset:
        estimator.setups_ = (setup,)
        estimator.n_pixels_in_ = {setup: X.shape[1]}
    if estimator.wavelength is None:
        wave = np.arange(X.shape[1], dtype=np.float64)
    else:
        wave = np.asarray(estimator.wavelength, dtype=np.float64)
        if wave.shape != (X.shape[1],):
            raise ValueError(
                f"{name}: wavelength has shape {wave.shape} but X has {X.shape[1]} pixels per "
                f"spectrum; expected shape ({X.shape[1]},)."
            )
    return SpectralSet.from_arrays({setup: (wave, X)}), True


def check_setups(estimator, X, *, same_pixels=True, setups=None):
    """Raise if ``X`` lacks a fitted setup, has others, or a setup's pixel count changed.

    ``setups`` (default: all fitted setups, and no others allowed) restricts the check
    to those setups and lets ``X`` hold more.
    """
    name = type(estimator).__name__
    wanted = estimator.setups_ if setups is None else tuple(setups)
    missing = [s for s in wanted if s not in X.setups]
    if missing:
        raise ValueError(
            f"{name} was fitted on setups {estimator.setups_}; this SpectralSet lacks "
            f"{', '.join(map(repr, missing))} (it has {X.setups})."
        )
    extra = [s for s in X.setups if s not in wanted]
    if setups is None and extra:
        raise ValueError(
            f"{name} was fitted on setups {estimator.setups_}; this SpectralSet also has "
            f"{', '.join(map(repr, extra))}. Select the fitted setups or refit."
        )
    if same_pixels:
        for s in wanted:
            if X.n_pixels(s) != estimator.n_pixels_in_[s]:
                raise ValueError(
                    f"setup {s!r} has {X.n_pixels(s)} pixels per spectrum but {name} was "
                    f"fitted with {estimator.n_pixels_in_[s]}."
                )


def rebuild(X, setups, meta=None):
    """A new SpectralSet from arrays that a step built valid by construction.

    Skips re-validation: that would cost passes over per-star wavelength grids
    (8 bytes a pixel) for nothing. ``setups`` maps names to ``(wavelength, flux, error)``
    or ``(wavelength, flux, error, scale)``.
    """
    data = {name: SetupData(*arrays) for name, arrays in setups.items()}
    return SpectralSet(data, X.meta if meta is None else meta)


def as_output(spectral_set, from_array):
    """The step's result: the set itself, or its only setup's flux for an array input."""
    if from_array:
        return spectral_set.flux(spectral_set.setups[0])
    return spectral_set


class FlaggingMixin:
    """``fit_transform`` of a step that flags bad stars: it warns when training stars are."""

    def fit_transform(self, X, y=None, **fit_params):
        out = self.fit(X, y, **fit_params).transform(X)
        if isinstance(X, SpectralSet):
            warn_flagged_in_fit(self, X, out)
        return out
