"""Survey scale: the HDF5 spectral store, streaming prediction (resume after a kill, bounded
memory), the execution policy and the same work on a real Dask LocalCluster."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pytest
from astropy.table import vstack
from numpy.testing import assert_allclose, assert_array_equal

from skstellar import SpectralSet, predict_table
from skstellar.io import (
    SpectralStore,
    convert_to_store,
    open_store,
    read_ges_giraffe,
    read_predictions,
    write_store,
)
from skstellar.predict import convert_main, predict_survey
from skstellar.utils import task_threads, thread_limit
from skstellar.utils._threads import resolve_n_jobs

ROOT = Path(__file__).resolve().parents[1]
BLOCK = 30  # the filter's batch_size in these tests


def _assert_tables_equal(a, b):
    assert a.colnames == b.colnames
    assert len(a) == len(b)
    for name in a.colnames:
        assert_array_equal(np.asarray(a[name]), np.asarray(b[name]), err_msg=name)


def _small_set(rng, n, *, per_star=False, errors=True, first_id=0):
    wave_a = np.linspace(5350.0, 5360.0, 40)
    wave_b = np.linspace(8500.0, 8520.0, 60)
    flux_a = (1 + 0.1 * rng.normal(size=(n, 40))).astype(np.float32)
    flux_b = (1 + 0.1 * rng.normal(size=(n, 60))).astype(np.float32)
    grid_b = wave_b + rng.uniform(0, 0.01, size=(n, 1)) if per_star else wave_b
    a = (wave_a, flux_a, 0.01 * np.abs(flux_a)) if errors else (wave_a, flux_a)
    b = (grid_b, flux_b, 0.02 * np.abs(flux_b)) if errors else (grid_b, flux_b)
    meta = {"id": [f"star{first_id + i}" for i in range(n)], "rv": rng.normal(size=n),
            "snr": rng.integers(10, 100, size=n), "giant": rng.random(n) < 0.5}
    return SpectralSet.from_arrays({"HR10": a, "HR21": b}, meta=meta)


# -- the store -------------------------------------------------------------------------------
def test_store_appends_and_reads_ranges(tmp_path, rng):
    parts = [_small_set(rng, m, per_star=True, first_id=k * 100) for k, m in enumerate((7, 1, 12))]
    whole = SpectralSet.concatenate(parts)
    path = tmp_path / "s.h5"
    with SpectralStore(path, mode="a") as store:
        for part in parts:
            store.append(part)
    store = open_store(path)
    assert len(store) == 20 and store.shape == whole.shape and store.setups == ("HR10", "HR21")
    for start, stop in ((0, 20), (3, 9), (19, 20)):
        got, want = store.read(start, stop), whole[start:stop]
        for setup in whole.setups:
            assert_array_equal(got.flux(setup), want.flux(setup))
            assert_array_equal(got.error(setup), want.error(setup))
            assert_array_equal(got.wavelength(setup), want.wavelength(setup))
        assert got.ids.tolist() == want.ids.tolist()
        assert got.meta["giant"].dtype == bool and got.meta["snr"].tolist() == want.meta["snr"].tolist()
    assert store.read(0, 1).setup_data("HR10").shared_grid  # a shared grid stays one row
    # a store pickles as its path: a Dask task reopens it
    again = pickle.loads(pickle.dumps(store))
    assert_array_equal(again[5:6].flux("HR21"), whole[5:6].flux("HR21"))
    with pytest.raises(IndexError, match="cannot read stars 18:25 of a store of 20"):
        store.read(18, 25)
    with pytest.raises(ValueError, match="read-only"):
        store.append(parts[0])
    store.close()


def test_store_refuses_chunks_that_do_not_match(tmp_path, rng):
    path = tmp_path / "s.h5"
    store = SpectralStore(path, mode="a")
    store.append(_small_set(rng, 4))
    with pytest.raises(ValueError, match="setup 'HR21'.*shared wavelength grid"):
        store.append(_small_set(rng, 3, per_star=True))
    with pytest.raises(ValueError, match="has error column"):
        store.append(_small_set(rng, 3, errors=False))
    other = _small_set(rng, 3)
    with pytest.raises(ValueError, match="metadata columns"):
        store.append(other.replace(meta=other.meta["id", "rv", "snr"]))
    assert len(store) == 4  # a refused chunk adds no star
    store.close()
    (tmp_path / "plain.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="plain.h5: not a readable HDF5 file"):
        open_store(tmp_path / "plain.h5")
    with pytest.raises(FileNotFoundError, match="No spectral store"):
        open_store(tmp_path / "absent.h5")
    with pytest.raises(FileExistsError):
        write_store(_small_set(rng, 2), path)


def _ges_files(shared_data, folder, n_stars):
    from test_io import GES_NAME, ges_copy

    src = shared_data / "spectra" / GES_NAME
    files = []
    for i in range(n_stars):
        cname = f"1923518{i}+0048006"
        for setup, crval in (("HR10", 5339.0), ("HR21", None)):
            path = folder / f"{cname}_{setup}.fits"
            ges_copy(src, path, cname=cname, setup=setup, crval=crval, vel=float(i))
            files.append(path)
    return files


def test_convert_ges_files_chunk_by_chunk(tmp_path, shared_data):
    folder = tmp_path / "ges"
    folder.mkdir()
    files = _ges_files(shared_data, folder, 5)
    store = convert_to_store(folder, tmp_path / "ges.h5", chunk_size=4)  # a folder, 2 stars a chunk
    whole = read_ges_giraffe(files)
    assert len(store) == 5 and store.setups == whole.setups
    got = store.read()
    for setup in whole.setups:
        assert_array_equal(got.flux(setup), whole.flux(setup))
        assert_array_equal(got.error(setup), whole.error(setup))
    assert got.ids.tolist() == whole.ids.tolist() and got.meta["rv"].tolist() == whole.meta["rv"].tolist()
    # a star whose two files fall in different chunks lacks a setup within its chunk
    with pytest.raises(ValueError, match="lack a setup within their chunk of 3 files"):
        convert_to_store(files, tmp_path / "odd.h5", chunk_size=3)
    kept = convert_to_store(files, tmp_path / "odd.h5", chunk_size=3, on_bad="drop", overwrite=True)
    assert 0 < len(kept) < 5 and set(kept.read().meta.meta["dropped"]) == set(whole.ids) - set(kept.read().ids)


def test_convert_main(tmp_path, shared_data, capsys):
    folder = tmp_path / "ges"
    folder.mkdir()
    _ges_files(shared_data, folder, 2)
    out = tmp_path / "cli.h5"
    assert convert_main([str(folder), "-o", str(out), "--chunk-size", "2", "--quiet"]) == 0
    assert "2 stars, setups HR10, HR21" in capsys.readouterr().out
    assert convert_main([str(folder), "-o", str(out), "--quiet"]) == 1
    assert "cli.h5 exists" in capsys.readouterr().err
    assert convert_main([str(folder), "-o", str(tmp_path / "f.h5"), "--reader", "fits", "--setup", "HR21",
                         "--quiet"]) == 0
    assert len(open_store(tmp_path / "f.h5")) == 4  # one star per file
    with pytest.raises(SystemExit):
        convert_main([str(folder), "-o", str(tmp_path / "g.h5"), "--reader", "fits"])
    assert "needs --setup" in capsys.readouterr().err
    # the same command as a sub-command of the package's command line
    from skstellar.cli import main

    assert main(["convert", str(folder), "-o", str(tmp_path / "h.h5"), "--quiet"]) == 0
    assert "2 stars, setups HR10, HR21" in capsys.readouterr().out
    assert len(open_store(tmp_path / "h.h5")) == 2


# -- the execution policy ----------------------------------------------------------------------
def test_execution_policy(monkeypatch):
    monkeypatch.delenv("SKSTELLAR_THREADS", raising=False)
    default = task_threads()
    assert default >= 1 and resolve_n_jobs(-1) == default and resolve_n_jobs(None) == 1
    with thread_limit(3):
        assert task_threads() == 3 and resolve_n_jobs(-1) == 3 and resolve_n_jobs(-2) == 2
    monkeypatch.setenv("SKSTELLAR_THREADS", "5")
    assert task_threads() == 5
    monkeypatch.setenv("SKSTELLAR_THREADS", "many")
    with pytest.raises(ValueError, match="SKSTELLAR_THREADS='many'"):
        task_threads()
    with pytest.raises(ValueError, match="n_jobs == 0"):
        resolve_n_jobs(0)


# -- streaming prediction ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """A fitted pipeline of the whole method (tiny CNN, fast t-SNE) saved with joblib, and a store of 90 stars.

    The pipeline used is the one loaded back from the file, as in the subprocess and on the Dask
    workers (a pickled copy): a filter fresh from fit gives map distances different in the
    last digits (up to 2 % here) from its pickled copy, which would hide what these tests check."""
    from sklearn.pipeline import Pipeline

    from skstellar.datasets import make_giraffe_survey
    from skstellar.filters import TSNESimilarityFilter
    from skstellar.models import CNNLabelRegressor
    from skstellar.preprocessing import giraffe_preprocessor

    folder = tmp_path_factory.mktemp("survey")
    train, labels = make_giraffe_survey(80, snr=(30, 150), random_state=1)
    new, _ = make_giraffe_survey(90, population="mixed", snr=(20, 150), random_state=2)
    y = np.column_stack([labels[c] for c in ("teff", "logg")])
    pipe = Pipeline(giraffe_preprocessor().steps + [
        ("similarity", TSNESimilarityFilter(n_components=10, perplexity=5, batch_size=BLOCK, random_state=0,
                                            tsne_params={"n_iter": 50, "early_exaggeration_iter": 25})),
        ("cnn", CNNLabelRegressor(filters=(2,), kernel_size=5, dense_units=(4,), n_models=2, n_keep=2,
                                  max_epochs=2, random_state=0, label_names=["teff", "logg"])),
    ]).fit(train, y)
    joblib.dump(pipe, folder / "model.joblib")
    write_store((new[lo:lo + 45] for lo in range(0, 90, 45)), folder / "new.h5").close()
    pipe = joblib.load(folder / "model.joblib")
    return {"folder": folder, "pipe": pipe, "store": folder / "new.h5", "train": train, "y": y}


@pytest.fixture(scope="module")
def reference(survey):
    """What a user gets from predict_table on each filter block: the streaming answer."""
    store = open_store(survey["store"])
    table = vstack([predict_table(survey["pipe"], store.read(lo, min(lo + BLOCK, len(store))))
                    for lo in range(0, len(store), BLOCK)])
    store.close()
    return table


def test_stream_equals_predict_table_per_block_whatever_the_chunks(survey, reference, tmp_path):
    run = predict_survey(survey["pipe"], survey["store"], tmp_path / "store.ecsv", chunk_size=BLOCK, progress=False)
    assert run.n_rows == 90 and run.computed == [0, 1, 2] and run.skipped == 0
    table = read_predictions(run.output)
    _assert_tables_equal(table, reference)
    assert not table["training_like"].all()  # the mixed survey has flagged stars
    # the same from a SpectralSet in memory, in chunks of 3 blocks
    whole = open_store(survey["store"]).read()
    run = predict_survey(survey["pipe"], whole, tmp_path / "mem.ecsv", chunk_size=3 * BLOCK, progress=False)
    assert run.computed == [0]
    _assert_tables_equal(read_predictions(run.output), reference)
    with pytest.raises(ValueError, match="chunk_size=40 is not a multiple of the similarity filter's batch_size=30"):
        predict_survey(survey["pipe"], survey["store"], tmp_path / "x.ecsv", chunk_size=40)
    with pytest.raises(ValueError, match="writes ECSV"):
        predict_survey(survey["pipe"], survey["store"], tmp_path / "x.fits", chunk_size=BLOCK)


_KILLED_RUN = """
import sys, time
import joblib
import skstellar.predict._stream as stream
from skstellar.predict import predict_survey

original = stream.predict_chunk
def slow(*args):  # time for the test to kill the run between chunks and inside one
    time.sleep(0.4)
    return original(*args)
stream.predict_chunk = slow
predict_survey(joblib.load(sys.argv[1]), sys.argv[2], sys.argv[3], chunk_size=int(sys.argv[4]), progress=False)
"""


def test_resume_after_kill_computes_no_finished_chunk_twice(survey, reference, tmp_path):
    out = tmp_path / "killed.ecsv"
    checkpoint = Path(str(out) + ".progress.json")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(survey["folder"] / "model.joblib"),
                             str(survey["store"]), str(out), str(BLOCK)], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if checkpoint.exists() and json.loads(checkpoint.read_text())["done"] >= 1:
            time.sleep(0.2)  # into the next chunk
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = json.loads(checkpoint.read_text())
    done = state["done"]
    assert 1 <= done < 3 and not state["complete"], "the run was to be killed mid-way"
    assert state["runs"] == [list(range(done))]
    with open(out, "a") as fh:  # as if killed in the middle of writing the next chunk
        fh.write("half a row 123")

    with pytest.raises(ValueError, match="cannot resume.*chunk_size"):
        predict_survey(survey["pipe"], survey["store"], out, chunk_size=2 * BLOCK, progress=False)
    run = predict_survey(survey["pipe"], survey["store"], out, chunk_size=BLOCK, progress=False)
    assert run.skipped == done and run.computed == list(range(done, 3))
    _assert_tables_equal(read_predictions(out), reference)
    state = json.loads(checkpoint.read_text())
    assert state["complete"] and [k for run in state["runs"] for k in run] == list(range(3))  # each chunk computed once
    assert predict_survey(survey["pipe"], survey["store"], out, chunk_size=BLOCK, progress=False).computed == []


_MEMORY_RUN = """
import resource, sys, tempfile
import numpy as np
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from skstellar.io import open_store
from skstellar.predict import predict_survey
from skstellar.preprocessing import SetupStitcher

store = open_store(sys.argv[1])
first = store.read(0, 200)
pipe = make_pipeline(SetupStitcher(), Ridge()).fit(first, np.asarray(first)[:, 0])
folder = tempfile.mkdtemp()
predict_survey(pipe, store.path, folder + "/warm.ecsv", chunk_size=200, progress=False)  # one chunk's worth
store.close()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
run = predict_survey(pipe, sys.argv[1], folder + "/all.ecsv", chunk_size=200, progress=False)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(run.n_rows, (after - before) * 1024)
"""


def test_peak_memory_does_not_grow_with_the_store(tmp_path, rng):
    """A store of ~190 MB of spectra predicted under a cap of 40 MB of peak-RSS growth."""
    path = tmp_path / "big.h5"
    wave_a, wave_b = np.linspace(5350.0, 5500.0, 3000), np.linspace(8500.0, 8800.0, 3000)
    with SpectralStore(path, mode="a") as store:
        for k in range(20):
            flux = (1 + 0.01 * rng.normal(size=(2, 200, 3000))).astype(np.float32)
            store.append(SpectralSet.from_arrays(
                {"HR10": (wave_a, flux[0], flux[0]), "HR21": (wave_b, flux[1], flux[1])},
                meta={"id": [f"s{k}-{i}" for i in range(200)]}))
        n_stars, n_bytes = len(store), store.nbytes_on_disk
    assert n_bytes > 180e6
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _MEMORY_RUN, str(path)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    rows, growth = done.stdout.split()
    assert int(rows) == n_stars
    assert int(growth) < 40e6, f"peak RSS grew by {int(growth) / 1e6:.0f} MB over a {n_bytes / 1e6:.0f} MB store"


# -- Dask -------------------------------------------------------------------------------------------
def test_dask_local_cluster_equals_one_process(survey, reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_config

    from skstellar.models import CNNLabelRegressor

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        # inside a task, the policy gives the worker's thread count, not the machine's cores
        assert [client.submit(task_threads, pure=False, workers=[w]).result() for w in client.nthreads()] == [1, 1]
        run = predict_survey(survey["pipe"], survey["store"], tmp_path / "dask.ecsv", chunk_size=BLOCK,
                             client=client, max_in_flight=3, progress=False)
        assert run.computed == list(range(3))
        _assert_tables_equal(read_predictions(run.output), reference)

        # ensemble members trained as Dask tasks, as on one machine
        X = survey["pipe"][:4].transform(survey["train"])
        local = survey["pipe"][-1]  # fitted in this process on the same X
        params = {k: v for k, v in local.get_params().items() if k != "n_jobs"}
        with parallel_config(backend="dask"):
            remote = CNNLabelRegressor(**params, n_jobs=-1).fit(X, survey["y"])
    # The same seeds, data and members; TensorFlow's threaded reductions (2 threads here, 1 in a
    # worker) round differently, so the networks agree to float32 round-off grown over the epochs.
    assert_array_equal(remote.kept_, local.kept_)
    assert_allclose(remote.val_losses_, local.val_losses_, rtol=2e-3)
    y_remote, y_local = remote.predict(X[:20]), local.predict(X[:20])
    relative = np.abs(y_remote - y_local) / np.ptp(survey["y"], axis=0)  # of each label's range
    assert relative.max() < 1e-2, relative.max()


def test_import_loads_neither_tensorflow_nor_dask_nor_h5py():
    code = ("import sys, skstellar.predict, skstellar.io\n"
            "print(','.join(m for m in ('tensorflow', 'dask', 'distributed', 'h5py') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == ""
