"""What the instrument and the reduction do to a spectrum: Doppler shift, noise, artefacts."""

import numpy as np

from ._profiles import MARGIN_PIX
from ._setups import STEP

__all__ = ["shift", "add_noise", "add_cosmics", "add_zero_runs", "add_emission", "distort_continuum"]

C_KMS = 299792.458

# Lines that turn into emission in the "emission" edge stars (chromospheric/Be-like):
# the Ca II triplet, H alpha, and the strongest HR10 lines.
EMISSION_LINES = {
    "HR10": (5528.405, 5371.490, 5397.128),
    "HR15N": (6562.797,),
    "HR21": (8498.023, 8542.091, 8662.141),
}


def _transpose(a, block=512):
    """C-ordered copy of ``a.T``, in pixel blocks that stay in cache (1.5x faster)."""
    out = np.empty(a.shape[::-1], dtype=a.dtype)
    for k in range(0, a.shape[0], block):
        out[:, k : k + block] = a[k : k + block].T
    return out


def shift(rest, synth_wave, n_pixels, rv):
    """Observed-frame flux on the setup grid from rest-frame flux on the synthesis grid.

    ``rest`` has shape (p_synth, n) (pixels first, as `_profiles.render` gives it); the
    result is (n, n_pixels) C-ordered. Non-relativistic Doppler convention,
    lambda_obs = lambda_rest (1 + rv / c), and linear interpolation. Stars with
    rv == 0 are copied exactly (no interpolation).
    """
    p_synth, n = rest.shape
    rv = np.broadcast_to(np.asarray(rv, dtype=np.float64), (n,))
    moving = np.flatnonzero(rv != 0.0)
    if moving.size == 0:
        return _transpose(rest[MARGIN_PIX : MARGIN_PIX + n_pixels])
    star_major = _transpose(rest)  # gathers along a star's own pixels stay contiguous
    out = np.empty((n, n_pixels), dtype=np.float32)
    still = np.flatnonzero(rv == 0.0)
    out[still] = star_major[still, MARGIN_PIX : MARGIN_PIX + n_pixels]
    # Source position of observed pixel j: x = j s + offset, s = 1 / (1 + rv/c);
    # float32 keeps it to 1e-3 pixel over 10^4 pixels.
    scale = 1.0 / (1.0 + rv[moving] / C_KMS)
    offset = (synth_wave[MARGIN_PIX] * scale - synth_wave[0]) / STEP
    x = np.multiply.outer(scale.astype(np.float32), np.arange(n_pixels, dtype=np.float32))
    x += offset.astype(np.float32)[:, None]
    np.clip(x, 0.0, p_synth - 1.001, out=x)
    i0 = x.astype(np.intp)
    x -= i0
    i0 += (moving * p_synth)[:, None]
    flat = star_major.reshape(-1)
    left = flat.take(i0)
    i0 += 1
    right = flat.take(i0)
    right -= left
    right *= x
    right += left
    out[moving] = right
    return out


def add_noise(flux, snr, rng):
    """Gaussian photon-like noise: sigma = sqrt(flux) / snr (snr is per pixel at continuum 1).

    Returns the one-sigma error array; ``flux`` is modified in place.
    """
    error = np.maximum(flux, np.float32(1e-3))
    np.sqrt(error, out=error)
    error *= (1.0 / np.asarray(snr, dtype=np.float32))[:, None]
    noise = rng.standard_normal(flux.shape, dtype=np.float32)
    noise *= error
    flux += noise
    return error


def add_cosmics(flux, rng, rate):
    """Cosmic-ray hits: ``Poisson(rate)`` spikes of 1-2 pixels, 0.5-4 above the continuum."""
    n, p = flux.shape
    counts = rng.poisson(rate, size=n)
    rows = np.repeat(np.arange(n), counts)
    total = rows.size
    pix = rng.integers(0, p - 1, size=total)
    amp = rng.uniform(0.5, 4.0, size=total).astype(np.float32)
    wide = rng.random(total) < 0.4
    flux[rows, pix] += amp
    flux[rows[wide], pix[wide] + 1] += 0.5 * amp[wide]
    return counts


def add_zero_runs(flux, error, rng, probability):
    """Zero-flux runs (dead or unexposed pixels), mostly at the setup edges.

    The error of those pixels is set to infinity (an inverse variance of zero, as in
    Gaia-ESO files). Returns a bool array: which spectra got a run.
    """
    n, p = flux.shape
    hit = rng.random(n) < probability
    rows = np.flatnonzero(hit)
    lengths = rng.integers(5, 200, size=rows.size)
    at_edge = rng.random(rows.size) < 0.6
    starts = np.where(
        at_edge,
        np.where(rng.random(rows.size) < 0.5, 0, p - lengths),
        rng.integers(0, p - 200, size=rows.size),
    )
    for r, s, length in zip(rows, starts, lengths):  # a few per cent of the stars only
        flux[r, s : s + length] = 0.0
        error[r, s : s + length] = np.inf
    return hit


def add_emission(rest, synth_wave, setup, sigma, stars, rng, strength=(0.3, 1.5)):
    """Emission cores on the setup's strongest lines for ``stars`` (columns of the
    rest-frame (p_synth, n) flux), before the Doppler shift; peak heights uniform in ``strength``."""
    for w0 in EMISSION_LINES[setup]:
        amp = rng.uniform(*strength, size=stars.size).astype(np.float32)
        lo, hi = np.searchsorted(synth_wave, [w0 - 6 * sigma, w0 + 6 * sigma])
        prof = np.exp(-0.5 * ((synth_wave[lo:hi] - w0) / (1.5 * sigma)) ** 2).astype(np.float32)
        rest[lo:hi, stars] += prof[:, None] * amp[None, :]


def distort_continuum(flux, rng):
    """A badly normalised continuum: a random quadratic with 10-40 % excursions."""
    n, p = flux.shape
    x = np.linspace(-1.0, 1.0, p, dtype=np.float32)
    a = rng.uniform(0.1, 0.4, size=n) * rng.choice([-1.0, 1.0], size=n)
    b = rng.uniform(-0.3, 0.3, size=n)
    shape = 1.0 + a[:, None] * x[None, :] + b[:, None] * (x[None, :] ** 2 - 1.0 / 3.0)
    flux *= shape.astype(np.float32)
