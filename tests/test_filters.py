"""TSNESimilarityFilter and predict_table: flags, calibration, pipeline pass-through, bad input."""

import joblib
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import BayesianRidge, Ridge
from sklearn.pipeline import make_pipeline

from skstellar import predict_table
from skstellar.filters import SimilarityMap, TSNESimilarityFilter, _scores
from skstellar.spectra import SpectralSet

N_PIX = 240
FAST = {"n_components": 10, "perplexity": 10, "random_state": 0,
        "tsne_params": {"n_iter": 150, "early_exaggeration_iter": 75}}


def _mock(rng, labels, snr=60.0):
    """Normalised spectra: 12 resolved Gaussian lines whose depths follow (teff, feh) like real lines do.

    labels : (n, 2) in units where the training box is [-1, 1]^2.
    """
    pix = np.arange(N_PIX)
    line_rng = np.random.default_rng(7)  # the same line list for every call
    centres = line_rng.uniform(5, N_PIX - 5, size=12)
    t_sens, f_sens = line_rng.uniform(-0.6, 0.6, size=12), line_rng.uniform(0.3, 0.8, size=12)
    depth = 0.35 * np.exp(t_sens * labels[:, :1] + f_sens * labels[:, 1:2])  # (n, 12)
    depth = np.clip(depth, 0, 0.95)
    profiles = np.exp(-0.5 * ((pix - centres[:, None]) / 3.0) ** 2)  # (12, p), resolved lines
    flux = 1 - depth @ profiles
    return flux + rng.normal(0, 1 / snr, size=flux.shape)


@pytest.fixture(scope="module")
def survey():
    rng = np.random.default_rng(1)
    train_labels = rng.uniform(-1, 1, size=(300, 2))
    alike = _mock(rng, rng.uniform(-0.9, 0.9, size=(120, 2)))
    hot = _mock(rng, np.column_stack([rng.uniform(3.5, 4.5, 30), rng.uniform(-1, 1, 30)]))
    poor = _mock(rng, np.column_stack([rng.uniform(-1, 1, 30), rng.uniform(-5, -4, 30)]))
    emission = _mock(rng, rng.uniform(-0.9, 0.9, size=(30, 2)))
    emission += 0.6 * np.exp(-0.5 * ((np.arange(N_PIX) - rng.uniform(20, 220, size=(30, 1))) / 2.0) ** 2)
    tilted = _mock(rng, rng.uniform(-0.9, 0.9, size=(30, 2))) * np.linspace(0.8, 1.2, N_PIX)
    rich_rng = np.random.default_rng(11)  # its own stream: the other sets stay as they were
    rich = _mock(rich_rng, np.column_stack([rich_rng.uniform(-1, 1, 30), rich_rng.uniform(1.2, 1.5, 30)]))
    return {
        "train": _mock(rng, train_labels).astype(np.float32),
        "train_labels": train_labels,
        "alike": alike, "hot": hot, "poor": poor, "emission": emission, "tilted": tilted, "rich": rich,
    }


@pytest.fixture(scope="module")
def fitted(survey):
    return TSNESimilarityFilter(**FAST).fit(survey["train"])


@pytest.fixture(scope="module")
def test_set(survey):
    kinds = ["alike", "hot", "poor", "emission", "tilted", "rich"]
    X = np.vstack([survey[k] for k in kinds])
    kind = np.repeat(kinds, [len(survey[k]) for k in kinds])
    return X, kind


@pytest.fixture(scope="module")
def verdict(fitted, test_set):
    return fitted.embed(test_set[0])


def test_flags_unlike_spectra_and_keeps_alike_ones(verdict, test_set):
    _, kind = test_set
    outer = ~verdict.training_like
    assert outer[kind == "alike"].mean() <= 0.05
    for unlike in ("hot", "poor", "emission", "tilted", "rich"):
        assert outer[kind == unlike].mean() >= 0.8, unlike


def test_reports_which_score_flagged(verdict, test_set):
    _, kind = test_set
    # Unusual stars are far away in the map; broken spectra stand out by their PCA residual.
    assert verdict.map_outer[kind == "hot"].mean() >= 0.8
    assert verdict.map_outer[kind == "poor"].mean() >= 0.8
    assert verdict.residual_outer[kind == "emission"].mean() >= 0.8
    assert verdict.residual_outer[kind == "tilted"].mean() >= 0.8
    # Stars just outside the label box are far from every training spectrum in the PCA's signal components.
    assert verdict.pca_outer[kind == "rich"].mean() >= 0.8
    outer = verdict.score > 1
    np.testing.assert_array_equal(outer, verdict.map_outer | verdict.residual_outer | verdict.pca_outer)
    np.testing.assert_allclose(
        verdict.score,
        np.maximum.reduce([verdict.map_distance / verdict.map_threshold,
                           verdict.residual / verdict.residual_threshold,
                           verdict.pca_distance / verdict.pca_threshold]),
        rtol=1e-12,
    )


def test_pca_distance_is_whitened_in_the_signal_components(fitted, survey, verdict, test_set):
    # The toy spectra depend on 2 labels: a few components carry them, the rest is a noise floor.
    ev = fitted.pca_.explained_variance_
    k = fitted.n_signal_components_
    assert 2 <= k < fitted.n_components_
    assert np.all(ev[:k] > 2 * ev[-1]) and np.all(ev[k:] <= 2 * ev[-1])
    X, kind = test_set
    white = fitted.pca_.transform(X)[:, :k] / np.sqrt(ev[:k])
    train_white = fitted.training_coordinates_[:, :k] / np.sqrt(ev[:k])
    nearest = np.min(np.linalg.norm(white[:, None] - train_white[None], axis=2), axis=1)
    # Noise beyond the training spectra's RMS noise is expected to add sum_j noise^2 / ev_j to the
    # squared distance: it is taken off (the noise of each spectrum by DER_SNR).
    noise = _scores.project(fitted.pca_, X, fitted._noise_floor)[2]
    excess = np.maximum(noise**2 - fitted._reference_noise**2, 0) * np.sum(1 / ev[:k])
    assert 0.1 < np.mean(excess > 0) < 0.9  # both cases occur
    # atol: the filter projects in threaded chunks, the test all at once; the sqrt of a
    # near-cancelling difference turns their last-bit rounding into 1e-6 relative near 0
    np.testing.assert_allclose(verdict.pca_distance, np.sqrt(np.maximum(nearest**2 - excess, 0)),
                               rtol=1e-6, atol=1e-7)
    assert verdict.pca_outer[kind == "alike"].mean() <= 0.05
    # leave-one-out on the training set: to the nearest *other* training spectrum, never itself
    pairs = np.linalg.norm(train_white[:, None] - train_white[None], axis=2)
    np.fill_diagonal(pairs, np.inf)
    assert np.all(fitted.training_pca_distance_ <= pairs.min(axis=1) * (1 + 1e-6))
    assert np.median(fitted.training_pca_distance_ / pairs.min(axis=1)) > 0.5
    assert fitted.pca_threshold_ > 0
    fixed = TSNESimilarityFilter(**{**FAST, "n_signal_components": 5}).fit(survey["train"])
    assert fixed.n_signal_components_ == 5


def test_novelty_api_is_consistent(fitted, test_set, verdict):
    X, _ = test_set
    pred = fitted.predict(X)
    assert pred.dtype.kind == "i" and set(np.unique(pred)) == {-1, 1}
    np.testing.assert_array_equal(pred == 1, verdict.training_like)
    np.testing.assert_array_equal(fitted.score_samples(X), -verdict.score)
    np.testing.assert_array_equal(fitted.decision_function(X), 1 - verdict.score)
    assert fitted.offset_ == -1.0


def test_last_map_is_cached_and_recomputed_for_other_spectra(fitted, test_set, verdict):
    X, _ = test_set
    assert fitted.embed(X) is verdict  # predict + score_samples on the same X: one t-SNE run
    assert fitted.embed(X.astype(np.float32).astype(np.float64)) is not verdict  # other values
    assert fitted.embed(X) is not verdict  # the cache holds only the last map...
    np.testing.assert_array_equal(fitted.embed(X).score, verdict.score)  # ...and recomputing is exact


def test_threads_sharing_the_filter_get_their_own_maps(fitted, test_set):
    # A threaded Dask worker runs two chunks through one filter at once: the map cache must never
    # hand one chunk's map to the other.
    from concurrent.futures import ThreadPoolExecutor

    X, _ = test_set
    halves = [X[: len(X) // 2], X[len(X) // 2:]]
    serial = [fitted.embed(half).score for half in halves]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda i: (i % 2, fitted.embed(halves[i % 2]).score), range(8)))
    for which, score in results:
        np.testing.assert_array_equal(score, serial[which])


def test_pca_scores_do_not_depend_on_the_number_of_threads():
    # A Dask worker with one thread, a laptop, a 64-core node: the same spectra must get the same
    # PCA scores, which the joint t-SNE map would amplify into another verdict. At the size of the
    # GIRAFFE input a threaded gemm rounds differently with its number of threads.
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    X = (1 - 0.3 * rng.random((400, 8669))).astype(np.float32)
    pca = PCA(n_components=50, random_state=0).fit(X[:200])
    many = _scores.project(pca, X, 1e-3, n_jobs=-1)
    one = _scores.project(pca, X, 1e-3, n_jobs=None)
    for name, a, b in zip(("coordinates", "rms", "noise"), many, one):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_thresholds_come_from_the_training_map(fitted, survey):
    n = len(survey["train"])
    expected = int(np.floor(fitted.contamination * n))  # 3 of 300
    outliers = fitted.training_outliers()
    assert len(outliers) == expected
    assert np.all(np.diff(fitted.training_map_.score[outliers]) <= 0)  # strangest first
    np.testing.assert_array_equal(fitted.fit_predict(survey["train"]) == -1,
                                  np.isin(np.arange(n), outliers))
    table = fitted.flag_table()
    assert len(table) == n and table["training_like"].sum() == n - expected
    np.testing.assert_array_equal(table["training_twin"], np.arange(n))
    assert fitted.training_embedding_.shape == (n, 2)
    assert fitted.map_threshold_ == pytest.approx(table["map_threshold"][0])


def test_contamination_sets_the_training_fraction(survey):
    filt = TSNESimilarityFilter(**{**FAST, "contamination": 0.1}).fit(survey["train"])
    assert len(filt.training_outliers()) == 30


def test_training_outliers_finds_planted_broken_spectra(survey):
    X = survey["train"].copy()
    X[[5, 50, 150]] = survey["emission"][:3]
    filt = TSNESimilarityFilter(**FAST).fit(X)
    assert {5, 50, 150} <= set(filt.training_outliers().tolist())


def test_spectra_of_the_training_set_are_judged_leave_one_out(fitted, survey):
    X = survey["train"]
    mixed = np.vstack([X[:50], survey["alike"][:10]])
    v = fitted.embed(mixed)
    np.testing.assert_array_equal(v.training_twin, np.r_[np.arange(50), np.full(10, -1)])
    # their map distance is to the nearest *other* training spectrum, never ~0 to themselves
    assert 0.5 < np.median(v.map_distance[:50]) / np.median(v.map_distance[50:]) < 2
    np.testing.assert_array_equal(v.residual[:50], fitted.training_residual_[:50])
    np.testing.assert_array_equal(v.pca_distance[:50], fitted.training_pca_distance_[:50])


def test_out_of_fold_residuals_do_not_flag_alike_spectra(fitted, survey):
    # An in-sample residual would be biased low and flag far more than 1 % of alike spectra.
    residual = fitted.embed(survey["alike"]).residual
    assert np.mean(residual > fitted.residual_threshold_) <= 0.05
    assert np.median(fitted.training_residual_) == pytest.approx(np.median(residual), rel=0.1)


def test_residual_is_in_units_of_the_noise(fitted, survey):
    rng = np.random.default_rng(5)
    labels = rng.uniform(-0.9, 0.9, size=(60, 2))
    v_snr60, v_snr15 = fitted.embed(_mock(rng, labels)), fitted.embed(_mock(rng, labels, snr=15.0))
    # a plain RMS residual would grow 4x; relative to each spectrum's own noise it stays ~1
    # (DER_SNR over-estimates the noise of high-S/N spectra a little: lines add curvature)
    assert 0.5 <= np.median(v_snr60.residual) <= np.median(v_snr15.residual) <= 1.5
    assert v_snr15.residual_outer.mean() <= 0.1
    # nor by their PCA coordinates: the signal components are far above the noise
    assert v_snr15.pca_outer.mean() <= 0.1


def test_input_order_does_not_change_the_verdict(fitted, test_set, verdict):
    X, _ = test_set
    perm = np.random.default_rng(3).permutation(len(X))
    np.testing.assert_array_equal(fitted.embed(X[perm]).score, verdict.score[perm])


def test_same_random_state_same_result_after_pickling(fitted, test_set, verdict, survey, tmp_path):
    X, _ = test_set
    refit = TSNESimilarityFilter(**FAST).fit(survey["train"])
    np.testing.assert_array_equal(refit.embed(X).score, verdict.score)
    joblib.dump(fitted, tmp_path / "filter.joblib")
    loaded = joblib.load(tmp_path / "filter.joblib")
    assert loaded._last_map.entry == (None, None)  # the cached map is not pickled
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))


def test_batches_agree_with_one_joint_map(survey, fitted, test_set, verdict):
    X, kind = test_set
    batched = TSNESimilarityFilter(**{**FAST, "batch_size": 90, "training_subsample": 200}).fit(survey["train"])
    v = batched.embed(X)
    assert set(np.unique(v.batch)) == {0, 1, 2}
    assert v.training_embedding.shape == (3, 200, 2) and len(v.training_index) == 200
    agree = np.mean(v.training_like == verdict.training_like)
    assert agree >= 0.9
    assert (~v.training_like)[kind == "hot"].mean() >= 0.8


def test_absolute_thresholds_and_map_only(fitted, survey, test_set):
    X, kind = test_set
    lenient = TSNESimilarityFilter(
        **{**FAST, "map_threshold": 1e6, "residual_threshold": 1e6, "pca_threshold": 1e6}
    ).fit(survey["train"])
    v = lenient.embed(X)
    assert v.training_like.all()
    np.testing.assert_array_equal(v.map_threshold, 1e6)
    np.testing.assert_array_equal(v.pca_threshold, 1e6)
    map_only = TSNESimilarityFilter(**{**FAST, "residual_threshold": None, "pca_threshold": None}).fit(survey["train"])
    v = map_only.embed(X)
    assert np.isnan(v.residual).all() and not v.residual_outer.any()
    assert np.isnan(v.pca_distance).all() and not v.pca_outer.any()
    assert map_only.training_residual_ is None and map_only.training_pca_distance_ is None
    assert np.isnan(map_only.pca_threshold_)
    # the thesis filter alone misses most broken spectra that the residual catches
    assert (~v.training_like)[kind == "hot"].mean() >= 0.8


def test_transform_passes_spectra_through_unchanged(fitted, survey, test_set):
    X, _ = test_set
    X32 = X.astype(np.float32)
    out = fitted.transform(X32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, X32)
    assert fitted.get_feature_names_out().shape == (N_PIX,)
    pipe = make_pipeline(TSNESimilarityFilter(**FAST), Ridge(alpha=1e-3)).fit(survey["train"], survey["train_labels"])
    alone = Ridge(alpha=1e-3).fit(survey["train"], survey["train_labels"])
    np.testing.assert_allclose(pipe.predict(X), alone.predict(X), rtol=1e-5)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_exact_neighbors_match_brute_force(n_jobs):
    from skstellar.filters._embed import exact_neighbors

    points = np.random.default_rng(2).normal(size=(700, 6))
    points[5] = points[9]  # an exact duplicate: still never its own neighbour
    indices, distances = exact_neighbors(points, 15, n_jobs)
    full = np.linalg.norm(points[:, None] - points[None], axis=2)
    np.fill_diagonal(full, np.inf)
    np.testing.assert_allclose(distances, np.sort(full, axis=1)[:, :15], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(np.sort(indices, axis=1), np.sort(np.argsort(full, axis=1)[:, :15], axis=1))
    assert not np.any(indices == np.arange(700)[:, None])
    assert indices[5, 0] == 9 and indices[9, 0] == 5 and distances[5, 0] == 0


def test_tables_and_results_are_shared_read_only(verdict):
    assert isinstance(verdict, SimilarityMap)
    with pytest.raises(ValueError, match="read-only"):
        verdict.score[0] = 0.0
    table = verdict.to_table()
    assert table.colnames[-1] == "training_like" and len(table) == len(verdict.score)


# -- bad input -------------------------------------------------------------------------------
def test_predict_before_fit():
    with pytest.raises(NotFittedError):
        TSNESimilarityFilter().predict(np.ones((3, 4)))


def test_wrong_number_of_pixels(fitted):
    with pytest.raises(ValueError, match=f"X has 10 features, but TSNESimilarityFilter is expecting {N_PIX}"):
        fitted.predict(np.ones((3, 10)))


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "inf")])
def test_non_finite_values_name_the_spectrum(fitted, survey, bad, word):
    X = survey["alike"][:5].copy()
    X[3, 17] = bad
    with pytest.raises(ValueError, match=rf"spectrum 3 \(row 3\) has a non-finite value \({word}\) at pixel 17"):
        fitted.predict(X)
    with pytest.raises(ValueError, match=r"spectrum 3 \(row 3\)"):
        TSNESimilarityFilter(**FAST).fit(X)


def test_non_finite_values_name_the_star_of_a_spectral_set(fitted, survey):
    flux = survey["alike"][:4].copy()
    flux[2, 5] = np.nan
    s = SpectralSet.from_arrays({"HR10": (np.arange(N_PIX, dtype=float) + 5000, flux)},
                                meta={"id": ["a", "b", "c", "d"]})
    with pytest.raises(ValueError, match=r"star 2 \(id 'c'\) has a non-finite value \(NaN\) at pixel 5"):
        fitted.transform(s)


def test_too_few_spectra_for_the_perplexity(survey):
    with pytest.raises(ValueError, match=r"at least 91 training spectra for perplexity=30.*got 50"):
        TSNESimilarityFilter().fit(survey["train"][:50])
    with pytest.raises(ValueError, match="training_subsample=20 is too small"):
        TSNESimilarityFilter(perplexity=10, training_subsample=20).fit(survey["train"][:100])


def test_reserved_tsne_params(survey):
    with pytest.raises(ValueError, match=r"tsne_params may not set \['perplexity'\]"):
        TSNESimilarityFilter(tsne_params={"perplexity": 5}).fit(survey["train"])


# -- predict_table -----------------------------------------------------------------------------
class _EnsembleRidge(Ridge):
    """A small regressor with the CNNLabelRegressor interface: label_names_, predict(return_std=)."""

    def fit(self, X, y):
        super().fit(X, y)
        self.label_names_ = np.array(["teff", "feh"])
        return self

    def predict(self, X, return_std=False):
        y = super().predict(X)
        return (y, np.full_like(y, 0.1) + np.abs(y) * 0.01) if return_std else y


def test_predict_table_keeps_every_spectrum_in_order(survey, test_set):
    X, kind = test_set
    pipe = make_pipeline(TSNESimilarityFilter(**FAST), _EnsembleRidge(alpha=1e-3))
    pipe.fit(survey["train"], survey["train_labels"])
    ids = np.array([f"star{i:03d}" for i in range(len(X))])
    s = SpectralSet.from_arrays({"HR10": (np.arange(N_PIX, dtype=float) + 5000, X)}, meta={"id": ids})
    table = predict_table(pipe, s)
    assert table.colnames == ["id", "teff", "e_teff", "feh", "e_feh", "training_like", "filter_score",
                              "map_distance", "map_outer", "residual", "residual_outer", "pca_distance", "pca_outer",
                              "explain_residual", "explain_local", "explain_local_pixel", "labels_explained",
                              "flags", "status"]
    assert len(table) == len(X)
    np.testing.assert_array_equal(table["id"], ids)
    y, std = pipe.predict(s, return_std=True)  # float32, as the SpectralSet holds them
    np.testing.assert_array_equal(table["teff"], y[:, 0])
    np.testing.assert_array_equal(table["e_feh"], std[:, 1])
    # the filter fitted with labels adds the label check: training-like needs both verdicts
    check = pipe[0].check_labels(X, y)
    np.testing.assert_array_equal(table["labels_explained"], check["labels_explained"])
    np.testing.assert_array_equal(table["training_like"], (pipe[0].predict(X) == 1) & check["labels_explained"])
    assert table["training_like"][kind == "hot"].mean() <= 0.2
    # labels of outer spectra are reported, flagged, not dropped
    assert np.isfinite(table["teff"][kind == "hot"]).all()


def test_predict_table_without_filter_or_std(survey):
    X = survey["alike"][:7]
    table = predict_table(make_pipeline(Ridge()).fit(survey["train"], survey["train_labels"]), X)
    assert table.colnames == ["id", "y0", "y1", "flags", "status"]
    assert set(table["status"]) == {"ok"} and not table["flags"].any()
    np.testing.assert_array_equal(table["id"], np.arange(7))
    single = predict_table(BayesianRidge().fit(survey["train"], survey["train_labels"][:, 0]), X)
    assert single.colnames == ["id", "y0", "e_y0", "flags", "status"]


def test_predict_table_with_two_filters_and_filter_only(survey):
    X = np.vstack([survey["alike"][:10], survey["hot"][:5]])
    pipe = make_pipeline(TSNESimilarityFilter(**FAST), TSNESimilarityFilter(**{**FAST, "residual_threshold": None}),
                         Ridge()).fit(survey["train"], survey["train_labels"])
    table = predict_table(pipe, X)
    first, second = (f"tsnesimilarityfilter-{i}_training_like" for i in (1, 2))
    explained = (f"tsnesimilarityfilter-{i}_labels_explained" for i in (1, 2))
    np.testing.assert_array_equal(table["training_like"],
                                  table[first] & table[second] & np.logical_and.reduce([table[e] for e in explained]))
    flags = predict_table(pipe[0], X)
    assert flags.colnames[:2] == ["id", "training_like"] and len(flags) == 15
    nested = make_pipeline(make_pipeline(pipe[0]), pipe[2])  # the filter inside a sub-pipeline
    alone = predict_table(nested, X)
    np.testing.assert_array_equal(alone["training_like"], table[first] & alone["labels_explained"])


def test_predict_table_with_the_cnn_ensemble(survey):
    pytest.importorskip("tensorflow")
    from skstellar.models import CNNLabelRegressor

    cnn = CNNLabelRegressor(**CNNLabelRegressor._get_test_params(), label_names=["teff", "feh"])
    pipe = make_pipeline(TSNESimilarityFilter(**FAST), cnn).fit(survey["train"], survey["train_labels"])
    X = np.vstack([survey["alike"][:6], survey["hot"][:4]])
    table = predict_table(pipe, X)
    assert table.colnames[:5] == ["id", "teff", "e_teff", "feh", "e_feh"]
    assert len(table) == 10 and (table["e_teff"] >= 0).all()
    assert table["training_like"][6:].sum() == 0


@pytest.mark.parametrize("make, match", [
    (lambda rng: np.ones((40, 30)), r"hold only 1 distinct ones.*perplexity=5 needs at least 16"),
    (lambda rng: 1e19 * (1 + 0.01 * rng.normal(size=(40, 30))), r"training flux reaches 1.0\de\+19.*normalise"),
])
def test_fit_refuses_degenerate_training_sets_clearly(make, match):
    with pytest.raises(ValueError, match=match):
        TSNESimilarityFilter(perplexity=5, random_state=0).fit(make(np.random.default_rng(0)))
