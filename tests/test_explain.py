"""skstellar.explain: saliency against finite differences, on mock spectra line by line, plots, errors."""

import numpy as np
import pytest
from astropy.table import Table
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from skstellar.datasets import synthesize_spectra
from skstellar.explain import (
    SaliencyMap,
    default_lines,
    line_attribution,
    plot_saliency,
    saliency,
    saliency_correlation,
)
from skstellar.models import CNNLabelRegressor
from skstellar.preprocessing import LineMasker, giraffe_preprocessor, lithium_preprocessor

LABELS = ["teff", "logg", "feh", "mgfe", "alfe"]
TINY = dict(filters=(2,), kernel_size=5, dense_units=(4,), max_epochs=3, n_models=2, n_keep=2)
MG_I = [5528.41, 8717.81, 8736.02, 8806.75]
AL_I = [5557.06, 8772.87, 8773.90]


# ---------------------------------------------------------------------------------------- small arrays
@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    X = (1 - 0.4 * rng.random((60, 48))).astype(np.float32)
    y = np.column_stack([5000 + 3000 * X[:, 10] - 2000 * X[:, 30], X[:, 20] - X[:, 5]])
    reg = CNNLabelRegressor(**TINY, random_state=0, label_names=["teff", "feh"]).fit(X, y)
    return X, reg


def test_saliency_matches_central_finite_differences_of_predict(small):
    X, reg = small
    spectra, pixels = X[:4], [0, 5, 10, 20, 30, 47]
    smap = saliency(reg, spectra, per="spectrum")
    assert smap.values.shape == (4, 2, 48) and smap.values.dtype == np.float32
    h = 1e-3
    for pixel in pixels:
        up, down = spectra.astype(np.float64), spectra.astype(np.float64)
        up[:, pixel] += h
        down[:, pixel] -= h
        fd = (reg.predict(up) - reg.predict(down)) / (2 * h)  # (4, 2)
        # float32 network: compare on the scale of each label's map
        scale = np.abs(smap.values).max(axis=(0, 2))
        assert (np.abs(smap.values[:, :, pixel] - fd) < 2e-3 * scale).all(), (pixel, smap.values[:, :, pixel], fd)


def test_mean_member_and_spectrum_maps_agree(small):
    X, reg = small
    mean = saliency(reg, X, batch_size=7)
    per_spectrum = saliency(reg, X, per="spectrum")
    per_member = saliency(reg, X, per="member")
    np.testing.assert_allclose(per_spectrum.values.mean(axis=0), mean.values, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(per_member.values.mean(axis=0), mean.values, rtol=1e-4, atol=1e-6)
    assert per_member.values.shape == (2, 2, 48)
    one = saliency(reg, X, labels="feh", members=1)
    np.testing.assert_allclose(one.values[0], per_member.values[1, 1], rtol=1e-4, atol=1e-6)
    assert one.labels == ("feh",) and one.units == ("dex",) and one.wavelength_unit == "pixel"
    table = per_member.to_table()
    assert table["teff"].shape == (48, 2) and str(table["teff"].unit) == "K"


def test_traced_gradient_is_reused_and_a_refit_model_gets_its_own(small):
    from sklearn.base import clone

    from skstellar.explain._saliency import _gradient_function

    X, reg = small
    members, labels = np.arange(len(reg.members_)), [0, 1]
    assert _gradient_function(reg, members, labels) is _gradient_function(reg, members, labels)
    model = clone(reg)
    first = saliency(model.fit(X, X[:, :2] * [1000.0, 1.0]), X[:5]).values
    second = saliency(model.fit(X, X[:, 40:42] * [1000.0, 1.0]), X[:5]).values  # same object, refit
    fresh = saliency(clone(reg).fit(X, X[:, 40:42] * [1000.0, 1.0]), X[:5]).values
    np.testing.assert_allclose(second, fresh, rtol=1e-5, atol=1e-7)
    assert not np.allclose(first, second, rtol=0.1)


def test_pipeline_pixels_get_the_stitcher_wavelengths_through_a_pass_through_filter(small):
    from skstellar.filters import TSNESimilarityFilter
    from skstellar.preprocessing import SetupStitcher

    X, reg = small
    wave = 8700.0 + 0.1 * np.arange(48)
    pipe = Pipeline([("stitch", SetupStitcher(wavelength=wave).fit(X)),
                     ("similarity", TSNESimilarityFilter(**TSNESimilarityFilter._get_test_params()).fit(X)),
                     ("cnn", reg)])
    smap = saliency(pipe, X)
    np.testing.assert_array_equal(smap.wavelength, wave)
    assert set(smap.setup) == {"spectrum"} and smap.wavelength_unit == "Angstrom"
    np.testing.assert_allclose(smap.values, saliency(reg, X).values, rtol=1e-5, atol=1e-7)
    unknown = Pipeline([("stitch", pipe[0]), ("scale", StandardScaler().fit(X)), ("cnn", reg)])
    with pytest.raises(ValueError, match="step 'scale' \\(StandardScaler\\) is neither"):
        saliency(unknown, X)


def test_bad_input_is_named(small):
    X, reg = small
    with pytest.raises(NotFittedError):
        saliency(CNNLabelRegressor(), X)
    with pytest.raises(TypeError, match="must end in a CNNLabelRegressor; its last step 'standardscaler'"):
        saliency(make_pipeline(StandardScaler().fit(X)), X)
    with pytest.raises(TypeError, match="CNNLabelRegressor or a Pipeline"):
        saliency(StandardScaler().fit(X), X)
    with pytest.raises(ValueError, match=r"unknown label\(s\) \['mgfe'\]; the model predicts \['teff', 'feh'\]"):
        saliency(reg, X, labels=["mgfe"])
    with pytest.raises(ValueError, match="fitted on 48 pixels"):
        saliency(reg, X[:, :40])
    with pytest.raises(ValueError, match="per must be one of"):
        saliency(reg, X, per="star")
    with pytest.raises(ValueError, match="members must be 'kept', a position"):
        saliency(reg, X, members=5)
    with pytest.raises(ValueError, match="NaN or inf in 1 spectra"):
        saliency(reg, np.where(np.arange(60)[:, None] == 3, np.nan, X))
    smap = saliency(reg, X)
    with pytest.raises(ValueError, match="pixel indices"):
        line_attribution(smap)
    with pytest.raises(ValueError, match="unknown label 'alfe'"):
        plot_saliency(smap, labels=["alfe"])


def test_line_table_without_wavelength_or_species_is_named():
    wave = np.arange(8800.0, 8810.0, 0.1)
    smap = SaliencyMap(np.ones((1, wave.size)), wavelength=wave, setup=np.full(wave.size, "HR21"), labels=["mgfe"],
                       units=["dex"], per="mean", members=np.arange(1), mean_flux=np.ones(wave.size),
                       n_spectra=1, wavelength_unit="Angstrom")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['species'\].*has \['wavelength', 'element'\]"):
        line_attribution(smap, lines=Table({"wavelength": [8806.75], "element": ["Mg"]}))
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['wavelength', 'species'\]"):
        saliency_correlation(smap, lines={"wave": [8806.75]})
    table = line_attribution(smap, lines={"wavelength": [8806.75, 6000.0], "species": ["Mg I", "X I"]})
    assert table["species"].tolist() == ["Mg I"]  # a line the map does not cover is left out


def test_default_line_table_holds_the_named_lines():
    lines = default_lines()
    for wavelength, species in [*((w, "Mg I") for w in MG_I), *((w, "Al I") for w in AL_I), (6707.8, "Li I"),
                                (6562.8, "H I"), (8498.02, "Ca II"), (8542.09, "Ca II"), (8662.14, "Ca II")]:
        assert ((lines["species"] == species) & (np.abs(lines["wavelength"] - wavelength) < 0.005)).sum() == 1
    assert set(lines["setup"]) == {"HR10", "HR15N", "HR21"}
    for species in ("Fe I", "Ca I", "Si I", "Ti I", "Ni I"):
        assert (lines["species"] == species).sum() >= 5


# ---------------------------------------------------------------------------------------- LineMasker
def test_line_masker_masks_star_by_star_and_leaves_its_input_alone():
    from skstellar.preprocessing import RadialVelocityCorrector
    from skstellar.spectra import SpectralSet

    wave = np.arange(8800.0, 8813.0, 0.05)
    flux = np.full((2, wave.size), 0.7, dtype=np.float32)
    s = SpectralSet.from_arrays({"HR21": (wave, flux)}, meta={"rv": [0.0, 100.0]})
    rest = RadialVelocityCorrector().fit_transform(s)
    out = LineMasker(lines=[8806.75], width=0.3).fit_transform(rest)
    for star in range(2):
        masked = out.flux("HR21")[star] == 1.0
        assert np.array_equal(masked, np.abs(rest.wavelength("HR21")[star] - 8806.75) <= 0.3)
    assert (s.flux("HR21") == 0.7).all()
    assert not np.array_equal(out.flux("HR21")[0] == 1.0, out.flux("HR21")[1] == 1.0)
    with pytest.raises(ValueError, match="lines must be a non-empty 1-D sequence of finite"):
        LineMasker(lines=[np.nan]).fit(flux)


# ---------------------------------------------------------------------------------------- mock survey
@pytest.fixture(scope="module")
def mock():
    """Mock GIRAFFE HR10 + HR21 spectra of stars whose labels are drawn independently of each other.

    Drawn independently (not from the disk population, where [Mg/Fe] falls with [Fe/H] and the
    network reads [Mg/Fe] partly off the iron lines: saliency_correlation shows that), so that each
    abundance can only be read from its own lines. In the mock, [Mg/Fe] scales every alpha element
    (O, Ne, Mg, Si, S, Ca, Ti), so Ti and Si lines carry it too: at S/N 100 a Ti I line sometimes
    edges out Mg I 8736 in the line ranking (3 seeds tried: 1 of 2 at S/N 100, 3 of 3 at S/N 40,
    where the ridge penalty chosen on validation is larger and its map smoother).
    """
    rng = np.random.default_rng(1)
    n = 600
    labels = Table({"teff": rng.uniform(4200, 6400, n), "logg": rng.uniform(1.5, 4.6, n),
                    "feh": rng.uniform(-0.6, 0.3, n), "mgfe": rng.uniform(-0.2, 0.5, n),
                    "alfe": rng.uniform(-0.2, 0.5, n)})
    spectra = synthesize_spectra(labels, snr=40, random_state=1, n_jobs=1)
    spectra.meta["rv"] = 0.0
    pre = giraffe_preprocessor()
    X = pre.fit_transform(spectra)
    y = np.column_stack([labels[c] for c in LABELS])
    return pre, spectra, X, y


@pytest.fixture(scope="module")
def mock_model(mock):
    pre, spectra, X, y = mock
    cnn = CNNLabelRegressor(**TINY, random_state=1, label_names=LABELS).fit(X, y)
    return Pipeline([("pre", pre), ("cnn", cnn)]), spectra


def _near(wavelength, lines, window=0.3):
    return bool(np.min(np.abs(np.asarray(lines) - wavelength)) <= window)


def test_abundances_are_read_from_their_own_lines(mock_model):
    pipe, spectra = mock_model
    smap = saliency(pipe, spectra[:100], labels=["mgfe", "alfe"])
    assert smap.setup[0] == "HR10" and smap.setup[-1] == "HR21" and smap.wavelength_unit == "Angstrom"
    lines = default_lines()
    mg = lines["wavelength"][lines["species"] == "Mg I"]
    al = lines["wavelength"][lines["species"] == "Al I"]
    for label, own in (("mgfe", mg), ("alfe", al)):
        values = smap.values[smap.label_index(label)]
        peak = np.argmax(np.abs(values))
        assert _near(smap.wavelength[peak], own), (label, smap.wavelength[peak])
        assert values[peak] < 0  # a deeper line, a higher abundance
    assert _near(smap.wavelength[np.argmax(np.abs(smap.values[1]))], AL_I)
    ranked = line_attribution(smap)
    for label, species in (("mgfe", "Mg I"), ("alfe", "Al I")):
        top = ranked[ranked["label"] == label][0]
        assert top["species"] == species and top["sign"] == "-" and top["rank"] == 1, top
    alfe = ranked[ranked["label"] == "alfe"]
    assert set(alfe["species"][:3]) == {"Al I"}
    table = saliency_correlation(smap)
    assert table["label"].tolist() == ["mgfe", "alfe"]
    np.testing.assert_allclose([table["mgfe"][0], table["alfe"][1]], 1.0)
    assert (table["own"] + table["borrowed"] <= table["on_lines"] + 1e-9).all()
    assert table["own"][1] > table["own"][0] > 0


def test_lithium_abundance_is_read_from_the_li_line():
    # the science issue's check: mock HR15N spectra, A(Li) drawn independently of the other labels
    rng = np.random.default_rng(2)
    n = 400
    labels = Table({"teff": rng.uniform(4200, 6400, n), "logg": rng.uniform(1.5, 4.6, n),
                    "feh": rng.uniform(-0.6, 0.3, n), "mgfe": np.full(n, 0.1), "alfe": np.full(n, 0.1),
                    "ali": rng.uniform(0.0, 3.5, n)})
    spectra = synthesize_spectra(labels, setups=("HR15N",), snr=60, random_state=2, n_jobs=1)
    spectra.meta["rv"] = 0.0
    pre = lithium_preprocessor()
    X = pre.fit_transform(spectra)
    names = ["teff", "logg", "feh", "ali"]
    y = np.column_stack([labels[c] for c in names])
    cnn = CNNLabelRegressor(**TINY, random_state=2, label_names=names).fit(X, y)
    smap = saliency(Pipeline([("pre", pre), ("cnn", cnn)]), spectra[:100], labels="ali")
    values = smap.values[0]
    peak = np.argmax(np.abs(values))
    assert abs(smap.wavelength[peak] - 6707.8) <= 0.3 and values[peak] < 0, smap.wavelength[peak]
    top = line_attribution(smap)[0]
    assert top["species"] == "Li I" and top["sign"] == "-", top


def test_masked_lines_carry_no_saliency(mock, mock_model):
    pre, spectra, X, y = mock
    lines = default_lines()
    mg = np.asarray(lines["wavelength"][lines["species"] == "Mg I"])
    masker = LineMasker(lines=mg, width=0.5, wavelength=pre[-1].wavelength_).fit(X)
    X_masked = masker.transform(X)
    assert (X_masked[:, masker.pixel_mask(pre[-1].wavelength_)] == 1.0).all()
    # exact zeros do not depend on how well it trained: one member, one epoch
    cnn = CNNLabelRegressor(**{**TINY, "n_models": 1, "n_keep": 1, "max_epochs": 1}, random_state=1,
                            label_names=LABELS).fit(X_masked, y)
    pipe = Pipeline([("pre", pre), ("mask", masker), ("cnn", cnn)])
    smap = saliency(pipe, spectra[:100], labels="mgfe")
    near_mg = np.abs(smap.wavelength[:, None] - mg[None, :]).min(axis=1) <= 0.3
    assert near_mg.sum() > 20 and (smap.values[0, near_mg] == 0).all()
    unmasked = saliency(mock_model[0], spectra[:100], labels="mgfe")
    assert np.abs(unmasked.values[0, near_mg]).max() > 5 * np.abs(smap.values[0]).mean()
    assert (line_attribution(smap)["species"][0]) != "Mg I"


def test_plot_saliency_marks_the_lines(mock_model):
    import matplotlib

    matplotlib.use("Agg")
    pipe, spectra = mock_model
    smap = saliency(pipe, spectra[:20], labels=["mgfe", "alfe"])
    fig = plot_saliency(smap)
    assert len(fig.axes) == 3 * 2  # spectrum + 2 labels, HR10 and HR21 side by side
    marked = sorted({round(float(artist.get_xdata()[0]), 2) for ax in fig.axes[:2] for artist in ax.get_lines()
                     if artist.get_gid() == "line-marker"})
    lines = default_lines()
    covered = np.zeros(len(lines), dtype=bool)
    for setup in ("HR10", "HR21"):
        wave = smap.wavelength[smap.setup == setup]
        covered |= (lines["wavelength"] >= wave.min()) & (lines["wavelength"] <= wave.max())
    expected = lines["wavelength"][np.isin(lines["species"], ["Mg I", "Al I", "Li I", "H I", "Ca II"]) & covered]
    assert marked == sorted(np.round(expected, 2).tolist())
    assert {5528.41, 8806.75, 8773.9, 8542.09} <= set(marked)
    chosen = plot_saliency(smap, labels=["alfe"], lines=Table({"wavelength": [8773.9], "species": ["Al I"]}))
    xs = [artist.get_xdata()[0] for ax in chosen.axes for artist in ax.get_lines()
          if artist.get_gid() == "line-marker"]
    assert xs == [8773.9, 8773.9]  # the spectrum row and the alfe row of HR21
    assert fig.axes[2].get_ylabel().startswith("mgfe") and "dex" in fig.axes[2].get_ylabel()


def test_import_does_not_load_tensorflow():
    import subprocess
    import sys

    code = ("import sys, skstellar.explain\n"
            "print(','.join(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
