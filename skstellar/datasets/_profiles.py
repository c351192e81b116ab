"""Line profiles on a setup's pixel grid, summed for many stars at once.

Each line contributes an optical depth ``tau`` to the pixels near it:

* a Gaussian core holding the line's *saturated* equivalent width (the Milne-Eddington
  curve of growth of a Doppler profile, so strong lines stop growing in depth), whose
  width adds thermal + microturbulent + instrumental broadening (and the widening of a
  saturated core) in quadrature,
* for lines strong enough to show them, Lorentzian damping wings of the *unsaturated*
  opacity (radiative + van der Waals + Stark), which grow with pressure, i.e. log g.

The flux is then ``1 - Dmax (1 - exp(-tau))``, so blends saturate together.

Speed: a line's profile shape hardly changes from star to star (the instrumental width
dominates), so each line has fixed basis profiles on fixed pixel windows -- the Gaussian
at a reference width and its first two derivatives with respect to the width, and a
Lorentzian wing -- held in one sparse matrix. The spectra of a chunk of stars are one
sparse-dense product ``basis.T @ coefficients`` (a second-order Taylor expansion in the
width, exact in the line strengths and damping widths).
"""

import functools
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ._atmosphere import Atmosphere, abundances, line_opacity
from ._linelist import load_linelist
from ._setups import SETUPS, STEP

__all__ = ["SetupModel", "setup_model", "line_reach", "cog"]

MARGIN_PIX = 240  # synthesis margin each side: 12 A covers |RV| <= 400 km/s
MAX_ABS_RV = 400.0
DEPTH_THRESHOLD = 5e-3  # lines that never reach this depth in the label box are dropped
WING_THRESHOLD = 1e-3  # lines whose wing tau at 3 sigma never reaches this get no wing basis
WING_TAU_EDGE = 1e-4  # a wing window ends where its tau falls below this
MAX_WING_HALF = 40.0  # A

# Stars spanning the label box (and beyond, for the edge population) used to decide
# which lines matter and how wide their windows must be.
_BOX_TEFF = np.array([3800.0, 4300.0, 5000.0, 5800.0, 6600.0, 7300.0, 8000.0])
_BOX_LOGG = np.array([0.5, 1.5, 2.5, 3.5, 4.5, 5.5])
_BOX_VMIC = np.array([0.5, 2.8])


def _box():
    t, g, v = np.meshgrid(_BOX_TEFF, _BOX_LOGG, _BOX_VMIC, indexing="ij")
    t, g, v = t.ravel(), g.ravel(), v.ravel()
    n = t.size
    return dict(
        teff=t, logg=g, feh=np.full(n, 1.0), mgfe=np.full(n, 0.6), alfe=np.full(n, 1.5),
        ali=np.full(n, 4.0), vmic=v,
    )


# Curve of growth of a Milne-Eddington line with a Doppler profile:
# F(X) = W / (Doppler width sqrt(pi)) = (1/sqrt(pi)) int X e^{-u^2} / (1 + X e^{-u^2}) du,
# tabulated on a uniform grid of log10 X together with ln(1 + X), for a fast lerp.
_COG_LO, _COG_HI, _COG_STEP = -12.0, 14.0, 0.02


@functools.lru_cache(maxsize=1)
def _cog_table():
    logx = np.arange(_COG_LO, _COG_HI + _COG_STEP / 2, _COG_STEP)
    u = np.linspace(-12.0, 12.0, 4801)
    x = 10.0 ** logx[:, None]
    e = np.exp(-(u**2))[None, :]
    f = np.trapezoid(x * e / (1.0 + x * e), u, axis=1) / np.sqrt(np.pi)
    tables = np.stack([np.log10(f), np.log1p(10.0**logx)])
    return tables.astype(np.float32), np.diff(tables, axis=1, append=tables[:, -1:]).astype(np.float32)


def cog(log_x):
    """log10 F(X) (F(X) ~ X for weak lines, ~ sqrt(ln X) when saturated) and ln(1 + X)."""
    table, slope = _cog_table()
    t = np.clip(log_x, _COG_LO, _COG_HI, dtype=np.float32)
    t -= np.float32(_COG_LO)
    t *= np.float32(1.0 / _COG_STEP)
    i = t.astype(np.intp)
    t -= i
    return table[0][i] + t * slope[0][i], table[1][i] + t * slope[1][i]


def sigma_instrument(wave, resolution):
    return np.asarray(wave) / resolution / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def _star_arrays(labels):
    keys = ("teff", "logg", "feh", "mgfe", "alfe", "ali", "vmic")
    return [np.asarray(labels[k], dtype=np.float64) for k in keys]


def line_quantities(labels, lines, resolution, wing_idx=None):
    """Per star and line: saturated strength, effective width; wing coefficient for ``wing_idx``."""
    teff, logg, feh, mgfe, alfe, ali, vmic = _star_arrays(labels)
    atm = Atmosphere(teff, logg, feh)
    elements = np.unique(lines.element)
    ab = abundances(list(elements), feh, mgfe, alfe, ali)
    log_x, doppler, gamma = line_opacity(atm, lines, ab, elements, vmic, wing_idx)
    log_f, ln1x = cog(log_x)
    s_hat = np.power(np.float32(10.0), log_f)
    s_hat *= doppler
    s_hat *= np.float32(np.sqrt(np.pi))
    # Gaussian width: instrument + Doppler, the core widening as the line saturates.
    ln1x *= np.float32(1.4)
    ln1x += np.float32(1.0)
    doppler *= doppler
    doppler *= np.float32(0.5)
    ln1x *= doppler
    ln1x += (sigma_instrument(lines.wave, resolution) ** 2).astype(np.float32)[None, :]
    sig_eff = np.sqrt(ln1x, out=ln1x)
    w = np.arange(lines.wave.size) if wing_idx is None else np.asarray(wing_idx)
    # Wings carry the unsaturated opacity: integral of the line = doppler sqrt(pi) X.
    wing = np.sqrt(2.0 * np.pi) * np.sqrt(doppler[:, w]) * 10.0 ** log_x[:, w].astype(np.float64) * gamma
    return atm, s_hat, sig_eff, wing


def line_reach(lines, resolution):
    """Largest peak depth (weak-line estimate) and wing coefficient of each line over the label box."""
    atm, s_hat, sig_eff, wing = line_quantities(_box(), lines, resolution)
    dmax = atm.dmax(lines.wave)
    depth = dmax * s_hat / (sig_eff * np.sqrt(2.0 * np.pi))
    return depth.max(axis=0), sig_eff.min(axis=0), sig_eff.max(axis=0), wing.max(axis=0)


@dataclass(frozen=True)
class SetupModel:
    """Everything needed to synthesise one setup: grid, lines, sparse profile basis."""

    name: str
    wave: np.ndarray  # synthesis grid (setup grid + margins)
    resolution: float
    lines: object
    sigma0: np.ndarray  # (L,) reference Gaussian width
    wing_lines: np.ndarray  # (Lw,) indices of lines with a wing basis
    basis_t: sparse.csr_matrix  # (p, 3 L + Lw), float32

    @property
    def n_lines(self):
        return self.sigma0.size


@functools.cache
def setup_model(name):
    """Build (once per process) the synthesis model of a setup."""
    setup = SETUPS[name]
    wave = setup.start + STEP * np.arange(-MARGIN_PIX, setup.n_pixels + MARGIN_PIX, dtype=np.float64)
    all_lines = load_linelist()
    near = (all_lines.wave > wave[0] - MAX_WING_HALF) & (all_lines.wave < wave[-1] + MAX_WING_HALF)
    lines = all_lines.take(np.flatnonzero(near))
    depth, sig_lo, sig_hi, wing_max = line_reach(lines, setup.resolution)
    keep = depth >= DEPTH_THRESHOLD
    lines = lines.take(np.flatnonzero(keep))
    sig_lo, sig_hi, wing_max = sig_lo[keep], sig_hi[keep], wing_max[keep]
    sigma0 = np.sqrt(sig_lo * sig_hi)
    p = wave.size
    x0 = (lines.wave - wave[0]) / STEP  # fractional pixel of each line centre

    rows, cols, vals = [], [], []

    # Gaussian core: value, first and second derivative with respect to sigma.
    half_g = 5.0 * sig_hi / STEP
    L = lines.wave.size
    g_idx, g_pix, parts = _window(x0, half_g, p)
    dl = wave[g_pix] - lines.wave[g_idx]
    s = sigma0[g_idx]
    g = np.exp(-0.5 * (dl / s) ** 2) / (s * np.sqrt(2.0 * np.pi))
    a = dl**2 / s**3 - 1.0 / s
    g1 = g * a
    g2 = g * (a**2 - 3.0 * dl**2 / s**4 + 1.0 / s**2)
    for k, v in enumerate((g, g1, g2)):
        rows.append(g_idx + k * L)
        cols.append(g_pix)
        vals.append(v)

    # Damping wings, only for lines where they can matter.
    wing_tau3 = wing_max / (np.pi * (9.0 * sigma0**2 + (2 * sigma0) ** 2))
    wing_lines = np.flatnonzero(wing_tau3 >= WING_THRESHOLD)
    if wing_lines.size:
        half_w = np.sqrt(wing_max[wing_lines] / (np.pi * WING_TAU_EDGE))
        half_w = np.minimum(half_w, MAX_WING_HALF) / STEP
        w_idx, w_pix, _ = _window(x0[wing_lines], half_w, p)
        line_of = wing_lines[w_idx]
        dl = wave[w_pix] - lines.wave[line_of]
        b = 1.8 * sigma0[line_of]
        rows.append(3 * L + w_idx)
        cols.append(w_pix)
        vals.append(1.0 / (np.pi * (dl**2 + b**2)))
    basis = sparse.csr_matrix(
        (np.concatenate(vals).astype(np.float32), (np.concatenate(cols), np.concatenate(rows))),
        shape=(p, 3 * L + wing_lines.size),
    )
    basis.sort_indices()
    _ = (lines.vdw, lines.stark)  # computed now, not lazily inside the synthesis threads
    return SetupModel(name, wave, setup.resolution, lines, sigma0, wing_lines, basis)


def _window(centre_pix, half_pix, p):
    """Pixel windows around fractional centres: (line index, pixel) pairs inside [0, p)."""
    half = np.ceil(half_pix).astype(np.int64)
    lo = np.floor(centre_pix).astype(np.int64) - half
    width = 2 * half + 2
    idx = np.repeat(np.arange(centre_pix.size), width)
    offs = np.arange(width.sum()) - np.repeat(np.cumsum(width) - width, width)
    pix = np.repeat(lo, width) + offs
    ok = (pix >= 0) & (pix < p)
    return idx[ok], pix[ok], None


def render(model, labels):
    """Noise-free rest-frame normalised flux on the synthesis grid, float32 of shape (p, n).

    Pixels run along the first axis (the layout of the sparse product); `_observe.shift`
    reads it in that layout, which saves a transposition.
    """
    atm, s_hat, sig_eff, wing = line_quantities(labels, model.lines, model.resolution, model.wing_lines)
    n, L = s_hat.shape
    coef = np.empty((3 * L + model.wing_lines.size, n), dtype=np.float32)
    delta = sig_eff - model.sigma0.astype(np.float32)[None, :]
    coef[:L] = s_hat.T
    s_hat *= delta
    coef[L : 2 * L] = s_hat.T
    s_hat *= delta
    s_hat *= np.float32(0.5)
    coef[2 * L : 3 * L] = s_hat.T
    coef[3 * L :] = wing.T
    tau = model.basis_t @ coef  # (p, n)
    # flux = 1 - Dmax (1 - exp(-tau)), with Dmax = 1 / (1 + (lambda / 5500)^2 T / (B T_sun)),
    # computed in place in the (p, n) layout of the product.
    np.maximum(tau, 0.0, out=tau)
    np.negative(tau, out=tau)
    np.expm1(tau, out=tau)
    inv_b = np.multiply.outer(
        ((model.wave / 5500.0) ** 2).astype(np.float32), atm.inv_dmax_b.astype(np.float32)
    )
    inv_b += np.float32(1.0)
    tau /= inv_b
    tau += np.float32(1.0)
    return tau
