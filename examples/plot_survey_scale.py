"""
A survey from disk: an HDF5 store, a resumable streaming run, and the same run on Dask
======================================================================================

A survey does not fit in memory (10\\ :sup:`6` GIRAFFE HR10 + HR21 spectra with their errors are
126 GB). :class:`skstellar.io.SpectralStore` keeps the spectra in one HDF5 file, appended chunk by
chunk; :func:`skstellar.predict.predict_survey` runs a fitted pipeline over it chunk by chunk,
appending each chunk's rows to an ECSV table on disk, so memory holds one chunk whatever the
number of stars, and the same call after an interruption continues where the run stopped. Given a
``distributed.Client`` it runs the same chunks as tasks on a Dask cluster: the pipeline is
scattered once to every worker, each task reads its rows of the store where it runs, and the
rows come back in order -- the same table, row for row.

Here: 1 200 mock stars written to a store in chunks of 400, a small pipeline, the streaming run
on this process, and the same run on a ``LocalCluster`` of two worker processes (needs
``pip install "skstellar[dask]"``). The docs' survey-scale page has the figures of 10\\ :sup:`4`
stars and the benchmark that measures them.
"""

# %%
# Write the survey into a store, chunk by chunk
# ---------------------------------------------
# :func:`~skstellar.io.write_store` takes a SpectralSet or an iterable of them (chunks), so the
# survey never sits in memory whole; ``SpectralStore(path, mode="a").append(chunk)`` grows a store
# later. A real survey's FITS files go in with :func:`~skstellar.io.convert_to_store` (or
# ``skstellar convert``), which does the same from the files.
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.pipeline import Pipeline

from skstellar.datasets import make_giraffe_survey
from skstellar.filters import TSNESimilarityFilter
from skstellar.io import read_predictions, write_store
from skstellar.models import CNNLabelRegressor
from skstellar.predict import predict_survey
from skstellar.preprocessing import giraffe_preprocessor

folder = Path(tempfile.mkdtemp())
truth = []


def survey_chunks(n_chunks, size):
    for chunk in range(n_chunks):
        spectra, labels = make_giraffe_survey(size, population="mixed", snr=(20, 150), random_state=10 + chunk)
        truth.append(labels)
        yield spectra


store = write_store(survey_chunks(3, 400), folder / "survey.h5")  # returned open read-only
print(store, f"{store.nbytes_on_disk / 1e6:.0f} MB on disk")

# %%
# A fitted pipeline
# -----------------
# The similarity filter's ``batch_size`` is the number of new stars in one joint t-SNE map.
# ``predict_survey`` cuts the store into consecutive blocks of that size, one map each, so a
# star's verdict does not depend on where a chunk begins or on which machine it ran.
LABELS = ["teff", "logg", "feh"]
train, train_labels = make_giraffe_survey(300, population="disk", snr=(30, 150), random_state=0)
pipe = Pipeline(
    giraffe_preprocessor().steps
    + [("similarity", TSNESimilarityFilter(perplexity=15, batch_size=200, random_state=0)),
       ("cnn", CNNLabelRegressor(n_models=2, n_keep=2, max_epochs=8, random_state=0, label_names=LABELS))]
)
pipe.fit(train, np.column_stack([train_labels[name] for name in LABELS]))

# %%
# Stream the store through it, on this process
# ---------------------------------------------
# Chunks of 400 stars (a multiple of the filter's block); each chunk's rows are appended to
# ``labels.ecsv`` and a checkpoint ``labels.ecsv.progress.json`` is replaced after it. The same
# call again -- after an interruption, or, as here, after the run finished -- computes nothing
# that is already written.
run = predict_survey(pipe, store, folder / "labels.ecsv", chunk_size=400, progress=False)
print(f"{run.n_rows} rows in {run.n_chunks} chunks, {run.stars_per_second:.0f} stars/s")
again = predict_survey(pipe, store, folder / "labels.ecsv", chunk_size=400, progress=False)
print(f"called again: {len(again.computed)} chunks computed, {again.skipped} already done")

# %%
# The same run on a Dask cluster
# ------------------------------
# Two workers with one thread each. Only the store's path and a row range travel to a task; the
# pipeline goes to each worker once. Here the workers are threads of this process
# (``processes=False``): a worker process would re-run this script when it starts, as Python's
# ``spawn`` does with any script without an ``if __name__ == "__main__":`` guard, and the gallery
# runs its scripts without one. The package's tests run the same call on two worker processes and
# get the same rows. On a real cluster the store must sit on a file system that every worker sees,
# and ``Client("scheduler-address:8786")`` replaces the local cluster. (Training goes to the
# cluster the same way, through joblib: ``with joblib.parallel_config(backend="dask"):
# pipe.fit(...)`` trains one member per task.)
import distributed  # noqa: E402

t = time.perf_counter()
with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                              silence_logs=40) as cluster, distributed.Client(cluster) as client:
    dask_run = predict_survey(pipe, store, folder / "labels_dask.ecsv", chunk_size=400, progress=False,
                              client=client)
print(f"LocalCluster: {dask_run.n_rows} rows in {time.perf_counter() - t:.0f} s (worker start-up included)")

local = read_predictions(folder / "labels.ecsv")
on_dask = read_predictions(folder / "labels_dask.ecsv")
same = all(np.array_equal(np.asarray(local[c]), np.asarray(on_dask[c])) for c in local.colnames)
print("the cluster's table equals this process's, row for row, every column:", same)

# %%
# What came out
# -------------
# One row per star of the store, in its order. The mixed population holds stars outside the
# training box and broken spectra: the filter flags them (``training_like`` False), and their
# errors show why.
true_teff = np.concatenate([np.asarray(t["teff"]) for t in truth])
like = np.asarray(local["training_like"], dtype=bool)
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
axes[0].scatter(true_teff[like], np.asarray(local["teff"])[like], s=5, label=f"training-like ({like.sum()})")
axes[0].scatter(true_teff[~like], np.asarray(local["teff"])[~like], s=12, marker="x", color="red",
                label=f"flagged ({(~like).sum()})")
axes[0].plot([3500, 7500], [3500, 7500], color="k", lw=0.8)
axes[0].set_xlabel("true Teff (K)")
axes[0].set_ylabel("predicted Teff (K)")
axes[0].set_title("the store's 1 200 stars, streamed")
axes[0].legend(fontsize=8)
rates = [run.stars_per_second, dask_run.stars_per_second]
axes[1].bar(["one process", "LocalCluster\n2 worker threads"], rates, color=["C0", "C1"])
axes[1].set_ylabel("stars / s (this run, this machine)")
axes[1].set_title("same chunks, same rows")
fig.tight_layout()
plt.show()
