"""Tests of skstellar.preprocessing: cleaner, RV corrector, rebinner, stitcher, GIRAFFE chain."""

import copy

import astropy.units as u
import numpy as np
import pytest
from astropy.table import MaskedColumn
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline

from skstellar.preprocessing import (
    GIRAFFE_RANGES,
    GIRAFFE_STEPS,
    RadialVelocityCorrector,
    Rebinner,
    SetupStitcher,
    SpectrumCleaner,
    giraffe_preprocessor,
    lithium_preprocessor,
)
from skstellar.preprocessing._grid import pixel_edges
from skstellar.spectra import SpectralSet
from skstellar.utils._status import FlaggedTrainingWarning

C_KMS = 299_792.458
NATIVE = {"HR10": (5339.0, 5619.0), "HR21": (8475.0, 8982.0)}


# -- helpers: synthetic spectra (Gaussian absorption lines on a unit continuum) ---------
def absorption(wave, centres, depth, sigma=0.12):
    """Unit continuum minus Gaussian lines; ``depth`` is a scalar or one per star (n,)."""
    wave = np.asarray(wave, dtype=np.float64)
    depth = np.atleast_1d(np.asarray(depth, dtype=np.float64))[:, None]
    profile = np.zeros(np.broadcast_shapes(wave.shape, (1, wave.shape[-1])))
    for c in centres:
        profile = profile + np.exp(-0.5 * ((wave - c) / sigma) ** 2)
    return 1.0 - depth * profile


def native_grid(setup, step=0.05):
    lo, hi = NATIVE[setup]
    return lo + step * np.arange(int(round((hi - lo) / step)) + 1)


def make_giraffe(n=6, rng=None, rv=None, noise=0.005, depth=0.4, error=False):
    """Stars observed on the native HR10/HR21 grids, lines Doppler shifted by ``rv``."""
    rng = rng if rng is not None else np.random.default_rng(0)
    rv = rng.normal(0, 40, n) if rv is None else np.broadcast_to(np.asarray(rv, float), (n,))
    depth = np.broadcast_to(np.asarray(depth, float), (n,))
    lines = {"HR10": [5380.0, 5455.3, 5528.4], "HR21": [8498.0, 8542.1, 8662.1]}
    setups = {}
    for setup, centres in lines.items():
        w = native_grid(setup)
        rest = w[None, :] / (1 + rv[:, None] / C_KMS)  # rest wavelength seen at each pixel
        flux = absorption(rest, centres, depth) + rng.normal(0, noise, (n, w.size))
        setups[setup] = (w, flux, np.full(flux.shape, noise)) if error else (w, flux)
    meta = {"id": [f"star{i}" for i in range(n)], "rv": rv.copy()}
    return SpectralSet.from_arrays(setups, meta=meta)


def snapshot(s):
    """Deep copy of everything a SpectralSet holds, to check later that it is unchanged."""
    return {
        "setups": {k: copy.deepcopy(s.setup_data(k)) for k in s.setups},
        "meta": s.meta.copy(copy_data=True),
    }


def assert_unchanged(s, snap):
    assert s.setups == tuple(snap["setups"])
    for k, d in snap["setups"].items():
        now = s.setup_data(k)
        np.testing.assert_array_equal(now.wavelength, d.wavelength)
        np.testing.assert_array_equal(now.flux, d.flux)
        if d.error is not None:
            np.testing.assert_array_equal(now.error, d.error)
    assert s.meta.colnames == snap["meta"].colnames
    for c in s.meta.colnames:
        assert list(s.meta[c]) == list(snap["meta"][c])


def robust(x):
    med = np.median(x)
    return med, 1.4826 * np.median(np.abs(x - med))


# -- SpectrumCleaner -------------------------------------------------------------------
def test_cleaner_replaces_spike_zero_nan_and_keeps_deep_lines(rng):
    wave = np.linspace(5350.0, 5400.0, 1001)
    noise = 0.01
    flux = absorption(wave, [5360.0, 5375.0, 5390.0], np.full(3, 5 * noise)) + rng.normal(0, noise, (3, 1001))
    deep = absorption(wave, [5365.0], np.array([0.6]))[0] - 1.0  # a line 60 sigma deep
    flux[2] += deep
    clean_before = flux.copy()
    flux[0, 100] += 0.5  # cosmic ray
    flux[0, 300] = 0.0
    flux[1, 500] = np.nan
    flux[1, 501] = np.inf
    s = SpectralSet.from_arrays({"HR10": (wave, flux)}, meta={"id": ["a", "b", "c"]})
    snap = snapshot(s)
    out = SpectrumCleaner(sigma=5.0).fit_transform(s)
    assert_unchanged(s, snap)
    assert out.meta["n_cleaned_HR10"].tolist() == [2, 2, 0]
    f = out.flux("HR10")
    med0 = np.median(np.delete(flux[0].astype(np.float32), 300))
    med1 = np.median(np.delete(flux[1].astype(np.float32), [500, 501]))
    assert f[0, 100] == pytest.approx(med0, abs=1e-6) and f[0, 300] == pytest.approx(med0, abs=1e-6)
    assert f[1, 500] == pytest.approx(med1, abs=1e-6) and f[1, 501] == pytest.approx(med1, abs=1e-6)
    untouched = np.ones(f.shape, bool)
    untouched[0, [100, 300]] = untouched[1, [500, 501]] = False
    # every other pixel, the 5-sigma-deep and the 60-sigma-deep lines included, is untouched
    np.testing.assert_array_equal(f[untouched], clean_before.astype(np.float32)[untouched])
    assert np.isfinite(f).all() and f.dtype == np.float32


def test_cleaner_threshold_is_sigma_robust_scatter_above_median(rng):
    flux = rng.normal(1.0, 0.02, (1, 4001))
    med, scale = robust(flux[0])
    flux[0, 10] = med + 5.5 * scale
    flux[0, 20] = med + 4.5 * scale
    med = np.median(flux[0].astype(np.float32))  # the planted pixels move it by ~1e-5
    # every pixel for the statistics: the threshold is tested to 0.5 sigma
    out = SpectrumCleaner(sigma=5.0, n_sample=None, wavelength=np.arange(4001.0)).fit_transform(flux)
    assert out[0, 10] == pytest.approx(med, abs=1e-5)
    assert out[0, 20] == pytest.approx(flux[0, 20], abs=1e-6)
    out4 = SpectrumCleaner(sigma=4.0, n_sample=None).fit_transform(flux)
    assert out4[0, 20] == pytest.approx(med, abs=1e-5)


def test_cleaner_mad_is_not_fooled_by_many_spikes(rng):
    # 4 % of the pixels are spikes: a standard deviation would grow to ~0.1 and hide them
    flux = rng.normal(1.0, 0.01, (2, 2000))
    hit = rng.choice(2000, 80, replace=False)
    flux[:, hit] += 0.5
    s = SpectralSet.from_arrays({"HR21": (np.arange(8480.0, 8680.0, 0.1), flux)})
    out = SpectrumCleaner().fit_transform(s)
    assert out.meta["n_cleaned_HR21"].tolist() == [80, 80]
    assert out.flux("HR21").max() < 1.06


def test_cleaner_errors_of_replaced_pixels_become_the_robust_scatter(rng):
    flux = rng.normal(1.0, 0.02, (1, 3001))
    err = np.full_like(flux, 0.02)
    flux[0, 5] = 9.0
    s = SpectralSet.from_arrays({"HR10": (np.arange(3001.0), flux, err)})
    out = SpectrumCleaner(n_sample=None).fit_transform(s)  # every pixel: the exact MAD
    _, scale = robust(flux[0].astype(np.float32))  # the MAD includes the spike itself
    assert out.error("HR10")[0, 5] == pytest.approx(scale, rel=1e-3)
    np.testing.assert_array_equal(np.delete(out.error("HR10")[0], 5), np.float32(0.02))


def test_cleaner_without_errors_output_gives_the_same_flux(rng):
    flux = rng.normal(1.0, 0.01, (3, 500))
    flux[0, 7] = 2.0
    err = np.full_like(flux, 0.01)
    err[1, 60] = np.inf  # still marks its pixel unusable without an error output
    s = SpectralSet.from_arrays({"HR10": (np.arange(500.0), flux, err)})
    kept = SpectrumCleaner().fit_transform(s)
    dropped = SpectrumCleaner(errors=False).fit_transform(s)
    assert dropped.error("HR10") is None and kept.error("HR10") is not None
    np.testing.assert_array_equal(dropped.flux("HR10"), kept.flux("HR10"))
    assert dropped.meta["n_cleaned_HR10"].tolist() == [1, 1, 0]


def test_cleaner_replaces_pixels_without_information(rng):
    # readers give pixels of inverse variance 0 an infinite error and negative ones NaN
    flux = rng.normal(1.0, 0.01, (2, 500))
    err = np.full_like(flux, 0.01)
    err[0, 50], err[1, 60] = np.inf, np.nan
    flux[0, 50] = 3.0  # its flux is meaningless
    s = SpectralSet.from_arrays({"HR10": (np.arange(500.0), flux, err)})
    out = SpectrumCleaner().fit_transform(s)
    assert out.meta["n_cleaned_HR10"].tolist() == [1, 1]
    assert np.isfinite(out.error("HR10")).all()
    assert out.flux("HR10")[0, 50] == pytest.approx(np.median(np.delete(flux[0], 50)), abs=1e-4)


def test_cleaner_estimates_median_and_mad_from_a_pixel_sample(rng):
    p = 10141  # HR21 native: every 10th pixel, 1015 of them, with the default n_sample=1024
    k, n_sampled = 10, 1015
    flux = rng.normal(1.0, 0.01, (3, p)).astype(np.float32)
    flux[:, 1001] += 0.2  # a 20-sigma spike
    flux[:, 2001] += 0.03  # 3 sigma: kept
    flux[:, 3000] = 0.0
    flux[2, ::k] = np.nan  # star 2 (its zero pixel 3000 too): no valid pixel in the sample
    s = SpectralSet.from_arrays({"HR21": (native_grid("HR21")[:p], flux)})
    out = SpectrumCleaner().fit_transform(s)
    exact = SpectrumCleaner(n_sample=None).fit_transform(s)
    assert out.meta["n_cleaned_HR21"].tolist() == [2, 2, 1 + n_sampled]
    assert exact.meta["n_cleaned_HR21"].tolist() == [2, 2, 1 + n_sampled]
    for i in range(3):
        valid = np.isfinite(flux[i]) & (flux[i] != 0)
        every = np.median(flux[i][valid])
        assert exact.flux("HR21")[i, 1001] == pytest.approx(every, abs=1e-7)
        if i < 2:  # the sampled median: 0.04 sigma from the exact one, typically
            sample = flux[i, ::k][valid[::k]]
            assert out.flux("HR21")[i, 1001] == pytest.approx(np.median(sample), abs=1e-7)
            assert abs(out.flux("HR21")[i, 1001] - every) < 0.12 * 0.01
        else:
            assert out.flux("HR21")[i, 1001] == pytest.approx(every, abs=1e-7)
        assert out.flux("HR21")[i, 2001] == flux[i, 2001]
    with pytest.raises(ValueError, match="n_sample"):
        SpectrumCleaner(n_sample=0).fit(s)


@pytest.mark.parametrize("bad", [0.0, np.nan])
def test_cleaner_empty_spectrum_raises_naming_star_and_setup(bad):
    flux = np.ones((3, 50))
    flux[1] = bad
    s = SpectralSet.from_arrays({"HR10": (np.arange(50.0), flux)}, meta={"id": ["x", "y", "z"]})
    with pytest.raises(ValueError, match=r"star 1 \(id 'y'\).*setup 'HR10'.*on_bad='flag'"):
        SpectrumCleaner(on_bad="raise").fit_transform(s)
    with pytest.warns(FlaggedTrainingWarning, match=r"1 of 3 training stars are unusable"):
        out = SpectrumCleaner().fit_transform(s)
    assert out.meta["empty_HR10"].tolist() == [False, True, False]
    assert out.meta["n_cleaned_HR10"].tolist() == [0, 50, 0]
    np.testing.assert_array_equal(out.flux("HR10")[1], 1.0)


# -- RadialVelocityCorrector -----------------------------------------------------------
def line_centre(wave, flux):
    """Line centre from a parabola through the deepest pixel and its neighbours."""
    k = int(np.argmin(flux))
    y0, y1, y2 = flux[k - 1 : k + 2].astype(np.float64)
    offset = 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
    return wave[k] + offset * 0.5 * (wave[k + 1] - wave[k - 1])


@pytest.mark.parametrize("v", [150.0, -80.0, 420.0])
def test_rv_corrector_puts_a_shifted_line_back_at_rest_wavelength(v):
    rest_line = 5455.3
    wave = np.arange(5440.0, 5470.0, 0.05)
    observed_line = rest_line * (1 + v / C_KMS)
    flux = absorption(wave, [observed_line], np.array([0.5, 0.5]))
    s = SpectralSet.from_arrays({"HR10": (wave, flux)}, meta={"rv": [v, 0.0]})
    out = RadialVelocityCorrector().fit_transform(s)
    w = out.wavelength("HR10")
    assert w.shape == (2, wave.size)
    assert abs(line_centre(w[0], out.flux("HR10")[0]) - rest_line) < 0.01
    assert abs(line_centre(w[1], out.flux("HR10")[1]) - rest_line) > abs(observed_line - rest_line) - 0.01
    np.testing.assert_allclose(w[0], wave / (1 + v / C_KMS), rtol=1e-14)


def test_rv_corrector_array_input_is_resampled_onto_its_grid():
    wave = np.arange(5440.0, 5470.0, 0.05)
    v = np.array([150.0, -200.0])
    flux = absorption(wave[None, :] / (1 + v[:, None] / C_KMS), [5455.3], np.array([0.5, 0.5]))
    out = RadialVelocityCorrector(rv=v, wavelength=wave).fit_transform(flux)
    assert out.shape == flux.shape and out.dtype == np.float32
    for row in out:
        assert abs(line_centre(wave, row) - 5455.3) < 0.01


def test_rv_corrector_shares_flux_and_keeps_a_shared_grid_for_equal_rvs():
    s = make_giraffe(3, rv=25.0)
    snap = snapshot(s)
    out = RadialVelocityCorrector().fit_transform(s)
    assert out.wavelength("HR10").ndim == 1
    np.testing.assert_allclose(out.wavelength("HR21"), s.wavelength("HR21") / (1 + 25.0 / C_KMS))
    assert out.flux("HR10") is s.flux("HR10")
    out2 = RadialVelocityCorrector(rv=np.array([1.0, 2.0, 3.0])).fit_transform(s)
    assert out2.wavelength("HR10").shape == (3, s.n_pixels("HR10"))
    assert_unchanged(s, snap)


@pytest.mark.parametrize(
    "meta_rv, kwargs, match",
    [
        ([10.0, np.nan, 3.0], {}, r"star 1 \(id 'b'\) has no finite radial velocity"),
        ([10.0, 3.0, 1200.0], {}, r"star 2 \(id 'c'\) has radial velocity 1200.0 km/s.*max_rv"),
        ([10.0, 3.0, -600.0], {"max_rv": 500.0}, r"star 2 \(id 'c'\).*-600.0"),
        ([1.0, 2.0, 3.0], {"rv": "vrad"}, r"no metadata column 'vrad'.*'rv'"),
        ([1.0, 2.0, 3.0], {"rv": [1.0, 2.0]}, r"rv has shape \(2,\) but X has 3 spectra"),
    ],
)
def test_rv_corrector_bad_velocities_raise(meta_rv, kwargs, match):
    s = SpectralSet.from_arrays(
        {"HR10": (np.arange(5400.0, 5410.0, 0.1), np.ones((3, 100)))},
        meta={"id": ["a", "b", "c"], "rv": meta_rv},
    )
    with pytest.raises(ValueError, match=match):
        RadialVelocityCorrector(on_bad="raise", **kwargs).fit(s)


def test_rv_corrector_masked_rv_and_array_without_rv():
    s = SpectralSet.from_arrays({"HR10": (np.arange(5400.0, 5410.0, 0.1), np.ones((2, 100)))})
    s.meta["rv"] = MaskedColumn([3.0, 4.0], mask=[False, True])
    with pytest.raises(ValueError, match=r"star 1 \(id '1'\) has no finite radial velocity"):
        RadialVelocityCorrector(on_bad="raise").fit(s)
    with pytest.raises(ValueError, match="a plain array has no metadata"):
        RadialVelocityCorrector().fit(np.ones((2, 5)))


# -- Rebinner --------------------------------------------------------------------------
def test_rebinner_conserves_total_flux_on_aligned_edges(rng):
    # input pixels 0.05 A with edges 5000.00 ... 5060.00; output 0.06 A bins on the same span
    wave = 5000.025 + 0.05 * np.arange(1200)
    flux = absorption(wave, [5010.0, 5031.1, 5047.7], np.array([0.5, 0.8])) + rng.normal(0, 0.01, (2, 1200))
    s = SpectralSet.from_arrays({"HR10": (wave, flux)})
    out = Rebinner(step=0.06, ranges=(5000.03, 5059.97)).fit_transform(s)
    assert out.n_pixels("HR10") == 1000
    total_in = flux.sum(axis=1) * 0.05
    total_out = out.flux("HR10").astype(np.float64).sum(axis=1) * 0.06
    np.testing.assert_allclose(total_out, total_in, rtol=1e-6)


def test_rebinner_conserves_line_flux_on_irregular_per_star_grids(rng):
    # irregular grids; lines far from the ends, so the integral over the output span is
    # the span minus the line equivalent widths (pixel by pixel, on the input's own edges)
    n, p = 3, 900
    widths = rng.uniform(0.03, 0.07, (n, p))
    centres = 6000.0 + np.cumsum(widths, axis=1)
    flux = absorption(centres, [6015.0, 6022.0], np.array([0.3, 0.6, 0.9]))
    s = SpectralSet.from_arrays({"X": (centres, flux)})
    out = Rebinner(step=0.1).fit_transform(s)
    grid = out.wavelength("X")
    a, b = grid[0] - 0.05, grid[-1] + 0.05
    edges = pixel_edges(centres)
    assert np.all(edges[:, 0] <= a) and np.all(edges[:, -1] >= b)
    inside = (edges[:, :-1] >= a) & (edges[:, 1:] <= b)
    ew = ((1 - flux) * np.diff(edges, axis=1) * inside).sum(axis=1)
    total = out.flux("X").astype(np.float64).sum(axis=1) * 0.1
    np.testing.assert_allclose(total, (b - a) - ew, rtol=1e-6)
    assert ew.min() > 0.05  # the lines matter at the tested precision


@pytest.mark.parametrize("grid", ["regular", "irregular", "quadratic"])
def test_rebinner_agrees_with_specutils(grid, rng):
    specutils = pytest.importorskip("specutils")
    from astropy.nddata import StdDevUncertainty
    from specutils.manipulation import FluxConservingResampler

    n, p = 2, 500
    if grid == "regular":  # RV-shifted rows of a regular grid: the per-star path
        wave = (5400.0 + 0.05 * np.arange(p))[None, :] / (1 + np.array([[35.0], [-120.0]]) / C_KMS)
    elif grid == "irregular":
        wave = 5400.0 + np.cumsum(rng.uniform(0.02, 0.08, (n, p)), axis=1)
    else:  # strongly non-linear pixel widths
        x = np.linspace(0, 1, p)
        wave = np.vstack([5400.0 + 25 * x**2 + 0.02 * x, 5400.0 + 25 * x**3 + 0.03 * x])
    flux = absorption(wave, [5405.0, 5412.0], np.array([0.5, 0.7])) + rng.normal(0, 0.02, (n, p))
    err = rng.uniform(0.01, 0.03, (n, p))
    s = SpectralSet.from_arrays({"HR10": (wave, flux, err)})
    out = Rebinner(step=0.07).fit_transform(s)
    new = out.wavelength("HR10")
    resampler = FluxConservingResampler()
    for i in range(n):
        ref = resampler(
            specutils.Spectrum(
                flux=flux[i].astype(np.float32) * u.one,
                spectral_axis=wave[i] * u.AA,
                uncertainty=StdDevUncertainty(err[i].astype(np.float32)),
            ),
            new * u.AA,
        )
        ref_flux = ref.flux.value[2:-2]
        ref_err = 1 / np.sqrt(ref.uncertainty.array[2:-2])
        np.testing.assert_allclose(out.flux("HR10")[i, 2:-2], ref_flux, rtol=1e-4)
        np.testing.assert_allclose(out.error("HR10")[i, 2:-2], ref_err, rtol=1e-4)


def test_rebinner_bins_over_a_pixel_without_information_get_infinite_error(rng):
    wave = 5000.025 + 0.05 * np.arange(400)
    flux = rng.normal(1.0, 0.01, (2, 400))
    err = np.full_like(flux, 0.02)
    bad_err = err.copy()
    bad_err[0, 100] = np.inf  # pixel 5005.00-5005.05 A
    reb = Rebinner(step=0.1, ranges=(5001.0, 5018.0))
    good = reb.fit_transform(SpectralSet.from_arrays({"A": (wave, flux, err)}))
    out = reb.transform(SpectralSet.from_arrays({"A": (wave, flux, bad_err)}))
    hit = np.abs(reb.grids_["A"] - 5005.0) < 0.01  # the only bin overlapping it: 5004.95-5005.05 A
    assert hit.sum() == 1 and np.isinf(out.error("A")[0, hit]).all()
    np.testing.assert_allclose(out.error("A")[0, ~hit], good.error("A")[0, ~hit], rtol=1e-6)
    np.testing.assert_array_equal(out.error("A")[1], good.error("A")[1])
    np.testing.assert_array_equal(out.flux("A"), good.flux("A"))


def test_rebinner_grid_is_fixed_at_fit_and_reused_for_other_rvs():
    train = make_giraffe(4, rv=[-20.0, 5.0, 12.0, 30.0])
    later = make_giraffe(3, rv=[-15.0, 8.0, 25.0], rng=np.random.default_rng(5))
    chain = make_pipeline(RadialVelocityCorrector(), Rebinner(step={"HR10": 0.06, "HR21": 0.1}))
    fitted = chain.fit_transform(train)
    again = chain.transform(later)
    for setup in ("HR10", "HR21"):
        np.testing.assert_array_equal(again.wavelength(setup), fitted.wavelength(setup))
        assert again.n_pixels(setup) == fitted.n_pixels(setup)
    # a star beyond the training RVs does not cover the grid the training set allowed ...
    extreme = make_giraffe(3, rv=[-150.0, 80.0, 300.0], rng=np.random.default_rng(5))
    with pytest.raises(ValueError, match=r"star 0 \(id 'star0'\) covers 5341.648-.*missing 5339.370-5341.648 A"):
        chain.set_params(rebinner__on_bad="raise").transform(extreme)
    flagged = chain.set_params(rebinner__on_bad="flag").transform(extreme)
    assert flagged.meta["n_padded_HR10"][0] > 0
    # ... but does cover the GIRAFFE ranges (room for -175 < v < 1015 km/s on native grids)
    giraffe = make_pipeline(RadialVelocityCorrector(), Rebinner(step=GIRAFFE_STEPS, ranges=GIRAFFE_RANGES))
    a, b = giraffe.fit_transform(train), giraffe.transform(extreme)
    assert a.shape == (4, 8669) and b.shape == (3, 8669)
    np.testing.assert_array_equal(b.wavelength("HR10"), a.wavelength("HR10"))
    # the default grid: bins centred on multiples of the step, wholly inside what every
    # training spectrum covers in its rest frame
    lo = 5339.0 / (1 - 20.0 / C_KMS) - 0.025
    hi = 5619.0 / (1 + 30.0 / C_KMS) + 0.025
    grid = fitted.wavelength("HR10")
    assert grid[0] - 0.03 >= lo and grid[0] - 0.03 - 0.06 < lo
    assert grid[-1] + 0.03 <= hi and grid[-1] + 0.03 + 0.06 > hi
    np.testing.assert_allclose(grid / 0.06, np.round(grid / 0.06), atol=1e-6)


def test_rebinner_uncovered_spectrum_raises_or_is_padded():
    s = make_giraffe(3, rv=[0.0, 0.0, 0.0])
    fitted = Rebinner(step=GIRAFFE_STEPS, ranges=GIRAFFE_RANGES, on_bad="raise").fit(s)
    short = s.replace("HR10", wavelength=s.wavelength("HR10") + 14.0)  # now starts at 5353 A
    short.meta["id"] = ["p", "q", "r"]
    with pytest.raises(ValueError, match=r"star 0 \(id 'p'\) covers 5352.975-5633.025 A in setup 'HR10'.*"
                       r"missing 5349.970-5352.975 A \(3 such stars\).*on_bad='flag'"):
        fitted.transform(short)
    padded = Rebinner(step=GIRAFFE_STEPS, ranges=GIRAFFE_RANGES).fit(s)
    out = padded.transform(short)
    # the bins centred at 5350.00 ... 5353.00 start before 5352.975: 51 of them
    assert out.meta["n_padded_HR10"].tolist() == [51, 51, 51]
    assert out.meta["n_padded_HR21"].tolist() == [0, 0, 0]
    np.testing.assert_array_equal(out.flux("HR10")[:, :51], 1.0)
    assert np.all(np.abs(out.flux("HR10")[:, 51:] - 1.0) < 0.6)


def test_rebinner_rejects_non_finite_flux_and_bad_settings():
    s = make_giraffe(2, rv=0.0)
    flux = s.flux("HR21").copy()
    flux[1, 4000] = np.nan
    with pytest.raises(ValueError, match=r"star 1 \(id 'star1'\) has NaN or inf flux.*'HR21'.*SpectrumCleaner"):
        Rebinner(step=0.1, on_bad="raise").fit_transform(s.replace("HR21", flux=flux))
    with pytest.raises(ValueError, match=r"step has no entry for setup 'HR21'"):
        Rebinner(step={"HR10": 0.06}).fit(s)
    with pytest.raises(ValueError, match=r"ranges names setup 'HR15N', which X lacks"):
        Rebinner(step=0.1, ranges={"HR15N": (6450, 6800)}).fit(s)
    with pytest.raises(ValueError, match=r"ranges for setup 'HR10' must have finite lo < hi"):
        Rebinner(step=0.1, ranges={"HR10": (5600, 5350)}).fit(s)
    grids = np.vstack([np.arange(10.0), np.arange(20.0, 30.0)])
    disjoint = SpectralSet.from_arrays({"A": (grids, np.ones((2, 10)))})
    with pytest.raises(ValueError, match=r"setup 'A'.*holds no whole bin"):
        Rebinner(step=1.0).fit(disjoint)


def test_rebinner_accepts_a_different_input_sampling_later():
    s = make_giraffe(2, rv=0.0)
    reb = Rebinner(step=GIRAFFE_STEPS, ranges=GIRAFFE_RANGES).fit(s)
    w = np.arange(5340.0, 5618.0, 0.02)
    resampled = np.interp(w, s.wavelength("HR10"), s.flux("HR10")[0])
    finer = s.replace("HR10", wavelength=w, flux=np.vstack([resampled, resampled]))
    out = reb.transform(finer)
    assert out.n_pixels("HR10") == 4168
    ref = reb.transform(s).flux("HR10")[0]
    assert np.max(np.abs(out.flux("HR10")[0] - ref)) < 0.02


def test_rv_corrector_on_a_shared_grid_sets_a_per_star_scale():
    v = np.array([-120.0, 0.0, 35.0])
    s = make_giraffe(3, rv=v, error=True)
    snap = snapshot(s)
    out = RadialVelocityCorrector().fit_transform(s)
    d = out.setup_data("HR21")
    assert d.grid is s.wavelength("HR21")  # no (n, p) grid is stored
    assert d.flux is s.flux("HR21") and d.error is s.error("HR21")
    np.testing.assert_allclose(d.scale, 1 / (1 + v / C_KMS), rtol=1e-15)
    rest = s.wavelength("HR21")[None, :] / (1 + v[:, None] / C_KMS)
    np.testing.assert_allclose(out.wavelength("HR21"), rest, rtol=1e-14)
    # a second correction composes with the first
    twice = RadialVelocityCorrector(rv=10.0).fit_transform(out)
    np.testing.assert_allclose(twice.setup_data("HR21").scale, d.scale / (1 + 10.0 / C_KMS), rtol=1e-15)
    assert_unchanged(s, snap)


def _scaled_and_materialised(rng, grid="regular", n=5, p=3000):
    """The same stars twice: a shared grid with a per-star scale, and explicit (n, p) grids."""
    if grid == "regular":
        wave = 8475.0 + 0.05 * np.arange(p)
    else:  # log-linear, as some surveys sample: irregular, so located by searchsorted
        wave = 8475.0 * np.exp(np.arange(p) * 0.05 / 8500.0 * (1 + np.arange(p) / (4 * p)))
    v = rng.uniform(-300, 300, n)
    rest = wave[None, :] / (1 + v[:, None] / C_KMS)
    flux = absorption(rest, [8498.0, 8542.1], 0.6) + rng.normal(0, 0.01, (n, p))
    err = rng.uniform(0.005, 0.02, (n, p))
    err[1, p // 2] = np.inf  # a pixel without information
    s = SpectralSet.from_arrays({"HR21": (wave, flux, err)}, meta={"rv": v})
    scaled = RadialVelocityCorrector().fit_transform(s)
    assert scaled.setup_data("HR21").scale is not None
    explicit = scaled.replace("HR21", wavelength=scaled.wavelength("HR21"))
    assert explicit.setup_data("HR21").scale is None and explicit.wavelength("HR21").ndim == 2
    return scaled, explicit


@pytest.mark.parametrize("grid", ["regular", "irregular"])
@pytest.mark.parametrize("step", [0.1, 0.45])  # a few pixels per bin, and many (cumulative sums)
def test_rebinner_scaled_shared_grid_matches_the_per_star_path(grid, step, rng):
    scaled, explicit = _scaled_and_materialised(rng, grid)
    reb = Rebinner(step=step, ranges=(8490.0, 8580.0)).fit(explicit)
    a, b = reb.transform(scaled), reb.transform(explicit)
    np.testing.assert_allclose(a.flux("HR21"), b.flux("HR21"), rtol=2e-6)
    inf = np.isinf(b.error("HR21"))
    assert inf.sum() >= 1 and inf[1].all() == False  # noqa: E712 - one bin, star 1 only
    np.testing.assert_array_equal(np.isinf(a.error("HR21")), inf)
    np.testing.assert_allclose(a.error("HR21")[~inf], b.error("HR21")[~inf], rtol=2e-6)


@pytest.mark.parametrize("rv", [0.0, -250.0])  # aligned, and the grid's blue end uncovered
def test_rebinner_regular_grid_kernel_equals_the_pixel_walk(rv, rng):
    from skstellar.preprocessing._kernels import rebin_rows, rebin_rows_regular

    p, n = 800, 4
    grid = 8475.0 + 0.05 * np.arange(p)
    edges = pixel_edges(grid)
    scale = 1 / (1 + (rv + rng.uniform(-5, 5, n)) / C_KMS)
    flux = rng.normal(1.0, 0.05, (n, p)).astype(np.float32)
    flux[:, -40:] = np.nan  # beyond the bins: read by neither
    new = pixel_edges(8476.0 + 0.1 * np.arange(350))
    walk, fast = np.empty((n, 350), np.float32), np.empty((n, 350), np.float32)
    none = np.empty((0, 0), np.float32)
    flags = np.zeros((2, n), dtype=bool)
    rebin_rows(edges[None], scale, flux, none, new, 1e-6, walk, none, flags[0], 0, n)
    rebin_rows_regular(edges[0], 0.05, scale, flux, new, fast, flags[1], 0, n)
    assert np.isfinite(fast).all() and not flags.any()
    np.testing.assert_allclose(fast, walk, rtol=2e-7)
    flux[2, 300] = np.nan  # inside the bins: both kernels flag the row
    rebin_rows(edges[None], scale, flux, none, new, 1e-6, walk, none, flags[0], 0, n)
    rebin_rows_regular(edges[0], 0.05, scale, flux, new, fast, flags[1], 0, n)
    assert flags[:, 2].all() and flags.sum() == 2


def test_rebinner_wide_bins_are_block_means(rng):
    # bins of 10 whole pixels: the mean flux of the block, errors added in quadrature
    wave = 5400.025 + 0.05 * np.arange(400)  # pixel edges on multiples of 0.05
    flux = rng.uniform(0.5, 1.0, (3, 400)).astype(np.float32)
    err = rng.uniform(0.01, 0.03, (3, 400)).astype(np.float32)
    s = SpectralSet.from_arrays({"A": (wave, flux, err)})
    out = Rebinner(step=0.5, ranges=(5400.25, 5419.75)).fit_transform(s)
    assert out.flux("A").shape == (3, 40)
    blocks = flux.astype(np.float64).reshape(3, 40, 10)
    np.testing.assert_allclose(out.flux("A"), blocks.mean(axis=2), rtol=1e-6)
    ref_err = np.sqrt((err.astype(np.float64).reshape(3, 40, 10) ** 2).sum(axis=2)) / 10
    np.testing.assert_allclose(out.error("A"), ref_err, rtol=1e-6)

def test_rebinner_scaled_grid_agrees_with_specutils(rng):
    specutils = pytest.importorskip("specutils")
    from astropy.nddata import StdDevUncertainty
    from specutils.manipulation import FluxConservingResampler

    scaled, _ = _scaled_and_materialised(rng, n=2, p=600)
    s = scaled.replace("HR21", error=np.abs(scaled.error("HR21")).clip(max=0.05))
    out = Rebinner(step=0.07).fit_transform(s)
    flux_only = Rebinner(step=0.07, errors=False).fit_transform(s)  # the integral kernel
    new, wave = out.wavelength("HR21"), s.wavelength("HR21")
    for i in range(2):
        ref = FluxConservingResampler()(
            specutils.Spectrum(
                flux=s.flux("HR21")[i] * u.one,
                spectral_axis=wave[i] * u.AA,
                uncertainty=StdDevUncertainty(s.error("HR21")[i]),
            ),
            new * u.AA,
        )
        np.testing.assert_allclose(out.flux("HR21")[i, 2:-2], ref.flux.value[2:-2], rtol=1e-4)
        np.testing.assert_allclose(flux_only.flux("HR21")[i, 2:-2], ref.flux.value[2:-2], rtol=1e-4)
        ref_err = 1 / np.sqrt(ref.uncertainty.array[2:-2])
        np.testing.assert_allclose(out.error("HR21")[i, 2:-2], ref_err, rtol=1e-4)


def test_rebinner_scaled_grid_errors_name_the_star(rng):
    scaled, _ = _scaled_and_materialised(rng)
    reb = Rebinner(step=0.1, ranges=(8490.0, 8580.0), on_bad="raise").fit(scaled)
    flux = scaled.flux("HR21").copy()
    flux[3, 1200] = np.nan
    with pytest.raises(ValueError, match=r"star 3 \(id '3'\) has NaN or inf flux.*'HR21'"):
        reb.transform(scaled.replace("HR21", flux=flux))
    # the first star whose rest-frame spectrum starts after 8469.95 A (the first bin's edge)
    first = scaled.setup_data("HR21").scale * (8475.0 - 0.025)
    i = int(np.argmax(first > 8469.95))
    far = Rebinner(step=0.1, ranges=(8470.0, 8580.0), on_bad="raise").fit(scaled)
    with pytest.raises(ValueError, match=rf"star {i} \(id '{i}'\) covers {first[i]:.3f}-.* in setup "
                       rf"'HR21'.*missing 8469.950-{first[i]:.3f} A"):
        far.transform(scaled)


def test_rebinner_without_errors_gives_the_same_flux_and_the_chain_the_same_output(rng):
    scaled, _ = _scaled_and_materialised(rng)
    with_err = Rebinner(step=0.1, ranges=(8490.0, 8580.0)).fit_transform(scaled)
    without = Rebinner(step=0.1, ranges=(8490.0, 8580.0), errors=False).fit_transform(scaled)
    assert with_err.error("HR21") is not None and without.error("HR21") is None
    # two kernels (integrals on the regular grid without errors, the pixel walk with
    # them), both summing in float64: the same float32 flux up to its last bit
    np.testing.assert_allclose(without.flux("HR21"), with_err.flux("HR21"), rtol=2e-7)
    s = make_giraffe(4, rng=rng, error=True)
    a = giraffe_preprocessor().fit_transform(s)  # errors=False: not propagated
    b = giraffe_preprocessor(errors=True).fit_transform(s)
    np.testing.assert_allclose(a, b, rtol=2e-7)
    assert giraffe_preprocessor()[:-1].fit_transform(s).error("HR21") is None
    assert giraffe_preprocessor(errors=True)[:-1].fit_transform(s).error("HR21").shape == (4, 4501)


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_give_identical_results(threads, rng, monkeypatch):
    from skstellar.preprocessing import _grid
    from skstellar.utils import _threads

    scaled, _ = _scaled_and_materialised(rng, n=9)
    flux = scaled.flux("HR21").copy()
    flux[:, 100] = 5.0  # spikes to clean
    s = scaled.replace("HR21", flux=flux)
    steps = make_pipeline(SpectrumCleaner(), Rebinner(step=0.1, ranges=(8490.0, 8580.0))).fit(s)
    monkeypatch.setattr(_grid, "_CHUNK_ELEMENTS", 2 * 3000)  # chunks of 2 rows
    monkeypatch.setattr(_threads, "MAX_THREADS", 1)
    one, one_clean = steps.transform(s), steps[0].transform(s)
    monkeypatch.setattr(_threads, "MAX_THREADS", threads)
    many, many_clean = steps.transform(s), steps[0].transform(s)
    for a, b in ((many, one), (many_clean, one_clean)):
        np.testing.assert_array_equal(a.flux("HR21"), b.flux("HR21"))
        np.testing.assert_array_equal(a.error("HR21"), b.error("HR21"))
    # the spike of every star, and star 1's pixel of infinite error
    assert many_clean.meta["n_cleaned_HR21"].tolist() == [1, 2] + [1] * 7


# -- SetupStitcher and the GIRAFFE chain -------------------------------------------------
def test_giraffe_chain_gives_8669_named_pixels():
    s = make_giraffe(3, error=True)
    snap = snapshot(s)
    pre = giraffe_preprocessor()
    X = pre.fit_transform(s)
    assert_unchanged(s, snap)
    assert X.shape == (3, 8669) and X.dtype == np.float32
    st = pre.named_steps["stitch"]
    names = pre.get_feature_names_out()
    # HR10: the fewest 0.06 A bins from 5350.00 A covering 5350-5600 A end with 5600.02 A
    assert names[0] == "HR10_5350.00" and names[1] == "HR10_5350.06" and names[4167] == "HR10_5600.02"
    assert names[4168] == "HR21_8480.0" and names[-1] == "HR21_8930.0"
    assert st.setup_slices_ == {"HR10": slice(0, 4168), "HR21": slice(4168, 8669)}
    assert st.wavelength_[4167] == pytest.approx(5600.02) and st.wavelength_[4168] == pytest.approx(8480.0)
    # the lines are back at their rest wavelengths in the stitched array
    k = int(np.argmin(X[0, 1700:1800])) + 1700
    assert abs(st.wavelength_[k] - 5455.3) <= 0.03


def test_giraffe_grid_is_covered_from_minus_175_to_plus_1015_kms():
    # HR21 starts at 8475 A natively (8479.95 A needed); HR10 ends at 5619 A (5600.05 needed)
    pre = giraffe_preprocessor(on_bad="raise")
    assert pre.fit_transform(make_giraffe(2, rv=[-175.0, 1000.0])).shape == (2, 8669)
    expected = r"star 0 \(id 'star0'\) covers 8479.982-.*'HR21'.*missing 8479.950-8479.982 A"
    with pytest.raises(ValueError, match=expected):
        pre.transform(make_giraffe(1, rv=-177.0))


def test_lithium_chain_puts_li_back_at_rest_and_covers_460_kms():
    w = 6444.0 + 0.05 * np.arange(7481)  # the native HR15N grid, 6444-6818 A
    rv = np.array([-455.0, 0.0, 300.0, 455.0])
    rest = absorption(w, [6562.8, 6707.8], np.array([0.5, 0.6, 0.7, 0.8]))
    obs = np.stack([np.interp(w, w * (1 + v / C_KMS), f) for v, f in zip(rv, rest)])
    s = SpectralSet.from_arrays({"HR15N": (w, obs)}, meta={"rv": rv})
    pre = lithium_preprocessor()
    X = pre.fit_transform(s)
    assert X.shape == (4, 4701)
    names = pre.get_feature_names_out()
    assert names[0] == "HR15N_6455.000" and names[-1] == "HR15N_6807.500"
    grid = pre.named_steps["stitch"].wavelength_
    li = (grid > 6700) & (grid < 6715)
    for row in X:
        assert abs(grid[li][np.argmin(row[li])] - 6707.8) <= 0.0375 + 1e-9  # half a bin
    beyond = SpectralSet.from_arrays({"HR15N": (w, obs[:1])}, meta={"rv": [480.0]})
    with pytest.raises(ValueError, match="HR15N"):
        pre.set_params(rebin__on_bad="raise").transform(beyond)
    with pytest.raises(ValueError, match="HR15N"):
        lithium_preprocessor().fit(make_giraffe(1))


def test_stitcher_order_subset_and_errors():
    s = make_giraffe(2, rv=0.0)
    reb = Rebinner(step=GIRAFFE_STEPS, ranges=GIRAFFE_RANGES).fit(s)
    r = reb.transform(s)
    st = SetupStitcher(setups=["HR21", "HR10"]).fit(r)
    X = st.transform(r)
    np.testing.assert_array_equal(X[:, :4501], r.flux("HR21"))
    np.testing.assert_array_equal(X[:, 4501:], r.flux("HR10"))
    assert st.get_feature_names_out()[0] == "HR21_8480.0"
    only = SetupStitcher(setups=["HR21"]).fit(r)
    assert only.transform(r).shape == (2, 4501)
    with pytest.raises(ValueError, match=r"'HR10' has a wavelength grid per star.*Rebinner"):
        SetupStitcher().fit(RadialVelocityCorrector(rv=[1.0, 2.0]).fit_transform(s))
    with pytest.raises(ValueError, match=r"setups names 'HR15N', which X lacks"):
        SetupStitcher(setups=["HR15N"]).fit(r)
    with pytest.raises(ValueError, match=r"setup 'HR10' has 5352.0000-5602.0200 A, not the grid seen at fit"):
        st.transform(r.replace("HR10", wavelength=r.wavelength("HR10") + 2.0))
    with pytest.raises(ValueError, match=r"lacks 'HR10'"):
        st.transform(SpectralSet.from_arrays({"HR21": (r.wavelength("HR21"), r.flux("HR21"))}))


def test_stitcher_without_copy_hands_on_the_rebinners_array():
    s = make_giraffe(3, rv=[5.0, -5.0, 10.0])
    r = Rebinner(step=GIRAFFE_STEPS, ranges=GIRAFFE_RANGES).fit_transform(s)
    copied = SetupStitcher().fit(r).transform(r)
    X = SetupStitcher(copy=False).fit(r).transform(r)
    # the rebinner wrote both setups side by side into one array: that array, no copy
    assert X.shape == (3, 8669) and X.flags.c_contiguous and X.dtype == np.float32
    assert np.shares_memory(X, r.flux("HR10")) and np.shares_memory(X, r.flux("HR21"))
    assert not np.shares_memory(copied, r.flux("HR10"))
    np.testing.assert_array_equal(X, copied)
    # any other layout is copied: another order, a subset, rows picked out, plain arrays
    for st, data in ((SetupStitcher(setups=["HR21", "HR10"], copy=False), r),
                     (SetupStitcher(setups=["HR10"], copy=False), r),
                     (SetupStitcher(copy=False), r[[0, 2]])):
        out = st.fit(data).transform(data)
        assert not np.shares_memory(out, data.flux("HR10"))
        np.testing.assert_array_equal(out[:, :4168] if st.setups != ["HR21", "HR10"] else out[:, 4501:],
                                      data.flux("HR10"))
    plain = np.ascontiguousarray(copied)
    assert not np.shares_memory(SetupStitcher(copy=False).fit(plain).transform(plain), plain)
    # the GIRAFFE chain uses it: its output is the rebinner's array, not a copy of it
    pre = giraffe_preprocessor().fit(s)
    rebinned = pre[:-1].transform(s)
    X = pre.transform(s)
    np.testing.assert_array_equal(X, SetupStitcher().fit(rebinned).transform(rebinned))
    assert pre[-1].copy is False and X.base is None  # the rebinner's own array


@pytest.mark.parametrize(
    "make",
    [
        lambda: SpectrumCleaner(),
        lambda: RadialVelocityCorrector(),
        lambda: Rebinner(step=GIRAFFE_STEPS, ranges=GIRAFFE_RANGES),
        lambda: SetupStitcher(),
    ],
    ids=["cleaner", "rv", "rebinner", "stitcher"],
)
def test_no_step_modifies_its_input_and_all_check_later_batches(make):
    s = make_giraffe(3, rv=[5.0, -5.0, 10.0], error=True)
    flux = s.flux("HR10").copy()
    flux[1, 9] = 30.0  # a spike: the cleaner replaces it, in its output only
    s = s.replace("HR10", flux=flux)
    if isinstance(make(), SetupStitcher):
        s = Rebinner(step=GIRAFFE_STEPS, ranges=GIRAFFE_RANGES).fit_transform(s)
    snap = snapshot(s)
    step = make().fit(s)
    step.transform(s)
    assert_unchanged(s, snap)
    lacking = SpectralSet.from_arrays({"HR10": (s.wavelength("HR10"), s.flux("HR10"))}, meta=s.meta)
    with pytest.raises(ValueError, match=r"fitted on setups \('HR10', 'HR21'\); this SpectralSet lacks 'HR21'"):
        step.transform(lacking)
    if isinstance(step, SetupStitcher):  # the others take any native sampling, star by star
        cut = s.replace("HR21", wavelength=s.wavelength("HR21")[..., :-3], flux=s.flux("HR21")[:, :-3],
                        error=s.error("HR21")[:, :-3] if s.error("HR21") is not None else None)
        with pytest.raises(ValueError, match=r"setup 'HR21' has \d+ pixels per spectrum but \w+ was fitted with \d+"):
            step.transform(cut)


def test_wavelength_parameter_is_for_arrays_only():
    s = make_giraffe(2, rv=0.0)
    with pytest.raises(ValueError, match="wavelength parameter is for plain arrays only"):
        SpectrumCleaner(wavelength=np.arange(5)).fit(s)
    with pytest.raises(ValueError, match=r"wavelength has shape \(5,\) but X has 7 pixels"):
        Rebinner(step=1.0, wavelength=np.arange(5.0)).fit(np.ones((2, 7)))


def test_array_chain_with_wavelength_grid():
    wave = np.arange(5440.0, 5470.0, 0.05)
    flux = absorption(wave, [5455.3], np.array([0.5, 0.4]))
    pipe = make_pipeline(
        SpectrumCleaner(wavelength=wave),
        Rebinner(step=0.1, ranges=(5445.0, 5465.0), wavelength=wave),
        SetupStitcher(wavelength=np.arange(5445.0, 5465.05, 0.1)),
    )
    X = pipe.fit_transform(flux)
    assert X.shape == (2, 201) and X.dtype == np.float32
    assert pipe[-1].get_feature_names_out()[0] == "spectrum_5445.0"
    assert abs(np.arange(5445.0, 5465.05, 0.1)[np.argmin(X[0])] - 5455.3) < 0.06


def test_chain_in_pipeline_with_cross_val_score(rng):
    n = 40
    y = rng.uniform(0.1, 0.6, n)  # the label is the depth of every line
    s = make_giraffe(n, rng=rng, depth=y, noise=0.01)
    flux = s.flux("HR10").copy()
    flux[:, 1234] = 4.0  # a cosmic ray in every star, the same column
    s = s.replace("HR10", flux=flux)
    pipe = Pipeline([*giraffe_preprocessor().steps, ("ridge", Ridge(alpha=1.0))])
    scores = cross_val_score(pipe, s, y, cv=KFold(4, shuffle=True, random_state=0))
    assert scores.min() > 0.9


@pytest.mark.parametrize("p", [1, 2, 3, 4, 101, 400, 3381])
@pytest.mark.parametrize("kind", ["normal", "ties", "sorted", "reversed"])
def test_cleaner_median_kernel_equals_numpy_median(p, kind, rng):
    from skstellar.preprocessing._kernels import _median

    for n in range(0, p + 1, max(1, p // 7)):
        x = rng.normal(size=p).astype(np.float32)
        if kind == "ties":  # few distinct values: the partition must not loop or misplace
            x = np.round(x).astype(np.float32)
        elif kind == "sorted":
            x.sort()
        elif kind == "reversed":
            x = np.sort(x)[::-1].copy()
        ref = np.median(x[:n].astype(np.float64)) if n else np.nan
        np.testing.assert_allclose(_median(x.copy(), n, np.empty(p, np.float32)), ref, atol=1e-7)
