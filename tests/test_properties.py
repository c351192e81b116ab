"""Property-based tests of the preprocessing transformers (hypothesis).

Random finite fluxes on random increasing grids, random velocities within the limits:
shapes and finiteness hold, the rebinner conserves flux, the cleaner is idempotent, and
the radial-velocity correction undoes a Doppler shift.
"""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skstellar.preprocessing import RadialVelocityCorrector, Rebinner, SetupStitcher, SpectrumCleaner
from skstellar.preprocessing._grid import SPEED_OF_LIGHT_KMS, pixel_edges
from skstellar.spectra import SpectralSet

# derandomize: the same examples on every run, so CI never fails on a draw no one can rerun
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def spectra(draw, min_pixels=8, max_pixels=80):
    """A one-setup SpectralSet: 1-4 stars on a random increasing grid, finite positive flux."""
    p = draw(st.integers(min_pixels, max_pixels))
    n = draw(st.integers(1, 4))
    widths = draw(arrays(np.float64, p, elements=st.floats(0.2, 2.0)))
    start = draw(st.floats(4000.0, 9000.0))
    wave = start + np.cumsum(widths)
    flux = draw(arrays(np.float32, (n, p), elements=st.floats(0.0625, 5.0, width=32)))
    rv = draw(arrays(np.float64, n, elements=st.floats(-1000.0, 1000.0)))
    return SpectralSet.from_arrays({"S": (wave, flux)}, meta={"rv": rv})


def integral(edges, flux, a, b):
    """Integral over [a, b] of the piecewise-constant flux on pixels ``edges`` (float64)."""
    overlap = np.clip(np.minimum(edges[1:], b) - np.maximum(edges[:-1], a), 0.0, None)
    return flux.astype(np.float64) @ overlap


@SETTINGS
@given(s=spectra(), frac=st.floats(0.3, 3.0), data=st.data())
def test_rebinner_conserves_flux_over_its_bins(s, frac, data):
    wave = s.wavelength("S")
    edges = pixel_edges(wave)
    step = frac * float(np.median(np.diff(wave)))
    room = edges[-1] - edges[0] - step
    if room <= step:
        return
    lo = edges[0] + step / 2 + data.draw(st.floats(0.0, room / 2))
    top = edges[-1] - step / 2
    if lo + step / 2 >= top:
        return
    hi = data.draw(st.floats(lo + step / 2, top))
    reb = Rebinner(step=step, ranges=(lo, hi), on_bad="raise")
    try:
        out = reb.fit_transform(s)
    except ValueError as exc:  # the last bin may reach past the spectrum: said so, by star
        assert "covers" in str(exc) and "missing" in str(exc)
        return
    new_edges = pixel_edges(out.wavelength("S"))
    widths = np.diff(new_edges)
    got = out.flux("S").astype(np.float64) @ widths
    want = integral(edges, s.flux("S"), new_edges[0], new_edges[-1])
    np.testing.assert_allclose(got, want, rtol=2e-5)
    assert np.isfinite(out.flux("S")).all() and out.flux("S").dtype == np.float32


@SETTINGS
@given(s=spectra(), spikes=st.lists(st.tuples(st.integers(0, 79), st.floats(10.0, 1e6)), max_size=5),
       holes=st.lists(st.integers(0, 79), max_size=5))
def test_cleaner_output_is_finite_and_cleaning_twice_changes_little(s, spikes, holes):
    flux = s.flux("S").copy()
    p = flux.shape[1]
    for q, value in spikes:
        flux[:, q % p] = value
    for q in holes:
        flux[:, q % p] = np.nan
    s = s.replace("S", flux=flux)
    cleaner = SpectrumCleaner(on_bad="flag").fit(s)
    once = cleaner.transform(s)
    assert once.flux("S").shape == flux.shape
    assert np.isfinite(once.flux("S")).all()
    twice = cleaner.transform(once)
    # a second pass sees the replaced pixels at the median, which narrows the scatter: it
    # may find a pixel that was just under the threshold, never one well below it
    moved = once.flux("S") != twice.flux("S")
    assert moved.sum(axis=1).max(initial=0) <= max(2, p // 10)
    np.testing.assert_array_equal(twice.meta["n_cleaned_S"], moved.sum(axis=1))


@SETTINGS
@given(s=spectra())
def test_rv_correction_undoes_a_doppler_shift(s):
    rest = s.wavelength("S")
    v = np.asarray(s.meta["rv"], dtype=np.float64)
    observed = rest[np.newaxis, :] * (1.0 + v[:, np.newaxis] / SPEED_OF_LIGHT_KMS)
    shifted = SpectralSet.from_arrays({"S": (observed, s.flux("S"))}, meta=s.meta)
    out = RadialVelocityCorrector().fit_transform(shifted)
    np.testing.assert_allclose(out.wavelength("S"), np.broadcast_to(rest, observed.shape), rtol=1e-13)
    assert out.flux("S") is shifted.flux("S")  # only the grid moves


@SETTINGS
@given(s=spectra(min_pixels=20))
def test_chain_keeps_shapes_and_finiteness(s):
    wave = s.wavelength("S")
    step = float(np.median(np.diff(wave)))
    lo, hi = wave[0] + 0.3 * (wave[-1] - wave[0]), wave[0] + 0.6 * (wave[-1] - wave[0])
    steps = [SpectrumCleaner(), RadialVelocityCorrector(), Rebinner(step=step, ranges=(lo, hi)), SetupStitcher()]
    X = s
    for step_ in steps:
        X = step_.fit(X).transform(X)
    n_bins = steps[2].grids_["S"].size
    assert X.shape == (len(s), n_bins) and X.dtype == np.float32
    assert np.isfinite(X).all()
