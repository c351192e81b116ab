"""Per-star status: one bad star is flagged and the run goes on; its labels are NaN, never plausible."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

from skstellar import predict_table
from skstellar.datasets import make_giraffe_survey
from skstellar.filters import TSNESimilarityFilter
from skstellar.preprocessing import (
    RadialVelocityCorrector,
    Rebinner,
    SpectrumCleaner,
    giraffe_preprocessor,
)
from skstellar.spectra import SpectralSet
from skstellar.utils._status import UNPREDICTABLE, FlaggedTrainingWarning, StarFlag, describe_flags

LABELS = ["y0", "y1", "y2"]


@pytest.fixture(scope="module")
def survey():
    spectra, labels = make_giraffe_survey(70, snr=(50, 150), random_state=1)
    y = np.column_stack([labels[c] for c in ("teff", "logg", "feh")])
    return spectra, y


@pytest.fixture(scope="module")
def fitted(survey):
    spectra, y = survey
    pipe = Pipeline(
        giraffe_preprocessor().steps
        + [("similarity", TSNESimilarityFilter(n_components=10, perplexity=8, random_state=0)),
           ("reg", Ridge(alpha=1.0))]
    )
    return pipe.fit(spectra[:60], y[:60])


def broken_batch(spectra):
    """Ten stars of the survey, each but the last damaged in one way (per-star grids)."""
    s = spectra[60:70]
    n = len(s)
    setups = {}
    for setup in s.setups:
        wave = np.tile(s.wavelength(setup), (n, 1))
        flux = s.flux(setup).astype(np.float64)
        setups[setup] = [wave, flux]
    setups["HR10"][1][0] = 0.0  # dead fibre: no usable pixel
    setups["HR21"][1][1] = np.nan  # all NaN
    setups["HR10"][0][2] /= 10.0  # wavelengths in nm: covers none of the grid
    setups["HR10"][1][3] *= 1e4  # not normalised
    setups["HR21"][1][4] = 1e39  # beyond float32
    setups["HR21"][1][7, 100:110] = np.nan  # a few NaN pixels: repaired
    meta = s.meta.copy()
    meta["rv"][5] = np.nan  # radial velocity missing
    meta["rv"][6] = -990.0  # shifts HR21 5 % off the grid
    return SpectralSet.from_arrays({k: tuple(v) for k, v in setups.items()}, meta=meta)


def test_default_chain_flags_bad_stars_and_goes_on(survey, fitted):
    spectra, _ = survey
    bad = broken_batch(spectra)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning either
        table = predict_table(fitted, bad)
    assert len(table) == 10 and table["id"].tolist() == bad.ids.tolist()
    F = StarFlag
    expected = {
        0: F.EMPTY_SETUP, 1: F.EMPTY_SETUP, 2: F.NO_COVERAGE, 3: F.FLUX_RANGE,
        4: F.EMPTY_SETUP, 5: F.RV_INVALID, 6: F.PADDED_MANY,
    }
    flags = np.asarray(table["flags"])
    for i, flag in expected.items():
        assert flags[i] & flag == flag, (i, table["status"][i])
    dead = [0, 1, 2, 3, 4, 5]
    for label in LABELS:
        assert np.isnan(table[label][dead]).all()
        assert np.isfinite(table[label][6:]).all()
    assert not table["training_like"][:7].any()
    assert flags[7] & F.NONFINITE and flags[7] & F.CLEANED and not flags[7] & UNPREDICTABLE
    assert table["status"][0].startswith("HR10: no usable pixel")
    assert "HR10: covers none of the grid" in table["status"][2]
    assert "flux out of range" in table["status"][3]
    assert "radial velocity missing or invalid" in table["status"][5]
    assert "HR21: padded over the allowed fraction, padded with continuum" in table["status"][6]
    assert "NO_COVERAGE" in table["flags"].description


def test_clean_stars_are_ok(survey, fitted):
    spectra, _ = survey
    table = predict_table(fitted, spectra[60:66])
    assert set(table["status"]) <= {"ok", "HR10: pixels cleaned", "HR21: pixels cleaned",
                                    "HR10: pixels cleaned; HR21: pixels cleaned", "unlike the training set"}
    assert (table["flags"] & int(UNPREDICTABLE) == 0).all()
    assert np.isfinite(table["y0"]).all()


@pytest.mark.parametrize("star, match", [
    (0, r"star 0 \(id '\S+0060'\) has no usable pixel in setup 'HR10'"),
    (3, r"star 0 \(id '\S+0063'\) has a median flux outside flux_range"),
    (5, r"star 0 \(id '\S+0065'\) has no finite radial velocity"),
    (2, r"star 0 \(id '\S+0062'\) covers 533.*'HR10'"),
])
def test_strict_mode_raises_at_the_first_bad_star(survey, star, match):
    spectra, _ = survey
    bad = broken_batch(spectra)
    good = [i for i in range(10) if i in (star, 8, 9)]
    strict = giraffe_preprocessor(on_bad="raise").fit(spectra[:20])
    with pytest.raises(ValueError, match=match):
        strict.transform(bad[good])


def test_old_policy_names_still_work_with_a_future_warning():
    flux = np.ones((2, 40))
    flux[1] = 0.0
    s = SpectralSet.from_arrays({"HR10": (np.arange(5350.0, 5354.0, 0.1), flux)})
    with pytest.warns(FutureWarning, match="on_bad='flag'"):
        out = SpectrumCleaner(empty="flag").fit(s[:1]).transform(s)
    assert out.meta["empty_HR10"].tolist() == [False, True]
    with pytest.warns(FutureWarning, match="on_bad='raise'"), pytest.raises(ValueError, match="no usable"):
        SpectrumCleaner(empty="raise").fit(s).transform(s)
    with pytest.warns(FutureWarning, match="on_bad='flag'"):
        assert giraffe_preprocessor(uncovered="continuum").get_params()["rebin__on_bad"] == "flag"
    with pytest.warns(FutureWarning, match="on_bad='raise'"):
        Rebinner(step=0.2, uncovered="raise").fit(s)


def test_cleaner_and_rv_corrector_take_another_native_pixel_count():
    wave = np.arange(5350.0, 5360.0, 0.05)
    s = SpectralSet.from_arrays({"HR10": (wave, np.ones((2, wave.size)))}, meta={"rv": [1.0, 2.0]})
    finer = np.arange(5350.0, 5360.0, 0.02)
    later = SpectralSet.from_arrays({"HR10": (finer, np.ones((3, finer.size)))}, meta={"rv": [0.0, 3.0, 5.0]})
    for step in (SpectrumCleaner(), RadialVelocityCorrector()):
        out = step.fit(s).transform(later)
        assert out.n_pixels("HR10") == finer.size


def test_describe_flags_names_setups_once_per_combination():
    star = np.array([0, int(StarFlag.RV_INVALID), 0])
    per_setup = {"HR10": np.array([0, 0, int(StarFlag.EMPTY_SETUP)]), "HR21": np.array([0, 1, 0])}
    assert describe_flags(star, per_setup).tolist() == [
        "ok", "radial velocity missing or invalid; HR21: pixels cleaned", "HR10: no usable pixel"]


def test_fitting_on_unusable_stars_warns(survey):
    spectra, y = survey
    bad = broken_batch(spectra)
    with pytest.warns(FlaggedTrainingWarning, match=r"SpectrumCleaner: 4 of 8 training stars are unusable.*star 0"):
        giraffe_preprocessor().fit(bad[[0, 1, 3, 4, 6, 7, 8, 9]])


def test_flux_near_the_float32_limit_is_flagged_without_a_warning():
    wave = np.arange(5350.0, 5360.0, 0.05)
    flux = np.ones((3, wave.size))
    flux[0] = 0.3
    flux[0, ::4] = 1.0
    flux[0] *= 1e39  # a quarter of the pixels beyond float32 (inf), the others 3e38
    flux[1, :] = 1e39
    s = SpectralSet.from_arrays({"HR10": (wave, flux)})
    out = SpectrumCleaner(flux_range=(0.1, 10)).fit(s[2:]).transform(s)
    bits = out.meta["status_flags_HR10"]
    assert bits[0] & StarFlag.FLUX_RANGE and bits[0] & StarFlag.NONFINITE
    assert bits[1] == StarFlag.EMPTY_SETUP and bits[2] == 0
    np.testing.assert_array_equal(out.flux("HR10")[:2], 1.0)
