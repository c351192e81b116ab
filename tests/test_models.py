"""CNNLabelRegressor: architecture, training, ensemble, persistence, sklearn integration, bad input."""

import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
from sklearn.base import clone, is_regressor
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skstellar.models import PRESETS, CNNLabelRegressor, build_table2
from skstellar.models._architecture import conv_output_length

TINY = {"filters": (4,), "kernel_size": 5, "dense_units": (16,), "dropout": 0.0, "batch_size": 16}


def _spectra(rng, n=100, p=200, n_labels=2):
    """Continuum-normalised mock spectra whose line depths are linear in the labels."""
    labels = rng.uniform(-1, 1, size=(n, n_labels))
    pixels = np.arange(p)
    centres = rng.choice(np.arange(10, p - 10), size=(n_labels, 4), replace=False)
    profiles = np.exp(-0.5 * ((pixels - centres[..., None]) / 2.0) ** 2).sum(axis=1)  # (n_labels, p)
    flux = 1 - 0.3 * (labels + 1.2) @ profiles / n_labels
    flux += rng.normal(0, 0.005, size=flux.shape)
    return flux.astype(np.float32), labels


@pytest.fixture(scope="module")
def all_data():
    return _spectra(np.random.default_rng(0), n=160)


@pytest.fixture(scope="module")
def data(all_data):
    return all_data[0][:100], all_data[1][:100]


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return CNNLabelRegressor(**TINY, max_epochs=25, patience=10, n_models=3, n_keep=2,
                             learning_rate=3e-3, random_state=0).fit(X, y)


def test_table2_has_560599_parameters_and_explicit_slope():
    import keras

    model = build_table2(8669, 5)
    assert model.count_params() == 560_599
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert [c.filters for c in convs] == [8, 6, 4] and {c.kernel_size for c in convs} == {(20,)}
    assert {c.padding for c in convs} == {"valid"}
    assert {layer.negative_slope for layer in model.layers if isinstance(layer, keras.layers.LeakyReLU)} == {0.3}
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [64, 128, 32, 5]
    # the flattened trunk has 2134 pixels x 4 filters, as its arithmetic twin says
    assert conv_output_length(8669, **PRESETS["thesis"]) == 2134
    assert model.get_layer(index=-1).activation.__name__ == "linear"


def test_import_does_not_load_tensorflow():
    code = "import sys, skstellar.models; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_learns_labels_and_ensemble_attributes(all_data, data, fitted):
    X, y = data
    X_test, y_test = all_data[0][100:], all_data[1][100:]
    mean, std = fitted.predict(X_test, return_std=True)
    assert mean.dtype == np.float64 and mean.shape == std.shape == (60, 2)
    assert fitted.score(X_test, y_test) > 0.8
    assert (std > 0).all()
    assert len(fitted.members_) == 2 and fitted.val_losses_.shape == (3,) and len(fitted.history_) == 3
    # the kept members are those with the lowest best validation loss
    assert set(fitted.kept_) == set(np.argsort(fitted.val_losses_)[:2])
    for i, history in enumerate(fitted.history_):
        assert fitted.val_losses_[i] == pytest.approx(history["val_loss"].min())
        # the default "plateau" schedule only ever lowers the learning rate, by halves
        lr = history["learning_rate"]
        assert lr[0] == pytest.approx(3e-3) and (np.diff(lr) <= 1e-12).all()
        assert np.allclose(np.log2(lr / lr[0]), np.round(np.log2(lr / lr[0])))
    np.testing.assert_array_equal(fitted.label_names_, ["y0", "y1"])
    np.testing.assert_allclose(fitted.label_mean_, np.mean(y[fitted_train_rows(fitted, len(y))], axis=0))


def fitted_train_rows(est, n):
    # the validation split is the first ceil(0.4 n) of a permutation drawn from random_state
    order = np.random.RandomState(est.random_state).permutation(n)
    return order[int(np.ceil(est.validation_fraction * n)):]


def test_predict_is_mean_of_members_and_batch_invariant(data, fitted):
    X, _ = data
    members = np.stack([m(1 - X, training=False).numpy() for m in fitted.members_]).astype(np.float64)
    members = members * fitted.label_scale_ + fitted.label_mean_
    mean, std = fitted.predict(X, return_std=True)
    np.testing.assert_allclose(mean, members.mean(axis=0), rtol=1e-5, atol=1e-6)
    # the default preset calibrates the spread of the members on the validation stars
    assert fitted.recipe_["std_calibration"] == "validation" and (fitted.std_scale_ > 1).all()
    np.testing.assert_allclose(std / fitted.std_scale_, members.std(axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fitted.predict(X[:7]), mean[:7], rtol=1e-6, atol=1e-7)


def test_one_dimensional_y_gives_one_dimensional_predictions(data):
    X, y = data
    est = CNNLabelRegressor(**TINY, max_epochs=2, n_models=2, n_keep=2, random_state=0).fit(X, y[:, 0])
    mean, std = est.predict(X[:5], return_std=True)
    assert mean.shape == std.shape == (5,)


def test_validation_index_names_the_stars_the_std_was_calibrated_on(data, fitted, all_data):
    X, y = data
    val = fitted.validation_index_
    assert val.size == 40 and np.array_equal(val, np.unique(val))  # ceil(0.4 * 100), sorted, distinct
    # val_scatter_ is measured on exactly these stars
    np.testing.assert_allclose(np.std(fitted.predict(X[val]) - y[val], axis=0), fitted.val_scatter_, rtol=1e-5)
    with_val = CNNLabelRegressor(**TINY, max_epochs=1, n_models=1, n_keep=1, random_state=0).fit(
        X, y, validation_data=(all_data[0][100:], all_data[1][100:]))
    assert with_val.validation_index_ is None


def test_early_stopping_restores_best_weights_on_user_validation_set(all_data, data):
    X, y = data
    X_val, y_val = all_data[0][100:], all_data[1][100:]
    est = CNNLabelRegressor(**TINY, max_epochs=30, patience=2, learning_rate=0.05, lr_schedule="constant",
                            n_models=1, n_keep=1,
                            random_state=0).fit(X, y, validation_data=(X_val, y_val))
    history = est.history_[0]["val_loss"]
    assert len(history) < 30  # stopped early: lr 0.05 overshoots
    z = (est.predict(X_val) - est.label_mean_) / est.label_scale_
    z_true = (y_val - est.label_mean_) / est.label_scale_
    # the restored weights are the best epoch's, not the last one's
    assert np.mean((z - z_true) ** 2) == pytest.approx(history.min(), rel=1e-3)
    assert history.min() < history[-1]


def test_nan_labels_are_masked_out_of_the_loss(data, rng):
    from skstellar.models._training import _masked_mse

    y_true = np.array([[1.0, np.nan, 2.0], [np.nan, np.nan, 0.5]], dtype=np.float32)
    y_pred = np.array([[0.0, 9.0, 2.5], [7.0, 3.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(np.asarray(_masked_mse(y_true, y_pred)), [(1 + 0.25) / 3, 0.25 / 3], rtol=1e-6)

    X, y = data
    y = y.copy()
    y[rng.random(len(y)) < 0.5, 1] = np.nan
    est = CNNLabelRegressor(**TINY, max_epochs=3, n_models=1, n_keep=1, random_state=0).fit(X, y)
    assert np.isfinite(est.val_losses_).all() and np.isfinite(est.predict(X)).all()
    assert est.label_mean_[1] == pytest.approx(np.nanmean(y[fitted_train_rows(est, len(y)), 1]))


def test_random_state_reproducible(data):
    X, y = data
    params = dict(**TINY, max_epochs=3, n_models=2, n_keep=1)
    a = CNNLabelRegressor(**params, random_state=3).fit(X, y).predict(X)
    b = CNNLabelRegressor(**params, random_state=3).fit(X, y).predict(X)
    c = CNNLabelRegressor(**params, random_state=4).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_presets_and_explicit_parameters(data):
    X, y = data
    est = CNNLabelRegressor(preset="thesis", **TINY, max_epochs=1, n_models=1, n_keep=1).fit(X, y)
    assert (est.recipe_["optimizer"], est.recipe_["learning_rate"]) == ("sgd", 1e-4)
    assert est.recipe_["batch_size"] == 16 and est.recipe_["flatten_dropout"] == 0.2
    assert est.recipe_["kernel_size"] == 5  # explicit beats preset
    assert est.recipe_["patience"] == 30  # the thesis' early stopping
    default = CNNLabelRegressor()._resolve_recipe()
    assert (default["optimizer"], default["learning_rate"], default["batch_size"]) == ("adam", 1e-3, 64)
    assert default["patience"] == 10 and CNNLabelRegressor(patience=4)._resolve_recipe()["patience"] == 4


def _dense_builder(n_features, n_outputs):
    import keras

    return keras.Sequential([keras.Input((n_features,)), keras.layers.Dense(3), keras.layers.Dense(n_outputs)])


def test_user_builder_and_label_names(data):
    X, y = data
    est = CNNLabelRegressor(builder=_dense_builder, max_epochs=2, n_models=1, n_keep=1, random_state=0,
                            label_names=["teff", "logg"]).fit(X, y)
    assert est.members_[0].count_params() == 200 * 3 + 3 + 3 * 2 + 2
    np.testing.assert_array_equal(est.label_names_, ["teff", "logg"])
    with pytest.raises(ValueError, match="label_names has 3 names but y has 2 labels"):
        clone(est).set_params(label_names=["a", "b", "c"]).fit(X, y)


def test_verbose_progress_bar(data, capsys):
    X, y = data
    CNNLabelRegressor(**TINY, max_epochs=1, n_models=2, n_keep=1, verbose=1, random_state=0).fit(X, y)
    assert "CNN members" in capsys.readouterr().err


def test_pickle_in_new_process_gives_identical_predictions(data, fitted, tmp_path):
    X, y = data
    pipe = make_pipeline(FunctionTransformer(np.sqrt), CNNLabelRegressor(**TINY, max_epochs=2, n_models=2,
                                                                          n_keep=2, random_state=0)).fit(X, y)
    joblib.dump(fitted, tmp_path / "est.joblib")
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    np.save(tmp_path / "X.npy", X)
    code = textwrap.dedent(f"""
        import joblib, numpy as np
        X = np.load({str(tmp_path / 'X.npy')!r})
        est = joblib.load({str(tmp_path / 'est.joblib')!r})
        pipe = joblib.load({str(tmp_path / 'pipe.joblib')!r})
        mean, std = est.predict(X, return_std=True)
        np.save({str(tmp_path / 'out.npy')!r}, np.stack([mean, std, pipe.predict(X)]))
    """)
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    out = np.load(tmp_path / "out.npy")
    mean, std = fitted.predict(X, return_std=True)
    np.testing.assert_array_equal(out[0], mean)
    np.testing.assert_array_equal(out[1], std)
    np.testing.assert_array_equal(out[2], pipe.predict(X))


def test_sklearn_model_selection(data):
    X, y = data
    est = CNNLabelRegressor(**TINY, max_epochs=2, n_models=1, n_keep=1, random_state=0)
    assert is_regressor(est) and is_regressor(make_pipeline(FunctionTransformer(), est))
    assert clone(est).get_params() == est.get_params()
    scores = cross_val_score(est, X, y, cv=2)
    assert scores.shape == (2,) and np.isfinite(scores).all()
    search = GridSearchCV(est, {"learning_rate": [1e-3, 3e-3]}, cv=2).fit(X, y)
    assert search.best_params_["learning_rate"] in (1e-3, 3e-3)
    assert search.predict(X).shape == y.shape


def test_bad_input_is_refused_before_tensorflow_loads():
    code = textwrap.dedent("""
        import sys, numpy as np
        from skstellar.models import CNNLabelRegressor
        X = np.ones((20, 100)); y = np.zeros((20, 2))
        def err(est, X, y):
            try:
                est.fit(X, y)
            except ValueError as exc:
                return str(exc)
            return "no error"
        Xnan = X.copy(); Xnan[3, 7] = np.nan
        Xinf = X.copy(); Xinf[5, 0] = np.inf
        ynan = y.copy(); ynan[:, 1] = np.nan
        yval = y.copy(); yval[np.random.RandomState(0).permutation(20)[:8], 1] = np.nan  # the validation rows
        est = CNNLabelRegressor()
        for msg in [err(est, Xnan, y), err(est, Xinf, y), err(est, X, np.zeros((20, 2, 2))),
                    err(est, X, np.zeros(19)), err(est, X, ynan), err(CNNLabelRegressor(n_keep=11), X, y),
                    err(CNNLabelRegressor(kernel_size=5), X[:1], y[:1]), err(est, X[:, :30], y),
                    err(est, X, None), err(CNNLabelRegressor(random_state=0, kernel_size=3), X, yval)]:
            print(msg)
        print("TF", "tensorflow" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    lines = out.strip().splitlines()
    assert "NaN or inf in 1 spectra (rows [3])" in lines[0]
    assert "NaN or inf in 1 spectra (rows [5])" in lines[1]
    assert "got shape (20, 2, 2)" in lines[2]
    assert "inconsistent numbers of samples" in lines[3]
    assert "label column(s) [1] of y are all NaN" in lines[4]
    assert "n_keep=11 is larger than n_models=10" in lines[5]
    assert "too few samples for a validation split: got 1 sample" in lines[6]
    assert "spectra of 30 pixels are too short" in lines[7]
    assert "requires y to be passed" in lines[8]
    assert "label column(s) [1] have no value in the validation set" in lines[9]
    assert lines[-1] == "TF False"


def test_wrong_pixel_count_at_predict(data, fitted):
    X, _ = data
    with pytest.raises(ValueError, match="X has 199 features, but CNNLabelRegressor is expecting 200"):
        fitted.predict(X[:, :199])
    X_bad = X[:4].copy()
    X_bad[2, 10] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf in 1 spectra \(rows \[2\]\)"):
        fitted.predict(X_bad)


@pytest.mark.parametrize("n_features, arch", [
    (8669, {}),                                                                       # Table 2 itself
    (8669, {"linear_skip": True}),
    (301, {"filters": (3, 5), "kernel_size": 7, "pool_size": 3, "dense_units": (8,)}),
    (300, {"filters": (2, 3, 4, 2), "kernel_size": 4, "dense_units": (8, 4), "negative_slope": 0.1}),
])
def test_compiled_cpu_prediction_equals_keras(n_features, arch, rng, monkeypatch):
    import keras

    from skstellar.models._cpu_forward import CompiledEnsemble
    from skstellar.models._predict import make_ensemble_function
    from skstellar.utils import _threads

    keras.utils.set_random_seed(0)
    models = [build_table2(n_features, 3, **arch) for _ in range(2)]
    for model in models:
        for layer in model.layers:  # non-zero biases: their place relative to the pooling matters
            if layer.get_weights():
                kernel, bias = layer.get_weights()
                layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape).astype(np.float32)])
    recipe = {**PRESETS["default"], **{k: v for k, v in arch.items() if k in PRESETS["default"]}}
    function = make_ensemble_function(models, n_features, recipe)
    assert isinstance(function, CompiledEnsemble)
    X = (1 - 0.3 * rng.random((150, n_features))).astype(np.float32)  # 3 chunks, the last short
    offset, scale = np.float32(1.0), rng.uniform(0.5, 2.0, n_features).astype(np.float32)
    out = function(X, offset=offset, scale=scale)
    assert out.shape == (2, 150, 3) and out.dtype == np.float32
    for member, model in zip(out, models):
        expected = model((X - offset) / scale, training=False).numpy()
        np.testing.assert_allclose(member, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    # float64 input, one thread, no scaling: the same numbers
    monkeypatch.setattr(_threads, "CORES", 1)
    np.testing.assert_array_equal(function(X.astype(np.float64), offset=offset, scale=scale), out)
    expected = models[0](X, training=False).numpy()
    np.testing.assert_allclose(function(X)[0], expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_pooling_the_generated_code_cannot_block_runs_through_keras(rng):
    from skstellar.models._predict import KerasEnsemble, make_ensemble_function

    # no block of 4, 8 or 16 lanes holds whole windows of 11 pixels
    model = build_table2(200, 2, filters=(2, 2), kernel_size=5, pool_size=11, dense_units=(4,))
    recipe = {**PRESETS["default"], "pool_size": 11}
    function = make_ensemble_function([model], 200, recipe)
    assert isinstance(function, KerasEnsemble)
    X = rng.random((10, 200)).astype(np.float32)
    np.testing.assert_allclose(function(X)[0], model(X, training=False).numpy(), rtol=1e-6, atol=1e-6)


def test_keras_path_chunks_and_scales_like_the_models(rng):
    from skstellar.models._predict import KerasEnsemble

    model = build_table2(120, 2, filters=(2,), kernel_size=5, dense_units=(4,))
    function = KerasEnsemble([model], 120)
    X = rng.random((70, 120)).astype(np.float32)
    out = function(X, offset=np.float32(1.0), scale=np.float32(-1.0), batch_size=32)  # 3 chunks
    expected = model(1 - X, training=False).numpy()
    assert out.shape == (1, 70, 2)
    np.testing.assert_allclose(out[0], expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n", [30, 300])  # fewer and more stars than pixels: dual and primal solutions
def test_ridge_skip_matches_sklearn_ridge_and_masks_nan(n, rng):
    from sklearn.linear_model import Ridge

    from skstellar.models._linear import fit_ridge_skip

    X = rng.normal(size=(n, 60)).astype(np.float32)
    y = X[:, :3] @ rng.normal(size=(3, 2)) + 0.1 * rng.normal(size=(n, 2))
    y[::3, 1] = np.nan
    X_val = rng.normal(size=(40, 60)).astype(np.float32)
    y_val = X_val[:, :3] @ np.ones((3, 2))
    kernel, bias, alpha = fit_ridge_skip(X, y, X_val, y_val)
    assert kernel.shape == (60, 2) and bias.shape == (2,) and (alpha > 0).all()
    for j in range(2):
        rows = ~np.isnan(y[:, j])
        ref = Ridge(alpha=alpha[j]).fit(X[rows].astype(np.float64), y[rows, j])
        np.testing.assert_allclose(kernel[:, j], ref.coef_, rtol=1e-4, atol=1e-5)
        assert bias[j] == pytest.approx(ref.intercept_, abs=1e-4)


def test_linear_skip_ridge_starts_from_ridge_and_learns_the_residual(data, all_data):
    X, y = data
    X_test, y_test = all_data[0][100:], all_data[1][100:]
    common = dict(**TINY, n_models=1, n_keep=1, random_state=0)
    start = CNNLabelRegressor(linear_skip="ridge", max_epochs=1, learning_rate=1e-12, **common).fit(X, y)
    skip = start.members_[0].get_layer("linear_skip")
    assert not skip.trainable
    # the deep path starts at zero: with no learning, the member is the ridge map of 1 - flux
    kernel, bias = skip.get_weights()
    ridge = ((1 - X_test) @ kernel + bias) * start.label_scale_ + start.label_mean_
    np.testing.assert_allclose(start.predict(X_test), ridge, rtol=1e-4, atol=1e-4)
    trained = CNNLabelRegressor(linear_skip="ridge", max_epochs=10, **common).fit(X, y)
    np.testing.assert_array_equal(trained.members_[0].get_layer("linear_skip").get_weights()[0], kernel)
    assert trained.val_losses_[0] <= start.val_losses_[0]
    assert trained.score(X_test, y_test) > 0.95
    assert build_table2(8669, 5, linear_skip=True).count_params() == 560_599 + 8670 * 5
    assert CNNLabelRegressor(preset="thesis")._resolve_recipe()["linear_skip"] == "none"


def test_weighted_ridge_skip_is_the_ridge_of_the_resample(rng):
    from sklearn.linear_model import Ridge

    from skstellar.models._linear import bootstrap_counts, fit_ridge_skip

    X = rng.normal(size=(50, 80)).astype(np.float32)
    y = X[:, :3] @ rng.normal(size=(3, 2)) + 0.1 * rng.normal(size=(50, 2))
    X_val = rng.normal(size=(30, 80)).astype(np.float32)
    y_val = X_val[:, :3] @ np.ones((3, 2))
    counts = bootstrap_counts(50, 7)
    assert counts.sum() == 50 and (counts == 0).any() and (counts > 1).any()
    np.testing.assert_array_equal(counts, bootstrap_counts(50, 7))
    kernel, bias, alpha = fit_ridge_skip(X, y, X_val, y_val, sample_weight=counts)
    rows = np.repeat(np.arange(50), counts)
    for j in range(2):
        ref = Ridge(alpha=alpha[j]).fit(X[rows].astype(np.float64), y[rows, j])
        np.testing.assert_allclose(kernel[:, j], ref.coef_, rtol=1e-4, atol=1e-5)
        assert bias[j] == pytest.approx(ref.intercept_, abs=1e-4)
    assert not np.allclose(kernel, fit_ridge_skip(X, y, X_val, y_val)[0])


def test_bagged_members_differ_and_their_std_grows_off_the_training_set(data, all_data, fitted):
    X, y = data
    X_test, y_test = all_data[0][100:], all_data[1][100:]
    kernels = [m.get_layer("linear_skip").get_weights()[0] for m in fitted.members_]
    assert not np.allclose(kernels[0], kernels[1], rtol=1e-2, atol=1e-3)
    assert fitted.ridge_alpha_.shape == (3, 2)
    mean, std_in = fitted.predict(X_test, return_std=True)
    # lines three times as deep as in any training spectrum: an extrapolation the members disagree on
    _, std_out = fitted.predict(1 - 3 * (1 - X_test), return_std=True)
    # not ~0: a tenth of the error here (the unbagged ensemble: 0.015-0.06 of it)
    assert (std_in.mean(axis=0) > 0.05 * np.sqrt(np.mean((mean - y_test) ** 2, axis=0))).all()
    assert (std_out.mean(axis=0) > 2 * std_in.mean(axis=0)).all()
    # members that are only their ridge part (no learning): identical without bagging
    frozen = dict(**TINY, max_epochs=1, learning_rate=1e-12, n_models=3, n_keep=3, random_state=0,
                  std_calibration="none")
    _, std_same = CNNLabelRegressor(**frozen, bootstrap=False).fit(X, y).predict(X_test, return_std=True)
    _, std_bag = CNNLabelRegressor(**frozen).fit(X, y).predict(X_test, return_std=True)
    assert (std_same.mean(axis=0) < 1e-3 * std_bag.mean(axis=0)).all()
    assert CNNLabelRegressor(preset="thesis")._resolve_recipe()["bootstrap"] is False


def _member_outputs(est, X):
    X = X if est.recipe_["input_scaling"] == "none" else 1 - X
    members = np.stack([m(X, training=False).numpy() for m in est.members_]).astype(np.float64)
    return members * est.label_scale_ + est.label_mean_


def test_std_is_calibrated_per_label_on_the_validation_set(all_data, data):
    X, y = data
    X_val, y_val = all_data[0][100:], all_data[1][100:].copy()
    y_val[::3, 0] = np.nan  # a missing label counts for none of the calibration of that label
    est = CNNLabelRegressor(**TINY, max_epochs=4, n_models=3, n_keep=3, learning_rate=3e-3,
                            random_state=0).fit(X, y, validation_data=(X_val, y_val))
    members = _member_outputs(est, X_val)
    error, spread = members.mean(axis=0) - y_val, members.std(axis=0)
    for j in range(2):
        has = ~np.isnan(y_val[:, j])
        pull = np.sort(np.abs(error[has, j]) / spread[has, j])
        # the 68.27th percentile of the pulls: 68.27 % of the validation stars lie within one calibrated std
        rank = 0.682689 * (has.sum() - 1)  # rel: the members here run through Keras, in fit blocked float32
        assert est.std_scale_[j] == pytest.approx(np.interp(rank, np.arange(has.sum()), pull), rel=3e-3)
        assert np.mean(np.abs(error[has, j]) < est.std_scale_[j] * spread[has, j]) == pytest.approx(0.68, abs=0.03)
        assert est.val_scatter_[j] == pytest.approx(np.std(error[has, j]), rel=1e-5)
    all_pulls = np.abs(all_data[1][100:, 0] - members.mean(axis=0)[:, 0]) / spread[:, 0]
    assert est.std_scale_[0] != pytest.approx(np.quantile(all_pulls, 0.682689), rel=1e-3)
    # the spread of a few members is far below the error: the factor is large
    assert (est.std_scale_ > 2).all()
    mean, std = est.predict(X, return_std=True)
    np.testing.assert_allclose(std / est.std_scale_, _member_outputs(est, X).std(axis=0), rtol=1e-4, atol=1e-6)


def test_thesis_preset_and_none_leave_the_std_raw(data):
    X, y = data
    frozen = dict(**TINY, max_epochs=1, n_models=2, n_keep=2, random_state=0)
    for est in (CNNLabelRegressor(preset="thesis", **frozen),
                CNNLabelRegressor(std_calibration="none", **frozen)):
        est.fit(X, y)
        assert est.recipe_["std_calibration"] == "none"
        assert est.std_scale_.shape == (2,) and np.isfinite(est.std_scale_).all()  # computed, not applied
        np.testing.assert_allclose(est.predict(X, return_std=True)[1], _member_outputs(est, X).std(axis=0),
                                   rtol=1e-4, atol=1e-6)


def test_single_member_error_bar_is_the_validation_scatter(data):
    X, y = data
    est = CNNLabelRegressor(**TINY, max_epochs=2, n_models=2, n_keep=1, random_state=0).fit(X, y)
    assert np.isnan(est.std_scale_).all()
    val = np.random.RandomState(0).permutation(len(y))[:40]
    np.testing.assert_allclose(est.val_scatter_, np.std(est.predict(X[val]) - y[val], axis=0), rtol=1e-5)
    _, std = est.predict(X[:4], return_std=True)
    np.testing.assert_allclose(std, np.broadcast_to(est.val_scatter_, (4, 2)))
    # uncalibrated, one member has no spread
    raw = CNNLabelRegressor(**TINY, max_epochs=2, n_models=2, n_keep=1, random_state=0,
                            std_calibration="none").fit(X, y)
    np.testing.assert_array_equal(raw.predict(X[:4], return_std=True)[1], 0.0)
