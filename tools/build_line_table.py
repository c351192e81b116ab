"""Write skstellar/explain/data/lines.csv, the default line table of skstellar.explain.

Run once, by hand, from the repository root: ``python tools/build_line_table.py``.

The strong lines of the GIRAFFE HR10, HR15N and HR21 windows, picked from the package's own
line list (``skstellar/datasets/data/linemake_giraffe_lines.csv``) by the depth the mock
survey's physics gives them (the weak-line estimate of ``datasets._profiles.line_quantities``,
at each setup's resolution) in a red-clump giant (4800 K, log g 2.5) and a solar-like dwarf
(5800 K, log g 4.4), both at [Fe/H] = 0, [Mg/Fe] = [Al/Fe] = 0.1: every line of Fe, Ca, Si, Ti,
Ni, Mg, Al and H whose depth reaches ``MIN_DEPTH`` in either star, the deepest ``PER_SETUP``
of each species per setup (12 for Fe I), plus the named lines of
``NAMED`` (Mg I, Al I, Li I, H alpha, the Ca II triplet) whatever their depth. Components of
one species closer than ``MERGE`` A are one line, at the wavelength of the deepest.
"""

import numpy as np

from skstellar.datasets._linelist import load_linelist
from skstellar.datasets._profiles import line_quantities

WINDOWS = {"HR10": (5339.0, 5619.0, 19800.0), "HR15N": (6444.0, 6818.0, 17000.0),
           "HR21": (8475.0, 8982.0, 16200.0)}
ELEMENTS = ("Fe", "Ca", "Si", "Ti", "Ni", "Mg", "Al", "H", "Li")
MIN_DEPTH = 0.1
PER_SETUP = {"Fe I": 12}
MERGE = 0.15
ROMAN = {1: "I", 2: "II"}
NAMED = [(5528.41, "Mg I"), (8717.81, "Mg I"), (8736.02, "Mg I"), (8806.75, "Mg I"), (5557.06, "Al I"),
         (8772.87, "Al I"), (8773.90, "Al I"), (6707.8, "Li I"), (6562.8, "H I"), (8498.02, "Ca II"),
         (8542.09, "Ca II"), (8662.14, "Ca II")]
STARS = dict(teff=np.array([4800.0, 5800.0]), logg=np.array([2.5, 4.4]), feh=np.zeros(2),
             mgfe=np.full(2, 0.1), alfe=np.full(2, 0.1), ali=np.full(2, 1.05), vmic=np.array([1.3, 1.0]))


def main(destination="skstellar/explain/data/lines.csv"):
    all_lines = load_linelist()
    rows = []
    for setup, (lo, hi, resolution) in WINDOWS.items():
        inside = np.flatnonzero((all_lines.wave >= lo) & (all_lines.wave <= hi)
                                & np.isin(all_lines.element, ELEMENTS) & np.isin(all_lines.ion, (1, 2)))
        lines = all_lines.take(inside)
        atm, s_hat, sig_eff, _ = line_quantities(STARS, lines, resolution, wing_idx=np.array([], dtype=int))
        depth = (atm.dmax(lines.wave) * s_hat / (sig_eff * np.sqrt(2.0 * np.pi))).max(axis=0)
        species = np.array([f"{e} {ROMAN[i]}" for e, i in zip(lines.element, lines.ion)])
        named = [(w, s) for w, s in NAMED if lo <= w <= hi]
        for w, s in named:
            near = (species == s) & (np.abs(lines.wave - w) < 0.3)
            rows.append((w, s, setup, float(depth[near].max()) if near.any() else np.nan, True))
        picked = {}
        for i in np.argsort(-depth):
            if depth[i] < MIN_DEPTH:
                break
            if lines.element[i] == "Li" or picked.get(species[i], 0) >= PER_SETUP.get(species[i], 5):
                continue
            taken = [r for r in rows if r[1] == species[i] and abs(r[0] - lines.wave[i]) < max(MERGE, 0.3 * r[4])]
            if not taken:
                picked[species[i]] = picked.get(species[i], 0) + 1
                rows.append((float(lines.wave[i]), species[i], setup, float(depth[i]), False))
    rows.sort()
    with open(destination, "w", encoding="utf-8") as fh:
        fh.write("wavelength,species,setup,depth\n")
        for w, s, setup, d, _ in rows:
            fh.write(f"{w:.2f},{s},{setup},{d:.2f}\n")
    return len(rows)


if __name__ == "__main__":
    print(main(), "lines written")
