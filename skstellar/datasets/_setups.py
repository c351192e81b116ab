"""The GIRAFFE setups the mock survey observes: native grids and resolving powers."""

from dataclasses import dataclass

import numpy as np

__all__ = ["SETUPS", "Setup", "check_setups"]

STEP = 0.05  # Angstrom: the native sampling of Gaia-ESO GIRAFFE spectra


@dataclass(frozen=True)
class Setup:
    """One GIRAFFE setup: its native wavelength grid and resolving power."""

    name: str
    start: float
    n_pixels: int
    resolution: float

    @property
    def wavelength(self):
        # Computed from integers so that every call gives bit-identical grids.
        return self.start + STEP * np.arange(self.n_pixels, dtype=np.float64)

    @property
    def end(self):
        return self.start + STEP * (self.n_pixels - 1)


# HR21 is the grid of the real Gaia-ESO file: 10 141 pixels from 8475.0 A in 0.05 A steps.
SETUPS = {
    "HR10": Setup("HR10", 5339.0, 5601, 19800.0),
    "HR15N": Setup("HR15N", 6444.0, 7481, 17000.0),
    "HR21": Setup("HR21", 8475.0, 10141, 16200.0),
}


def check_setups(setups):
    """Validate a tuple of setup names; returns it as a tuple of str."""
    if isinstance(setups, str):
        setups = (setups,)
    try:
        setups = tuple(setups)
    except TypeError:
        raise TypeError(
            f"setups must be a setup name or a sequence of them, got {type(setups).__name__}."
        ) from None
    if not setups:
        raise ValueError(f"setups is empty; choose from {tuple(SETUPS)}.")
    for s in setups:
        if s not in SETUPS:
            raise ValueError(f"Unknown GIRAFFE setup {s!r}; the mock survey knows {tuple(SETUPS)}.")
    if len(set(setups)) != len(setups):
        raise ValueError(f"setups lists a setup twice: {setups}.")
    return setups
