"""A saved and reloaded pipeline gives bit-identical predict_table output in a fresh process."""

import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from skstellar import predict_table
from skstellar.datasets import make_giraffe_survey
from skstellar.filters import TSNESimilarityFilter
from skstellar.preprocessing import SpectrumCleaner, giraffe_preprocessor
from skstellar.utils._persist import SkstellarVersionWarning

TINY = {"filters": (2,), "kernel_size": 3, "dense_units": (4,), "dropout": 0.0, "batch_size": 16}

# the batch: 40 survey stars after the 60 of training, three damaged (NaN labels, flags)
BATCH = """
import numpy as np
from skstellar.datasets import make_giraffe_survey
spectra, labels = make_giraffe_survey(100, snr=(30, 150), random_state=3)
batch = spectra[60:]
flux = batch.flux("HR10").copy()
flux[0] = 0.0
flux[1] *= 1e4
batch = batch.replace("HR10", flux=flux)
batch.meta["rv"][2] = np.nan
"""


def assert_tables_identical(a, b):
    assert a.colnames == b.colnames
    for name in a.colnames:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(x.view(np.uint64 if x.itemsize == 8 else np.uint32),
                                          y.view(np.uint64 if y.itemsize == 8 else np.uint32), err_msg=name)
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)


def test_reloaded_pipeline_is_bit_identical_in_a_fresh_process(tmp_path):
    from skstellar.models import CNNLabelRegressor

    spectra, labels = make_giraffe_survey(100, snr=(30, 150), random_state=3)
    y = np.column_stack([labels[c] for c in ("teff", "logg")])
    pipe = Pipeline(
        giraffe_preprocessor().steps
        + [("similarity", TSNESimilarityFilter(n_components=10, perplexity=8, random_state=0)),
           ("cnn", CNNLabelRegressor(**TINY, max_epochs=2, n_models=2, n_keep=1, random_state=0,
                                     label_names=["teff", "logg"]))]
    )
    pipe.fit(spectra[:60], y[:60])
    scope = {}
    exec(BATCH, scope)
    here = predict_table(pipe, scope["batch"])
    assert np.isnan(here["teff"][:3]).all() and np.isfinite(here["teff"][3:]).all()
    joblib.dump(pipe, tmp_path / "model.joblib")
    with open(tmp_path / "here.pkl", "wb") as f:
        pickle.dump(here, f)
    script = BATCH + textwrap.dedent(f"""
        import pickle, joblib
        from skstellar import predict_table
        pipe = joblib.load({str(tmp_path / "model.joblib")!r})
        with open({str(tmp_path / "there.pkl")!r}, "wb") as f:
            pickle.dump(predict_table(pipe, batch), f)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    with open(tmp_path / "there.pkl", "rb") as f:
        there = pickle.load(f)
    assert_tables_identical(here, there)


def test_loading_another_version_warns():
    est = SpectrumCleaner()
    state = est.__getstate__()
    import skstellar

    assert state["_skstellar_version"] == skstellar.__version__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(pickle.dumps(est))  # same version: silent
    state["_skstellar_version"] = "0.0.1"
    with pytest.warns(SkstellarVersionWarning, match=r"saved with skstellar 0.0.1 and is loaded with"):
        SpectrumCleaner().__setstate__(state)


def test_filter_with_the_same_random_state_gives_the_same_verdicts():
    rng = np.random.default_rng(4)
    X = 1 + 0.01 * rng.normal(size=(40, 30))
    new = np.vstack([X[:6] + 0.002, 1 + 0.05 * rng.normal(size=(4, 30))])
    a, b = (TSNESimilarityFilter(n_components=5, perplexity=5, random_state=11,
                                 tsne_params={"n_iter": 200}).fit(X).embed(new)
            for _ in range(2))
    for name in ("training_like", "score", "map_distance", "residual", "pca_distance"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
