"""
Saving a fitted pipeline with joblib, and using it on new spectra
=================================================================

A fitted pipeline -- preprocessing, similarity filter and CNN ensemble -- is one Python object.
``joblib.dump`` writes it to one file (each network stored as the bytes of a ``.keras`` file,
without optimizer state), and ``joblib.load`` gives it back, ready to predict, in another process
or on another machine: a survey is labelled batch by batch with the model fitted once. The
loaded pipeline predicts bit-identically (the package's tests check this in a fresh process).

:func:`skstellar.predict_table` turns a batch into a table: one row per spectrum, none dropped,
with the labels, their calibrated errors ``e_<label>`` and the filter's verdict
``training_like``; :func:`skstellar.io.write_predictions` writes it as FITS, ECSV or CSV.
"""

# %%
# Fit a small pipeline and save it
# --------------------------------
import tempfile
from pathlib import Path

import joblib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.pipeline import Pipeline

import skstellar
from skstellar.datasets import make_giraffe_survey
from skstellar.filters import TSNESimilarityFilter
from skstellar.io import read_predictions, write_predictions
from skstellar.models import CNNLabelRegressor
from skstellar.preprocessing import giraffe_preprocessor

LABELS = ["teff", "logg", "feh"]
train, train_labels = make_giraffe_survey(300, population="disk", snr=(30, 150), random_state=0)
y_train = np.column_stack([train_labels[name] for name in LABELS])

pipe = Pipeline(
    giraffe_preprocessor().steps
    + [("similarity", TSNESimilarityFilter(perplexity=15, random_state=0)),
       ("cnn", CNNLabelRegressor(n_models=2, n_keep=2, max_epochs=8, random_state=0, label_names=LABELS))]
)
pipe.fit(train, y_train)

folder = Path(tempfile.mkdtemp())
joblib.dump(pipe, folder / "model.joblib")
print(f"model.joblib: {(folder / 'model.joblib').stat().st_size / 1e6:.1f} MB")

# %%
# Load it and label a new batch
# -----------------------------
# The new batch holds 10 % stars unlike the training set (``population="mixed"``).
loaded = joblib.load(folder / "model.joblib")
survey, truth = make_giraffe_survey(200, population="mixed", snr=(20, 150), random_state=1)
table = skstellar.predict_table(loaded, survey)
for column in ("teff", "e_teff", "logg", "e_logg"):
    table[column].info.format = ".0f" if "teff" in column else ".3f"
print(table["id", "teff", "e_teff", "logg", "e_logg", "training_like"][:5])

same = np.array_equal(loaded.predict(survey[:20]), pipe.predict(survey[:20]))
print("loaded pipeline predicts as the original:", same)

write_predictions(table, folder / "predictions.ecsv")
print(read_predictions(folder / "predictions.ecsv").colnames)

# %%
# The labelled batch
# ------------------
# A Kiel diagram of the predictions; spectra the filter flags (``training_like`` False) are the
# ones not to trust.
like = np.asarray(table["training_like"])
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
axes[0].scatter(table["teff"][like], table["logg"][like], s=6, label="training-like")
axes[0].scatter(table["teff"][~like], table["logg"][~like], s=14, marker="x", color="red", label="flagged")
axes[0].invert_xaxis()
axes[0].invert_yaxis()
axes[0].set_xlabel("predicted Teff (K)")
axes[0].set_ylabel("predicted log g")
axes[0].legend(fontsize=8)
error = np.asarray(table["teff"]) - np.asarray(truth["teff"])
axes[1].scatter(np.asarray(truth["teff"])[like], error[like], s=6)
axes[1].scatter(np.asarray(truth["teff"])[~like], error[~like], s=14, marker="x", color="red")
axes[1].axhline(0, color="k", lw=0.8)
axes[1].set_xlabel("true Teff (K)")
axes[1].set_ylabel("predicted - true Teff (K)")
fig.tight_layout()
plt.show()
