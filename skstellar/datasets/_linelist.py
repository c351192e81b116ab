"""The atomic line list shipped with the package, and its pruning per setup."""

import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np

from ._atmosphere import ATOMS, damping_shape

__all__ = ["LineList", "load_linelist", "build_shipped_linelist"]

LINELIST_FILE = "linemake_giraffe_lines.csv"
RYDBERG_A = 1.0 / 911.267  # 1 / Angstrom, for air wavelengths near 6500 A
_FIELDS = ("wave", "element", "ion", "chi", "loggf")


@dataclass(frozen=True)
class LineList:
    """Atomic lines as parallel arrays (air wavelength in A, excitation in eV)."""

    wave: np.ndarray
    element: np.ndarray
    ion: np.ndarray
    chi: np.ndarray
    loggf: np.ndarray

    def __len__(self):
        return self.wave.size

    def take(self, rows):
        return LineList(*(getattr(self, k)[rows] for k in _FIELDS))

    @functools.cached_property
    def vdw(self):
        return damping_shape(self)

    @functools.cached_property
    def stark(self):
        # Hydrogen lines: n_upper^2 - n_lower^2 relative to H alpha (9 - 4).
        out = np.zeros(self.wave.size)
        h = self.element == "H"
        n_low = np.where(self.chi[h] > 11.0, 3.0, 2.0)
        inv = 1.0 / n_low**2 - 1.0 / (RYDBERG_A * self.wave[h])
        n_up = 1.0 / np.sqrt(np.maximum(inv, 1e-6))
        out[h] = (n_up**2 - n_low**2) / 5.0
        return out


def _read(path_or_file):
    data = np.genfromtxt(
        path_or_file,
        delimiter=",",
        names=True,
        dtype=None,
        encoding="utf-8",
    )
    names = data.dtype.names
    wave_col = "wavelength_air_A" if "wavelength_air_A" in names else "wave"
    chi_col = "excitation_eV" if "excitation_eV" in names else "chi"
    return LineList(
        np.asarray(data[wave_col], dtype=np.float64),
        np.asarray(data["element"]).astype("U2"),
        np.asarray(data["ion"], dtype=np.int64),
        np.asarray(data[chi_col], dtype=np.float64),
        np.asarray(data["log_gf"] if "log_gf" in names else data["loggf"], dtype=np.float64),
    )


@functools.lru_cache(maxsize=1)
def load_linelist():
    """The shipped line list (cached)."""
    with resources.files("skstellar.datasets").joinpath("data", LINELIST_FILE).open("r") as f:
        return _read(f)


def build_shipped_linelist(source, destination, threshold=1e-3):
    """Write the shipped list from the linemake CSV of ``../shared/data/linelists``.

    Keeps stages I and II of the elements with atomic data in `_atmosphere.ATOMS`, and
    the lines that reach a depth of ``threshold`` somewhere in the label box with the
    generator's own physics (`_profiles.line_reach`; the run-time cut is 5e-3). Returns
    the number of lines written. Used once, by hand::

        from skstellar.datasets._linelist import build_shipped_linelist
        build_shipped_linelist(
            "../shared/data/linelists/linemake_atomic_giraffe_windows.csv",
            "skstellar/datasets/data/linemake_giraffe_lines.csv",
        )
    """
    from ._profiles import line_reach  # _profiles imports this module
    from ._setups import SETUPS

    lines = _read(source)
    ok = np.isin(lines.element, list(ATOMS)) & np.isin(lines.ion, (1, 2))
    ok &= ~((lines.element == "H") & (lines.ion != 1))
    # 6561.01 A is deuterium H alpha; the linemake Li 6708 entries mix 7Li and 6Li
    # hyperfine components: keep only the two 7Li fine-structure components.
    ok &= ~((lines.element == "H") & (np.abs(lines.wave - 6561.01) < 0.01))
    ok &= ~((lines.element == "Li") & (np.abs(lines.wave - 6707.9) < 0.3))
    lines = lines.take(np.flatnonzero(ok))
    li7 = LineList(
        np.array([6707.764, 6707.915]),
        np.array(["Li", "Li"]),
        np.array([1, 1]),
        np.array([0.0, 0.0]),
        np.array([-0.002, -0.303]),
    )
    lines = _concat(lines, li7)
    keep = np.zeros(len(lines), dtype=bool)
    for setup in SETUPS.values():
        # Each window of the cut list is judged at the resolution of its setup.
        near = np.flatnonzero(np.abs(lines.wave - 0.5 * (setup.start + setup.end)) < 300.0)
        keep[near] = line_reach(lines.take(near), setup.resolution)[0] >= threshold
    lines = lines.take(np.flatnonzero(keep))
    order = np.argsort(lines.wave, kind="stable")
    lines = lines.take(order)
    with open(destination, "w", encoding="utf-8") as f:
        f.write("wave,element,ion,chi,loggf\n")
        for w, e, i, c, g in zip(lines.wave, lines.element, lines.ion, lines.chi, lines.loggf):
            f.write(f"{w:.3f},{e},{i},{c:.3f},{g:.3f}\n")
    return len(lines)


def _concat(a, b):
    return LineList(*(np.concatenate([getattr(a, k), getattr(b, k)]) for k in _FIELDS))
