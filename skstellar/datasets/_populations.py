"""Label priors of the mock survey: the disk (thin, thick, a globular cluster, Li-rich
giants) and the "edge" stars outside the training label box.

The numbers below were fitted once to real catalogues (which the package does not
read at run time):

* Kiel diagram: a 5-component Gaussian mixture in (Teff/1000, log g) fitted to the
  7031 Gaia-ESO iDR6 HR15N training labels of Nepal et al. (2023) (a 6th, metal-poor
  component, mostly cluster giants, is replaced here by the globular cluster).
* Thin and thick disk: [Fe/H] distributions and linear [Mg/Fe]([Fe/H]) and
  [Al/Fe]([Fe/H]) sequences fitted to the 3904 APOGEE DR16 labels of RAVE stars
  (Guiglion et al. 2020), split at [Mg/Fe] = 0.18 - 0.1 [Fe/H]. The scatter about each
  sequence is narrowed a little so that the two sequences stay separate.
* A(Li): median and spread of the Gaia-ESO A(Li) against Teff for dwarfs and giants.
"""

import numpy as np

__all__ = ["POPULATIONS", "EDGE_KINDS", "TRAINING_BOX", "draw_labels"]

POPULATIONS = ("disk", "edge", "mixed")
EDGE_KINDS = ("hot", "metal_poor", "metal_rich", "high_logg", "extreme_al", "emission", "bad_norm")
# The label box the disk population fills; the edge stars lie outside it.
TRAINING_BOX = {"teff": (4000.0, 6900.0), "logg": (1.0, 4.8), "feh": (-1.7, 0.6)}

DISK_FRACTIONS = {"thin": 0.72, "thick": 0.23, "globular": 0.05}
LI_RICH_FRACTION = 0.02

# Gaussian mixture in (Teff / 1000 K, log g): weights, means, covariances.
_KIEL_W = np.array([0.2036, 0.153, 0.1796, 0.304, 0.1027])
_KIEL_MU = np.array(
    [[4.6038, 2.5101], [4.9869, 3.2285], [6.3371, 4.1819], [5.9121, 4.2519], [5.0216, 4.581]]
)
_KIEL_COV = np.array(
    [
        [[0.0221, 0.0244], [0.0244, 0.064]],
        [[0.0419, 0.0819], [0.0819, 0.268]],
        [[0.0762, -0.0115], [-0.0115, 0.0123]],
        [[0.0604, -0.0065], [-0.0065, 0.0384]],
        [[0.1708, -0.0311], [-0.0311, 0.0166]],
    ]
)

# [Fe/H] ~ N(mean, sd); [Mg/Fe] = a + b [Fe/H] + N(0, sd); [Al/Fe] likewise.
_DISK = {
    "thin": {"feh": (-0.08, 0.23), "mgfe": (0.033, -0.149, 0.035), "alfe": (0.032, -0.035, 0.07)},
    "thick": {"feh": (-0.46, 0.28), "mgfe": (0.248, -0.080, 0.035), "alfe": (0.192, 0.046, 0.09)},
}
# A(Li) median against Teff (dwarfs, giants), spread 0.45 dex.
_LI_TEFF = np.array([4250.0, 4750.0, 5250.0, 5750.0, 6250.0, 6750.0])
_LI_DWARF = np.array([0.24, 0.63, 1.27, 2.12, 2.60, 2.89])
_LI_GIANT = np.array([0.25, 0.48, 1.13, 1.3, 1.4, 1.5])


def _kiel(n, rng):
    """(Teff, logg) inside the training box, by rejection from the mixture."""
    chol = np.linalg.cholesky(_KIEL_COV)
    out = np.empty((0, 2))
    while out.shape[0] < n:
        m = max(2 * (n - out.shape[0]), 64)
        comp = rng.choice(_KIEL_W.size, size=m, p=_KIEL_W / _KIEL_W.sum())
        z = rng.standard_normal((m, 2))
        x = _KIEL_MU[comp] + np.einsum("nij,nj->ni", chol[comp], z)
        x[:, 0] *= 1000.0
        ok = _inside(x[:, 0], "teff") & _inside(x[:, 1], "logg")
        out = np.concatenate([out, x[ok]])
    return out[:n, 0], out[:n, 1]


def _inside(x, key):
    lo, hi = TRAINING_BOX[key]
    return (x >= lo) & (x <= hi)


def _truncnorm(mean, sd, lo, hi, size, rng):
    x = rng.normal(mean, sd, size)
    bad = (x < lo) | (x > hi)
    while bad.any():
        x[bad] = rng.normal(np.broadcast_to(mean, x.shape)[bad], np.broadcast_to(sd, x.shape)[bad])
        bad = (x < lo) | (x > hi)
    return x


def _vmic(teff, logg, rng):
    # Gaia-ESO-like: about 1 km/s in dwarfs, 1.5 km/s in giants, rising with Teff.
    v = 1.1 + 0.00025 * (teff - 5500.0) - 0.13 * (logg - 4.2) + rng.normal(0.0, 0.1, teff.size)
    return np.clip(v, 0.5, 2.8)


def _lithium(teff, logg, rng):
    giant = logg < 3.5
    med = np.where(giant, np.interp(teff, _LI_TEFF, _LI_GIANT), np.interp(teff, _LI_TEFF, _LI_DWARF))
    return np.clip(med + rng.normal(0.0, 0.45, teff.size), 0.0, 3.3)


def _empty(n):
    return {
        "teff": np.empty(n), "logg": np.empty(n), "feh": np.empty(n), "mgfe": np.empty(n),
        "alfe": np.empty(n), "ali": np.empty(n), "vmic": np.empty(n),
        "population": np.empty(n, dtype="U8"), "edge_kind": np.full(n, "", dtype="U10"),
        "li_rich": np.zeros(n, dtype=bool),
    }


def _disk(n, rng):
    out = _empty(n)
    kind = rng.choice(list(DISK_FRACTIONS), size=n, p=list(DISK_FRACTIONS.values()))
    out["population"][:] = kind
    teff, logg = _kiel(n, rng)
    out["teff"][:], out["logg"][:] = teff, logg
    for name, par in _DISK.items():
        m = kind == name
        k = int(m.sum())
        feh = _truncnorm(*par["feh"], -1.7, 0.55, k, rng)
        a, b, s = par["mgfe"]
        mg = a + b * feh + rng.normal(0.0, s, k)
        a, b, s = par["alfe"]
        al = a + b * feh + rng.normal(0.0, s, k)
        out["feh"][m], out["mgfe"][m], out["alfe"][m] = feh, mg, al
    out["ali"][:] = _lithium(teff, logg, rng)
    gc = np.flatnonzero(kind == "globular")
    if gc.size:
        # A metal-poor cluster's red giant branch with the Mg-Al anticorrelation of
        # its second generation (Al up by ~1 dex where Mg drops by ~0.35 dex).
        g = rng.uniform(1.0, 3.4, gc.size)
        out["logg"][gc] = g
        out["teff"][gc] = 4250.0 + 350.0 * (g - 1.0) + rng.normal(0.0, 50.0, gc.size)
        out["feh"][gc] = rng.normal(-1.25, 0.04, gc.size)
        t = rng.beta(1.0, 1.6, gc.size)
        out["alfe"][gc] = -0.05 + 1.1 * t + rng.normal(0.0, 0.05, gc.size)
        out["mgfe"][gc] = 0.42 - 0.35 * t + rng.normal(0.0, 0.03, gc.size)
        out["ali"][gc] = np.clip(rng.normal(0.9, 0.2, gc.size), 0.0, None)
    # Li-rich giants: replace 2 % of the disk stars (never cluster stars).
    n_li = int(round(LI_RICH_FRACTION * n))
    if n_li:
        pool = np.flatnonzero(kind != "globular")
        rich = rng.choice(pool, size=min(n_li, pool.size), replace=False)
        g = rng.uniform(1.5, 3.4, rich.size)
        out["logg"][rich] = g
        teff = 4300.0 + 330.0 * (g - 1.5) + rng.normal(0.0, 80.0, rich.size)
        out["teff"][rich] = np.clip(teff, 4000.0, 5450.0)
        out["ali"][rich] = rng.uniform(2.0, 3.9, rich.size)
        out["li_rich"][rich] = True
    out["vmic"][:] = _vmic(out["teff"], out["logg"], rng)
    return out


def _edge(n, rng):
    out = _disk(n, rng)  # ordinary stars, then push each out of the box one way
    out["li_rich"][:] = False
    kind = np.asarray(EDGE_KINDS)[rng.integers(0, len(EDGE_KINDS), size=n)]
    out["population"][:] = "edge"
    out["edge_kind"][:] = kind

    def sel(k):
        return np.flatnonzero(kind == k)

    i = sel("hot")
    out["teff"][i] = rng.uniform(7000.0, 8000.0, i.size)
    out["logg"][i] = rng.uniform(3.6, 4.4, i.size)
    i = sel("high_logg")
    out["logg"][i] = rng.uniform(4.9, 5.4, i.size)
    out["teff"][i] = rng.uniform(3900.0, 5600.0, i.size)
    i = sel("metal_poor")
    out["feh"][i] = rng.uniform(-3.0, -1.8, i.size)
    out["mgfe"][i] = rng.normal(0.35, 0.05, i.size)
    out["alfe"][i] = rng.normal(0.0, 0.15, i.size)
    i = sel("metal_rich")
    out["feh"][i] = rng.uniform(0.8, 1.0, i.size)
    out["mgfe"][i] = rng.normal(-0.05, 0.04, i.size)
    i = sel("extreme_al")
    high = rng.random(i.size) < 0.7
    out["alfe"][i] = np.where(high, rng.uniform(0.8, 1.5, i.size), rng.uniform(-1.0, -0.6, i.size))
    # Li and vmic follow the new Teff and log g (no Li-rich stars among the edge ones).
    out["ali"][:] = _lithium(out["teff"], out["logg"], rng)
    out["vmic"][:] = _vmic(out["teff"], out["logg"], rng)
    return out


def draw_labels(n, population, rng, edge_fraction=0.1):
    """Draw the true labels of ``n`` stars; a dict of arrays."""
    if population == "disk":
        return _disk(n, rng)
    if population == "edge":
        return _edge(n, rng)
    n_edge = int(rng.binomial(n, edge_fraction))
    disk, edge = _disk(n - n_edge, rng), _edge(n_edge, rng)
    order = rng.permutation(n)
    return {k: np.concatenate([disk[k], edge[k]])[order] for k in disk}
