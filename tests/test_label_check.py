"""The generative check on the labels: SpectrumEmulator and the filter's label_check."""

import copy

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline

from skstellar import StarFlag, predict_table
from skstellar.datasets import make_giraffe_survey
from skstellar.filters import SpectrumEmulator, TSNESimilarityFilter
from skstellar.preprocessing import giraffe_preprocessor

LABELS = ("teff", "logg", "feh", "mgfe", "alfe")
WAVE = np.linspace(0.0, 1.0, 300)


def toy(n, rng, noise=0.01):
    """Two labels; one line whose depth is quadratic in them, one whose width follows the first."""
    labels = rng.uniform(-1, 1, size=(n, 2))
    depth = 0.4 + 0.15 * labels[:, :1] + 0.05 * labels[:, 1:] ** 2
    flux = 1 - depth * np.exp(-0.5 * ((WAVE - 0.3) / 0.01) ** 2)
    flux -= 0.2 * np.exp(-0.5 * ((WAVE - 0.7) / (0.01 + 0.002 * (1 + labels[:, :1]))) ** 2)
    return labels, flux + noise * rng.normal(size=flux.shape)


def emission(flux, centre=0.3, height=0.1):
    return flux + height * np.exp(-0.5 * ((WAVE - centre) / 0.008) ** 2)


@pytest.fixture(scope="module")
def toy_emulator():
    rng = np.random.default_rng(1)
    labels, flux = toy(600, rng)
    # refine=0: the toy has one line per label, so a label change could absorb a core's emission;
    # real spectra have hundreds (the mock-survey tests below use the default refine=2).
    return SpectrumEmulator(refine=0, random_state=0).fit(labels, flux), rng


def test_emulator_reproduces_noise_free_quadratic_spectra():
    rng = np.random.default_rng(0)
    labels = rng.uniform(-1, 1, size=(200, 3))
    basis = rng.normal(size=(10, 50))
    features = np.column_stack([np.ones(200), labels, labels**2, labels[:, :1] * labels[:, 1:2],
                                labels[:, :1] * labels[:, 2:], labels[:, 1:2] * labels[:, 2:]])
    flux = 1 + 0.01 * features @ basis
    emulator = SpectrumEmulator(alpha=0.0, random_state=0).fit(labels, flux)
    new = rng.uniform(-1, 1, size=(5, 3))
    new_features = np.column_stack([np.ones(5), new, new**2, new[:, :1] * new[:, 1:2],
                                    new[:, :1] * new[:, 2:], new[:, 1:2] * new[:, 2:]])
    np.testing.assert_allclose(emulator.predict(new), 1 + 0.01 * new_features @ basis, atol=1e-10)
    assert emulator.coefficients_.shape == (10, 50)


def test_thresholds_flag_the_contamination_of_the_training_spectra(toy_emulator):
    emulator, _ = toy_emulator
    ratio = np.max([np.asarray(emulator.training_scores_[name]) / base / factor
                    for name, (base, factor) in emulator.thresholds_.items()], axis=0)
    assert np.sum(ratio > 1) == int(np.floor(emulator.contamination * 600))
    # Alike spectra score about 1 per pixel.
    assert 0.8 < np.median(emulator.training_scores_["residual"]) < 1.2


def test_new_alike_spectra_pass_and_emission_cores_fail(toy_emulator):
    emulator, rng = toy_emulator
    labels, flux = toy(400, rng)
    alike = emulator.explains(labels, flux)
    assert alike.mean() >= 0.95
    # An emission core filling a tenth of the line (10 sigma at its peak, 4 pixels): flagged.
    assert not emulator.explains(labels, emission(flux)).any()
    scores = emulator.score_spectra(labels[:20], emission(flux[:20]), wavelength=WAVE, regions={"line": [0.3]},
                                    half_width=0.02)
    assert np.all(np.abs(np.asarray(scores["local_wavelength"]) - 0.3) < 0.02)
    assert np.all(np.asarray(scores["line"]) > 3 * np.asarray(scores["residual"]))


def test_a_hole_the_cleaner_filled_is_not_held_against_the_labels(toy_emulator):
    emulator, rng = toy_emulator
    labels, flux = toy(50, rng)
    holed = flux.copy()
    line = np.abs(WAVE - 0.3) < 0.012
    holed[:, line] = 1.0  # a zero-flux run over the line core, set to the continuum by the cleaner
    assert emulator.explains(labels, holed).mean() >= 0.9
    # The same pixels raised by a varying amount are not a filled hole: flagged.
    raised = flux.copy()
    raised[:, line] = 1.0 + 0.001 * np.arange(line.sum())
    assert not emulator.explains(labels, raised).any()


def test_label_errors_keep_honest_errors_from_being_flagged(toy_emulator):
    emulator, rng = toy_emulator
    labels, flux = toy(400, rng, noise=0.003)
    sigma = np.array([0.1, 0.02])
    off = labels + sigma * rng.normal(size=labels.shape)
    naive = emulator.explains(off, flux)
    scores = emulator.score_spectra(off, flux, label_errors=np.tile(sigma, (400, 1)))
    honest = emulator.explains(off, flux, scores=scores)
    assert naive.mean() < 0.6 and honest.mean() > 0.93, (naive.mean(), honest.mean())
    assert not emulator.explains(off, emission(flux, height=0.2), scores=emulator.score_spectra(
        off, emission(flux, height=0.2), label_errors=np.tile(sigma, (400, 1)))).any()


def test_refining_the_labels_forgives_their_errors_not_emission(toy_emulator):
    emulator, rng = toy_emulator
    labels, flux = toy(400, rng, noise=0.003)
    off = labels + np.array([0.1, 0.02]) * rng.normal(size=labels.shape)
    refining = copy.deepcopy(emulator).set_params(refine=2)
    assert emulator.explains(off, flux).mean() < 0.6
    assert refining.explains(off, flux).mean() > 0.93
    # emission narrower than the line changes its shape, which no depth can mimic
    narrow = flux + 0.15 * np.exp(-0.5 * ((WAVE - 0.3) / 0.004) ** 2)
    assert refining.explains(off, narrow).mean() < 0.05


def test_scores_do_not_depend_on_the_batch_or_threads(toy_emulator):
    emulator, rng = toy_emulator
    labels, flux = toy(600, rng)
    whole = emulator.score_spectra(labels, flux, label_errors=np.full(labels.shape, 0.05), n_jobs=2)
    for name in ("residual", "local"):
        parts = np.concatenate([np.asarray(emulator.score_spectra(
            labels[i:i + 37], flux[i:i + 37], label_errors=np.full((len(labels[i:i + 37]), 2), 0.05))[name])
            for i in range(0, 600, 37)])
        np.testing.assert_array_equal(np.asarray(whole[name]), parts)


def test_nan_labels_are_not_judged(toy_emulator):
    emulator, rng = toy_emulator
    labels, flux = toy(3, rng)
    labels[1, 0] = np.nan
    scores = emulator.score_spectra(labels, flux)
    assert np.isnan(scores["residual"][1]) and scores["local_pixel"][1] == -1
    assert np.isfinite(scores["residual"][[0, 2]]).all()
    assert emulator.explains(labels, flux).tolist() == [True, False, True]


def test_bad_input_is_named(toy_emulator):
    emulator, rng = toy_emulator
    labels, flux = toy(3, rng)
    with pytest.raises(ValueError, match="does not match 3 label rows and the 300 pixels"):
        emulator.score_spectra(labels, flux[:, :-1])
    with pytest.raises(ValueError, match="wavelength has shape"):
        emulator.score_spectra(labels, flux, wavelength=WAVE[:10])
    with pytest.raises(ValueError, match="label_errors of shape"):
        emulator.score_spectra(labels, flux, label_errors=np.ones((3, 5)))
    with pytest.raises(ValueError, match="n_folds=5"):
        SpectrumEmulator().fit(labels, flux)


# -- on the mock survey, through the filter and predict_table ---------------------------------
@pytest.fixture(scope="module")
def mock_chain():
    spectra, truth = make_giraffe_survey(900, population="disk", snr=(30, 150), random_state=21)
    train, test = spectra[:800], spectra[800:]
    y = np.column_stack([np.asarray(truth[k], float) for k in LABELS])
    pipe = make_pipeline(
        giraffe_preprocessor(),
        TSNESimilarityFilter(n_components=20, random_state=0, tsne_params={"n_iter": 100}),
        RidgeCV(alphas=np.logspace(-3, 3, 7)),
    ).fit(train, y[:800])
    return pipe, test, y[800:]


def test_weak_emission_is_flagged_by_the_label_check_on_the_mock_survey(mock_chain):
    pipe, test, y_test = mock_chain
    preprocess, filt = pipe[0], pipe[1]
    emitters, truth = make_giraffe_survey(60, population="edge", snr=(30, 150), random_state=4,
                                          emission_strength=(0.05, 0.15))
    emitting = np.asarray(truth["edge_kind"]) == "emission"
    emitters = emitters[emitting]
    labels = np.column_stack([np.asarray(truth[k], float) for k in LABELS])[emitting]
    errors = np.tile([25.0, 0.07, 0.03, 0.015, 0.04], (len(labels), 1))
    # Even with their true labels, emission-filled cores are not explained...
    check = filt.check_labels(preprocess.transform(emitters), labels, label_errors=errors,
                              wavelength=preprocess[-1].wavelength_)
    assert np.mean(~np.asarray(check["labels_explained"])) >= 0.9
    # ...and the worst residual sits on a line given emission in the mock (Ca II, Mg I, Fe I).
    lines = np.array([8498.02, 8542.09, 8662.14, 5528.41, 5371.49, 5397.13])
    worst = np.asarray(check["local_wavelength"])[~np.asarray(check["labels_explained"])]
    assert np.mean(np.min(np.abs(worst[:, None] - lines[None, :]), axis=1) < 1.5) >= 0.9
    # Alike stars with labels this good are explained.
    check = filt.check_labels(preprocess.transform(test), y_test, label_errors=np.tile(errors[0], (100, 1)))
    assert np.mean(np.asarray(check["labels_explained"])) >= 0.97


def test_predict_table_reports_the_label_check(mock_chain):
    pipe, test, _ = mock_chain
    table = predict_table(pipe, test)
    for column in ("explain_residual", "explain_local", "explain_local_wavelength", "explain_ca_triplet",
                   "explain_mg", "explain_al", "labels_explained"):
        assert column in table.colnames
    assert np.isnan(table["explain_halpha"]).all()  # HR10 + HR21 do not cover H alpha
    unexplained = ~np.asarray(table["labels_explained"])
    assert not np.any(np.asarray(table["training_like"])[unexplained])
    assert np.all((np.asarray(table["flags"])[unexplained] & int(StarFlag.LABELS_UNEXPLAINED)) != 0)
    assert all("labels do not explain the spectrum" in s for s in np.asarray(table["status"])[unexplained])
    # A badly normalised copy of a star: its labels cannot explain it.
    from skstellar.datasets._observe import distort_continuum

    broken = test[:5]
    for setup in broken.setups:
        flux = broken.flux(setup)
        distort_continuum(flux, np.random.default_rng(0))
    row = predict_table(pipe, broken)
    assert not np.any(row["labels_explained"])


def test_filter_without_labels_has_no_label_check(mock_chain):
    pipe, test, y_test = mock_chain
    X = pipe[0].transform(test)
    filt = TSNESimilarityFilter(n_components=5, random_state=0, tsne_params={"n_iter": 100}).fit(X)
    assert filt.label_check_ is None
    with pytest.raises(ValueError, match="has no label check"):
        filt.check_labels(X, y_test)
    off = TSNESimilarityFilter(n_components=5, label_check=None, random_state=0,
                               tsne_params={"n_iter": 100}).fit(X, y_test)
    assert off.label_check_ is None
    custom = TSNESimilarityFilter(n_components=5, label_check=SpectrumEmulator(window=5), random_state=0,
                                  tsne_params={"n_iter": 100}).fit(X, y_test)
    assert custom.label_check_.window == 5 and custom.label_check is not custom.label_check_
    with pytest.raises(ValueError, match="2 labels per spectrum given, but the label check was fitted on 5"):
        custom.check_labels(X, y_test[:, :2])


def test_fit_labels_recovers_labels_from_a_poor_start():
    rng = np.random.default_rng(3)
    labels, flux = toy(800, rng, noise=0.005)
    emulator = SpectrumEmulator(random_state=0).fit(labels[:600], flux[:600])
    start = labels[600:] + 0.2 * rng.normal(size=(200, 2))
    start[5] = np.nan
    fitted = emulator.fit_labels(flux[600:], start)
    assert np.isnan(fitted[5]).all() and np.isfinite(np.delete(fitted, 5, axis=0)).all()
    # The first label sets a line depth and a width: well determined. (The second enters squared
    # only, so its sign is not in the spectrum: no test of it.)
    error = np.delete(fitted[:, 0] - labels[600:, 0], 5)
    assert np.std(error) < 0.35 * np.std(np.delete(start[:, 0] - labels[600:, 0], 5))
    with pytest.raises(ValueError, match="fit_labels: flux of shape"):
        emulator.fit_labels(flux[600:, :-1], start)


def test_fit_labels_ignores_a_cosmic_ray_hit_in_a_line_core(monkeypatch):
    from skstellar.filters import _emulator

    rng = np.random.default_rng(4)
    labels, flux = toy(700, rng, noise=0.005)
    emulator = SpectrumEmulator(random_state=0).fit(labels[:600], flux[:600])
    core = int(np.argmin(np.abs(WAVE - 0.3)))
    hit = flux[600:].copy()
    hit[:, core] += 0.3  # under the cleaner's median + 5 sigma: it stays in the spectrum
    clean_fit = emulator.fit_labels(flux[600:], labels[600:])[:, 0]  # the depth's label (the other's sign is free)
    clipped = np.median(np.abs(emulator.fit_labels(hit, labels[600:])[:, 0] - clean_fit))
    monkeypatch.setattr(_emulator, "_CLIP", np.inf)
    pulled = np.median(np.abs(emulator.fit_labels(hit, labels[600:])[:, 0] - clean_fit))
    # measured: 0.003 against 0.076 (the label's range is -1..1)
    assert clipped < 0.01 and pulled > 5 * clipped

def test_sample_weight_counts_a_spectrum_that_many_times_and_favours_the_precise_ones():
    rng = np.random.default_rng(5)
    labels, flux = toy(400, rng, noise=0.005)
    weight = rng.integers(0, 4, size=400)
    weighted = SpectrumEmulator(random_state=0).fit(labels, flux, sample_weight=weight)
    repeated = SpectrumEmulator(random_state=0).fit(np.repeat(labels, weight, axis=0), np.repeat(flux, weight, axis=0))
    np.testing.assert_allclose(weighted.coefficients_, repeated.coefficients_, rtol=1e-7, atol=1e-10)
    # Half the training spectra ten times noisier: weights 1 / sigma**2 give a closer emulator.
    noise = np.where(np.arange(400) % 2, 0.05, 0.005)
    noisy = flux + noise[:, None] * rng.normal(size=flux.shape)
    truth_labels, truth_flux = toy(200, rng, noise=0.0)
    error = {
        name: np.sqrt(np.mean((SpectrumEmulator(random_state=0).fit(labels, noisy, sample_weight=w)
                               .predict(truth_labels) - truth_flux) ** 2))
        for name, w in (("equal", None), ("inverse variance", noise**-2.0))
    }
    assert error["inverse variance"] < 0.6 * error["equal"]
    with pytest.raises(ValueError, match="[Nn]egative"):
        SpectrumEmulator().fit(labels, flux, sample_weight=-np.ones(400))


def test_n_components_keeps_a_high_degree_emulator_from_learning_the_training_noise():
    rng = np.random.default_rng(6)
    labels, flux = toy(300, rng, noise=0.03)
    truth_labels, truth_flux = toy(200, rng, noise=0.0)
    error = {
        k: np.sqrt(np.mean((SpectrumEmulator(degree=5, alpha=1e-6, n_components=k, random_state=0)
                            .fit(labels, flux).predict(truth_labels) - truth_flux) ** 2))
        for k in (None, 6)
    }
    assert error[6] < 0.7 * error[None]
    with pytest.raises(ValueError, match="n_components=400 is more than the training set has"):
        SpectrumEmulator(n_components=400).fit(labels, flux)
