"""Tests of the mock Gaia-ESO survey (skstellar.datasets)."""

import numpy as np
import pytest
from astropy.table import Table

from skstellar import SpectralSet
from skstellar._solar import SOLAR_ABUNDANCES, solar_abundance
from skstellar.datasets import make_giraffe_survey, synthesize_spectra
from skstellar.datasets._atmosphere import ALPHA_ELEMENTS
from skstellar.datasets._linelist import LINELIST_FILE, load_linelist
from skstellar.datasets._profiles import MARGIN_PIX, setup_model
from skstellar.datasets._setups import SETUPS
from skstellar.datasets._survey import default_vmic

SUN = {"teff": 5777.0, "logg": 4.44, "feh": 0.0, "mgfe": 0.0, "alfe": 0.0, "ali": 1.05, "vmic": 1.0}
MG_LINES = {"HR10": (5528.405,), "HR21": (8717.825, 8736.019, 8806.756)}
AL_LINES = {"HR10": (5557.063,), "HR21": (8772.865, 8773.896)}


def stars(*changes):
    """A label table: one row per dict of changes to the Sun."""
    rows = [{**SUN, **c} for c in changes]
    return {k: [r[k] for r in rows] for k in SUN}


def pixel(spectra, setup, wave):
    return int(np.abs(spectra.wavelength(setup) - wave).argmin())


def depth(spectra, setup, wave, half=0.1):
    """Line depth below the continuum: 1 - the lowest flux within +-half A of ``wave``."""
    w = spectra.wavelength(setup)
    m = np.abs(w - wave) <= half
    return 1.0 - spectra.flux(setup)[:, m].min(axis=1)


def touched_pixels(setup, elements):
    """Pixels (rest frame, setup grid) that any basis profile of a line of ``elements`` reaches."""
    model = setup_model(setup)
    L = len(model.lines)
    sel = np.flatnonzero(np.isin(model.lines.element, elements))
    wing = np.flatnonzero(np.isin(model.lines.element[model.wing_lines], elements))
    cols = np.concatenate([sel, sel + L, sel + 2 * L, 3 * L + wing])
    rows = np.unique(model.basis_t[:, cols].tocoo().row) - MARGIN_PIX
    mask = np.zeros(SETUPS[setup].n_pixels, dtype=bool)
    mask[rows[(rows >= 0) & (rows < mask.size)]] = True
    return mask


# -- the line list and the solar composition ------------------------------------------------


def test_solar_abundances_are_gas07():
    assert solar_abundance("Fe") == 7.45
    assert (SOLAR_ABUNDANCES["Mg"], SOLAR_ABUNDANCES["Al"], SOLAR_ABUNDANCES["Ca"]) == (7.53, 6.37, 6.31)
    assert SOLAR_ABUNDANCES["Li"] == 1.05
    for el in ("H", "He", "C", "N", "O", "Na", "Si", "Ti", "Cr", "Mn", "Ni", "Ba", "Eu"):
        assert el in SOLAR_ABUNDANCES
    with pytest.raises(KeyError, match="Xx"):
        solar_abundance("Xx")


@pytest.mark.parametrize(
    "wave, element, ion",
    [
        (5528.405, "Mg", 1), (8717.825, "Mg", 1), (8736.019, "Mg", 1), (8806.756, "Mg", 1),
        (5557.063, "Al", 1), (8772.865, "Al", 1), (8773.896, "Al", 1), (6707.764, "Li", 1),
        (8498.023, "Ca", 2), (8542.091, "Ca", 2), (8662.141, "Ca", 2), (6562.797, "H", 1),
    ],
)
def test_key_lines_are_shipped_and_synthesised(wave, element, ion):
    lines = load_linelist()
    hit = (np.abs(lines.wave - wave) < 0.02) & (lines.element == element) & (lines.ion == ion)
    assert hit.any()
    setup = "HR10" if wave < 6000 else ("HR15N" if wave < 7000 else "HR21")
    m = setup_model(setup).lines
    assert ((np.abs(m.wave - wave) < 0.02) & (m.element == element)).any()


def test_shipped_linelist_is_small_with_many_fe_lines():
    import importlib.resources as r

    size = r.files("skstellar.datasets").joinpath("data", LINELIST_FILE).stat().st_size
    assert size < 1_000_000
    lines = load_linelist()
    assert ((lines.element == "Fe") & (lines.ion == 1)).sum() > 1000
    assert ((lines.element == "Fe") & (lines.ion == 2)).sum() > 20


# -- physics: the Sun and what each label does -------------------------------------------


@pytest.fixture(scope="module")
def sun():
    return synthesize_spectra(stars({}), setups=("HR10", "HR15N", "HR21"))


def test_solar_line_depths(sun):
    # Real Sun at GIRAFFE resolution: Ca II 8542 ~0.8, Mg I 8806.75 ~0.6, Mg I 5528.4 ~0.6,
    # Al I 8773.9 0.15-0.25 below the continuum.
    assert depth(sun, "HR21", 8542.09)[0] == pytest.approx(0.8, abs=0.05)
    assert depth(sun, "HR21", 8806.756)[0] == pytest.approx(0.6, abs=0.06)
    assert depth(sun, "HR10", 5528.405)[0] == pytest.approx(0.6, abs=0.06)
    assert 0.15 <= depth(sun, "HR21", 8773.896)[0] <= 0.25
    # Solar Li is weak, H alpha deep.
    assert depth(sun, "HR15N", 6707.8)[0] < 0.06
    assert depth(sun, "HR15N", 6562.8)[0] > 0.7


def test_noise_free_rest_frame_output(sun):
    assert isinstance(sun, SpectralSet)
    assert sun.setups == ("HR10", "HR15N", "HR21")
    for setup in sun.setups:
        assert sun.error(setup) is None
        f = sun.flux(setup)
        assert f.dtype == np.float32 and np.isfinite(f).all()
        assert f.max() <= 1.0 and f.min() > 0.0
        # The continuum is 1: some pixels are line-free.
        assert (f > 0.99).mean() > 0.05
    assert sun.meta["rv"][0] == 0.0 and np.isinf(sun.meta["snr"][0])


def test_grids_match_gaia_eso(shared_data):
    from astropy.io import fits

    s = synthesize_spectra(stars({}), setups=("HR10", "HR15N", "HR21"))
    hdr = fits.getheader(shared_data / "spectra" / "ges_giraffe_HR21_19235180+0048006.fits")
    w = s.wavelength("HR21")
    assert w.size == hdr["NAXIS1"] == 10141
    np.testing.assert_allclose(w, hdr["CRVAL1"] + hdr["CD1_1"] * np.arange(hdr["NAXIS1"]), atol=1e-9)
    assert s.wavelength("HR10")[[0, -1]].tolist() == [5339.0, 5619.0]
    assert s.wavelength("HR15N")[[0, -1]].tolist() == [6444.0, 6818.0]


@pytest.fixture(scope="module")
def mg_al_pair():
    return synthesize_spectra(stars({}, {"mgfe": 0.3}, {"alfe": 0.3}), setups=("HR10", "HR21"))


@pytest.mark.parametrize("setup", ["HR10", "HR21"])
def test_mgfe_deepens_mg_lines_only(mg_al_pair, setup):
    s = mg_al_pair
    for w in MG_LINES[setup]:
        d = depth(s, setup, w)
        assert d[1] > d[0] + 0.01, (setup, w, d)
    f = s.flux(setup)
    changed = np.abs(f[1] - f[0]) > 0
    alpha = touched_pixels(setup, list(ALPHA_ELEMENTS))
    # Only pixels reached by a line of Mg or another alpha element change ...
    assert changed.any() and not (changed & ~alpha).any()
    # ... the Al line centres move by less than 1e-3 (only through far damping wings of
    # strong Mg lines and blends with weak Si/Ti/Ca lines) ...
    for w in AL_LINES[setup]:
        j = pixel(s, setup, w)
        assert abs(f[1, j] - f[0, j]) < 1e-3, (setup, w)
    # ... and so do the Fe lines clear of alpha-element lines and of the damping wings
    # of the strong Mg and Ca lines.
    fe = fe_line_pixels(s, setup, list(ALPHA_ELEMENTS), changed_row=1)
    assert fe.size >= 5
    assert np.abs(f[1, fe] - f[0, fe]).max() < 1e-3
    assert np.median(np.abs(f[1, fe] - f[0, fe])) < 1e-4


@pytest.mark.parametrize("setup", ["HR10", "HR21"])
def test_alfe_deepens_al_lines_only(mg_al_pair, setup):
    s = mg_al_pair
    for w in AL_LINES[setup]:
        d = depth(s, setup, w)
        assert d[2] > d[0] + 0.005, (setup, w, d)
    f = s.flux(setup)
    changed = np.abs(f[2] - f[0]) > 0
    al = touched_pixels(setup, ["Al"])
    assert changed.any() and not (changed & ~al).any()
    for w in MG_LINES[setup]:
        j = pixel(s, setup, w)
        assert abs(f[2, j] - f[0, j]) < 1e-3, (setup, w)
    fe = fe_line_pixels(s, setup, ["Al"], changed_row=2)
    assert fe.size >= 5
    assert np.abs(f[2, fe] - f[0, fe]).max() < 1e-3


def fe_line_pixels(s, setup, avoid, changed_row):
    """Centre pixels of solar Fe I lines deeper than 0.1 with no line of ``avoid`` within 1 A
    and none within 15 A whose own centre changes by > 0.05 in ``changed_row`` (its wings)."""
    lines = setup_model(setup).lines
    w = s.wavelength(setup)
    f = s.flux(setup)
    fe = lines.wave[(lines.element == "Fe") & (lines.ion == 1)]
    fe = fe[(fe > w[0]) & (fe < w[-1])]
    other = lines.wave[np.isin(lines.element, avoid)]
    other = other[(other > w[0]) & (other < w[-1])]
    j = np.searchsorted(w, other)
    strong = other[np.abs(f[changed_row, j] - f[0, j]) > 0.05]
    dist = np.abs(fe[:, None] - other[None, :]).min(axis=1)
    dist_strong = np.abs(fe[:, None] - strong[None, :]).min(axis=1) if strong.size else np.inf
    fe = fe[(dist > 1.0) & (dist_strong > 15.0)]
    j = np.unique(np.searchsorted(w, fe))
    return j[1.0 - f[0, j] > 0.1]


def test_giant_and_dwarf_differ_in_ca_triplet_wings():
    giant, dwarf = {"teff": 4800.0, "logg": 2.0}, {"teff": 4800.0, "logg": 4.6}
    s = synthesize_spectra(stars(giant, dwarf), setups="HR21")
    w = s.wavelength("HR21")
    f = s.flux("HR21")
    for centre in (8542.091, 8662.141):
        wings = (np.abs(w - centre) > 1.5) & (np.abs(w - centre) < 4.0)
        # Compare the upper envelope of the wings (line-free pixels show the damping wing).
        giant, dwarf = np.percentile(f[:, wings], 90, axis=1)
        assert giant - dwarf > 0.03, (centre, giant, dwarf)


def test_label_trends():
    s = synthesize_spectra(
        stars({}, {"feh": -1.0}, {"teff": 5000.0}, {"teff": 6500.0}, {"ali": 3.0}),
        setups=("HR10", "HR15N"),
    )
    mean_depth = 1.0 - s.flux("HR10").mean(axis=1)
    assert mean_depth[1] < 0.5 * mean_depth[0]  # metal-poor: weaker lines
    assert mean_depth[2] > mean_depth[0] > mean_depth[3]  # cooler: stronger metal lines
    ha_wing = 1.0 - s.flux("HR15N")[:, pixel(s, "HR15N", 6562.8 + 3.0)]
    assert ha_wing[3] > ha_wing[0] > ha_wing[2]  # hotter: broader H alpha
    li = depth(s, "HR15N", 6707.8)
    assert li[4] > li[0] + 0.1


def test_doppler_shift_moves_lines():
    s = synthesize_spectra(stars({}, {}), setups="HR21", rv=[0.0, 50.0])
    w = s.wavelength("HR21")
    near = np.abs(w - 8542.5) < 3
    lam = [w[near][np.argmin(s.flux("HR21")[i, near])] for i in range(2)]
    assert lam[1] - lam[0] == pytest.approx(8542.09 * 50.0 / 299792.458, abs=0.05)
    assert s.meta["rv"].tolist() == [0.0, 50.0]


def test_noise_level_and_reproducibility():
    a = synthesize_spectra(stars({}, {}), setups="HR10", snr=100.0, random_state=3)
    b = synthesize_spectra(stars({}, {}), setups="HR10", snr=100.0, random_state=3)
    clean = synthesize_spectra(stars({}), setups="HR10")
    np.testing.assert_array_equal(a.flux("HR10"), b.flux("HR10"))
    resid = a.flux("HR10") - clean.flux("HR10")
    cont = clean.flux("HR10")[0] > 0.999
    assert np.std(resid[:, cont]) == pytest.approx(0.01, rel=0.1)
    np.testing.assert_allclose(a.error("HR10")[0, cont], 0.01, rtol=0.01)
    assert not np.array_equal(a.flux("HR10")[0], a.flux("HR10")[1])


# -- the survey ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def survey():
    return make_giraffe_survey(300, setups=("HR10", "HR21"), random_state=7)


def test_survey_output(survey):
    spectra, labels = survey
    assert len(spectra) == len(labels) == 300
    assert spectra.setups == ("HR10", "HR21")
    assert spectra.shape == (300, 5601 + 10141)
    assert {"id", "rv", "snr"} <= set(spectra.meta.colnames)
    assert isinstance(labels, Table)
    for k in ("teff", "logg", "feh", "mgfe", "alfe", "ali", "vmic"):
        assert k in labels.colnames and "e_" + k in labels.colnames
        assert np.isfinite(labels[k]).all() and (labels["e_" + k] > 0).all()
    assert {"population", "edge_kind", "li_rich", "rv", "snr"} <= set(labels.colnames)
    assert (spectra.ids == labels["id"]).all()
    assert len(set(spectra.ids)) == 300
    snr = np.asarray(spectra.meta["snr"])
    assert snr.min() >= 10 and snr.max() <= 150
    for setup in spectra.setups:
        err = spectra.error(setup)
        assert err.shape == spectra.flux(setup).shape and (err > 0).all()


def test_survey_artefacts(survey):
    spectra, _ = survey
    f = spectra.flux("HR21")
    # Cosmic-ray spikes far above any noise, in most spectra (Poisson mean 3 per setup).
    assert (f.max(axis=1) > 1.4).mean() > 0.8
    zero_runs = (f == 0).any(axis=1)
    assert 0 < zero_runs.sum() < 40
    assert np.isinf(spectra.error("HR21")[f == 0]).all()


def test_survey_same_seed_same_output_any_n_jobs():
    a, la = make_giraffe_survey(300, setups="HR10", random_state=11, population="mixed")
    b, lb = make_giraffe_survey(300, setups="HR10", random_state=11, population="mixed", n_jobs=2)
    np.testing.assert_array_equal(a.flux("HR10"), b.flux("HR10"))
    np.testing.assert_array_equal(a.error("HR10"), b.error("HR10"))
    assert (la["teff"] == lb["teff"]).all() and (a.meta["rv"] == b.meta["rv"]).all()
    c, _ = make_giraffe_survey(300, setups="HR10", random_state=12, population="mixed")
    assert not np.array_equal(a.flux("HR10"), c.flux("HR10"))
    # A setup's spectra do not depend on the other setups asked for.
    d, ld = make_giraffe_survey(300, setups=("HR21", "HR10"), random_state=11, population="mixed")
    np.testing.assert_array_equal(a.flux("HR10"), d.flux("HR10"))
    assert (ld["teff"] == la["teff"]).all()
    # Surveys from different seeds can be concatenated: their ids differ.
    assert not set(a.ids) & set(c.ids)


def test_observed_frame_and_rv_error():
    spectra, labels = make_giraffe_survey(30, setups="HR21", snr=None, rv_error=0.5, random_state=2)
    assert spectra.error("HR21") is None
    rv_cat = np.asarray(spectra.meta["rv"])
    assert 0 < np.std(rv_cat - labels["rv"]) < 1.0
    # Without noise, the spectra are the rest-frame synthesis moved by the true RV.
    again = synthesize_spectra(labels, setups="HR21", rv=labels["rv"])
    np.testing.assert_allclose(spectra.flux("HR21"), again.flux("HR21"), atol=1e-6)


def test_disk_population_fractions():
    _, labels = make_giraffe_survey(2500, setups="HR10", snr=None, random_state=1)
    pop = np.asarray(labels["population"])
    assert np.mean(pop == "thin") == pytest.approx(0.72, abs=0.03)
    assert np.mean(pop == "thick") == pytest.approx(0.23, abs=0.03)
    assert np.mean(pop == "globular") == pytest.approx(0.05, abs=0.015)
    assert (labels["edge_kind"] == "").all()
    # Li-rich giants: 2 %, A(Li) 2-3.9, log g < 3.5, Teff < 5500 K.
    rich = np.asarray(labels["li_rich"])
    assert rich.mean() == pytest.approx(0.02, abs=0.003)
    assert (labels["ali"][rich] >= 2).all() and (labels["ali"][rich] <= 3.9).all()
    assert (labels["logg"][rich] < 3.5).all() and (labels["teff"][rich] < 5500).all()
    # Kiel diagram like Gaia-ESO: dwarfs and giants, inside the training box.
    giants = np.asarray(labels["logg"]) < 3.5
    assert 0.3 < giants.mean() < 0.5
    assert labels["teff"].min() >= 4000 and labels["teff"].max() <= 6900
    # Thin and thick disk: two separate [Mg/Fe] sequences at the same [Fe/H].
    feh, mgfe = np.asarray(labels["feh"]), np.asarray(labels["mgfe"])
    band = (feh > -0.7) & (feh < -0.3)
    thin = band & (pop == "thin")
    thick = band & (pop == "thick")
    assert np.median(mgfe[thick]) - np.median(mgfe[thin]) > 0.15
    middle = 0.5 * (np.median(mgfe[thick]) + np.median(mgfe[thin]))
    gap = band & (pop != "globular") & (np.abs(mgfe - middle) < 0.03)
    assert gap.sum() < 0.05 * (thin.sum() + thick.sum())
    # The globular cluster: metal-poor, with the Mg-Al anticorrelation.
    gc = pop == "globular"
    assert np.all(np.abs(feh[gc] + 1.25) < 0.2)
    assert np.corrcoef(labels["mgfe"][gc], labels["alfe"][gc])[0, 1] < -0.8


def test_edge_population():
    spectra, labels = make_giraffe_survey(
        280, setups="HR21", population="edge", snr=200.0, random_state=4
    )
    kind = np.asarray(labels["edge_kind"])
    kinds = ("hot", "metal_poor", "metal_rich", "high_logg", "extreme_al", "emission", "bad_norm")
    for k in kinds:
        assert np.mean(kind == k) == pytest.approx(1 / 7, abs=0.06), k
    assert (labels["population"] == "edge").all()
    assert (labels["teff"][kind == "hot"] >= 7000).all()
    assert (labels["logg"][kind == "high_logg"] > 4.9).all()
    assert (labels["feh"][kind == "metal_poor"] < -1.8).all()
    assert (labels["feh"][kind == "metal_rich"] > 0.8).all()
    assert (np.abs(labels["alfe"][kind == "extreme_al"]) >= 0.6).all()
    f = spectra.flux("HR21")
    j = pixel(spectra, "HR21", 8542.09)
    # Emission fills in the Ca II core (up to the RV shift: look at the band's minimum).
    core = np.array([f[i, j - 40 : j + 40].min() for i in range(len(f))])
    assert np.median(core[kind == "emission"]) > np.median(core[kind == "metal_rich"]) + 0.1
    # Badly normalised spectra: the continuum ends stray from 1.
    ends = np.abs(np.median(f[:, :300], axis=1) - np.median(f[:, -300:], axis=1))
    assert np.median(ends[kind == "bad_norm"]) > 3 * np.median(ends[kind == "metal_poor"]) + 0.05


def test_emission_strength_sets_how_far_the_cores_are_filled():
    depth = {}
    for strength in ((0.05, 0.15), (0.3, 1.5)):
        spectra, labels = make_giraffe_survey(70, setups="HR21", population="edge", snr=None, random_state=4,
                                              rv_scale=0.0, emission_strength=strength)
        emitting = np.asarray(labels["edge_kind"]) == "emission"
        j = pixel(spectra, "HR21", 8542.09)
        depth[strength] = spectra.flux("HR21")[emitting, j]
        # the same stars (the labels do not depend on the strength)
        assert np.asarray(labels["teff"]).sum() == pytest.approx(
            np.asarray(make_giraffe_survey(70, setups="HR21", population="edge", snr=None, random_state=4,
                                           rv_scale=0.0)[1]["teff"]).sum())
    weak, strong = depth[(0.05, 0.15)], depth[(0.3, 1.5)]
    # weak emission partly fills the Ca II core (still an absorption line); strong emission more
    assert np.all(weak < 0.8) and np.all(strong > weak)
    with pytest.raises(ValueError, match="emission_strength must be a range"):
        make_giraffe_survey(5, emission_strength=(0.3, 0.1))


def test_mixed_population_fraction():
    _, labels = make_giraffe_survey(
        1000, setups="HR10", population="mixed", snr=None, random_state=5, edge_fraction=0.2
    )
    assert np.mean(labels["population"] == "edge") == pytest.approx(0.2, abs=0.04)


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"setups": "HR9"}, "Unknown GIRAFFE setup 'HR9'"),
        ({"setups": ("HR10", "HR10")}, "twice"),
        ({"population": "halo"}, "population must be one of"),
        ({"snr": (50, 10)}, "snr must be"),
        ({"edge_fraction": 1.5}, "edge_fraction"),
        ({"rv_error": -1.0}, "rv_error"),
    ],
)
def test_survey_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_giraffe_survey(3, **kwargs)


@pytest.mark.parametrize("n", [0, -2, 2.5, True])
def test_survey_bad_n_stars(n):
    with pytest.raises(ValueError, match="n_stars must be a positive integer"):
        make_giraffe_survey(n)


def test_synthesize_bad_labels():
    with pytest.raises(ValueError, match=r"lack the column\(s\) \['alfe'\]"):
        synthesize_spectra({k: v for k, v in stars({}).items() if k != "alfe"})
    with pytest.raises(ValueError, match="labels row 1: teff = 12000.0 is outside"):
        synthesize_spectra(stars({}, {"teff": 12000.0}))
    with pytest.raises(ValueError, match="labels row 0: feh = nan"):
        synthesize_spectra(stars({"feh": np.nan}))
    with pytest.raises(TypeError, match="labels must be an astropy Table"):
        synthesize_spectra([[5777, 4.44, 0, 0, 0]])
    with pytest.raises(ValueError, match="rv of star 1 is 500.0"):
        synthesize_spectra(stars({}, {}), rv=[0.0, 500.0])
    with pytest.raises(ValueError, match="one value per star"):
        synthesize_spectra(stars({}, {}), snr=[10.0, 20.0, 30.0])
    with pytest.raises(ValueError, match="snr of star 0"):
        synthesize_spectra(stars({}), snr=-5.0)


def test_synthesize_accepts_table_with_ids_and_defaults():
    t = Table({k: [v] for k, v in SUN.items() if k not in ("ali", "vmic")})
    t["id"] = ["sun"]
    s = synthesize_spectra(t, setups="HR15N")
    assert s.ids.tolist() == ["sun"]
    # Default A(Li) is the solar 1.05 and vmic ~1 km/s: the same spectrum as the Sun's.
    ref = synthesize_spectra(stars({"vmic": float(default_vmic(5777.0, 4.44))}), setups="HR15N")
    np.testing.assert_allclose(s.flux("HR15N"), ref.flux("HR15N"), atol=1e-6)


def test_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("SKSTELLAR_CACHE", str(tmp_path / "env"))
    a, la = make_giraffe_survey(20, setups=("HR10", "HR21"), random_state=3, cache=True)
    files = list((tmp_path / "env").glob("giraffe_survey_20_*.npz"))
    assert len(files) == 1
    b, lb = make_giraffe_survey(20, setups=("HR10", "HR21"), random_state=3, cache=True)
    assert b.setups == a.setups and b.meta.colnames == a.meta.colnames and lb.colnames == la.colnames
    for s in a.setups:
        np.testing.assert_array_equal(a.flux(s), b.flux(s))
        np.testing.assert_array_equal(a.error(s), b.error(s))
        np.testing.assert_array_equal(a.wavelength(s), b.wavelength(s))
    for c in la.colnames:
        assert (la[c] == lb[c]).all()
    # Other arguments, other file; an explicit folder overrides the variable.
    make_giraffe_survey(20, setups="HR10", random_state=3, cache=tmp_path / "own")
    assert len(list((tmp_path / "own").glob("*.npz"))) == 1
    with pytest.raises(ValueError, match="cache needs an integer random_state"):
        make_giraffe_survey(5, random_state=None, cache=True)


def test_lines_sit_where_real_lines_sit(shared_data):
    # The real Gaia-ESO HR21 spectrum of an F/G dwarf (template Teff ~6600 K, S/N 59):
    # a model of similar labels at the catalogue RV follows it closely; moved by
    # 100 km/s it does not.
    from astropy.io import fits

    path = shared_data / "spectra" / "ges_giraffe_HR21_19235180+0048006.fits"
    with fits.open(path) as h:
        real = h["normalised_spectrum"].data.astype(np.float64)
        rv = float(h["velclass"].data["VEL"][0])
    f_dwarf = {"teff": 6000.0, "logg": 4.0, "feh": -0.5, "mgfe": 0.1}
    s = synthesize_spectra(stars(f_dwarf, f_dwarf), setups="HR21", rv=[rv, rv + 100.0])
    w = s.wavelength("HR21")
    m = (w > 8480) & (w < 8975)
    r = [np.corrcoef(s.flux("HR21")[i, m], real[m])[0, 1] for i in range(2)]
    assert r[0] > 0.75 and r[1] < 0.4, r
