"""
Training a CNN ensemble and its calibrated uncertainty
======================================================

:class:`~skstellar.models.CNNLabelRegressor` trains ``n_models`` convolutional networks (the
Table-2 network of Ambrosch et al. 2023, with a frozen ridge "skip" path in the default recipe)
on bootstrap resamples of the training stars, keeps the ``n_keep`` with the lowest validation
loss, and predicts their mean. ``predict(X, return_std=True)`` also returns, per star and label,
the spread of the kept members multiplied by one factor per label (``std_scale_``), fitted on the
validation stars so that 68 % of them lie within one calibrated standard deviation: a 1-sigma
error bar.

This example trains a small ensemble (3 members, 2 kept, at most 12 epochs: about a minute on two cores)
on a mock survey and compares predictions and error bars with the true labels. The full-size
recipe (10 members, keep 8, early stopping) and its accuracy are on :doc:`/performance`.
"""

# %%
# Data: a mock survey, preprocessed
# ---------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from skstellar.datasets import make_giraffe_survey
from skstellar.models import CNNLabelRegressor
from skstellar.preprocessing import giraffe_preprocessor

LABELS = ["teff", "logg", "feh"]
spectra, labels = make_giraffe_survey(500, snr=(20, 150), random_state=0)
y = np.column_stack([labels[name] for name in LABELS])
train, test, y_train, y_test = train_test_split(spectra, y, test_size=0.3, random_state=0)

prep = giraffe_preprocessor().fit(train)
X_train, X_test = prep.transform(train), prep.transform(test)
print("X_train", X_train.shape)

# %%
# Train the ensemble
# ------------------
# ``random_state`` makes the fit reproducible on a CPU. ``history_`` holds each member's losses.
cnn = CNNLabelRegressor(n_models=3, n_keep=2, max_epochs=12, patience=5, random_state=0, label_names=LABELS)
cnn.fit(X_train, y_train)
print("kept members:", cnn.kept_, "validation losses:", np.round(cnn.val_losses_, 4))
print("calibration factor per label (std_scale_):", np.round(cnn.std_scale_, 2))

y_pred, y_std = cnn.predict(X_test, return_std=True)

# %%
# Predictions against the truth, with their error bars
# ----------------------------------------------------
units = {"teff": "K", "logg": "dex", "feh": "dex"}
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
for k, (ax, name) in enumerate(zip(axes, LABELS)):
    ax.errorbar(y_test[:, k], y_pred[:, k], yerr=y_std[:, k], fmt=".", ms=3, lw=0.5, alpha=0.7)
    lo, hi = y_test[:, k].min(), y_test[:, k].max()
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
    error = y_pred[:, k] - y_test[:, k]
    ax.set_title(f"{name}: scatter {error.std():.3g} {units[name]}", fontsize=10)
    ax.set_xlabel(f"true {name}")
    ax.set_ylabel(f"predicted {name}")
fig.tight_layout()

# %%
# Is the error bar a 1-sigma error?
# ---------------------------------
# If it is, the error divided by the calibrated std (the "pull") is spread like a unit normal
# and about 68 % of the stars lie within one std. With 2 kept members and a few hundred
# stars the calibration is rough; the measured full-size figures are on :doc:`/performance`,
# and :doc:`/uncertainties` says what the error bar does not cover.
pull = (y_pred - y_test) / y_std
fig, ax = plt.subplots(figsize=(6, 3.6))
bins = np.linspace(-4, 4, 33)
for k, name in enumerate(LABELS):
    inside = np.mean(np.abs(pull[:, k]) < 1)
    ax.hist(pull[:, k], bins=bins, histtype="step", density=True, label=f"{name}: {100 * inside:.0f} % within 1")
grid = np.linspace(-4, 4, 200)
ax.plot(grid, np.exp(-grid**2 / 2) / np.sqrt(2 * np.pi), color="k", lw=0.8, label="unit normal")
ax.set_xlabel("(predicted - true) / calibrated std")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# The error bar grows with the noise
# ----------------------------------
snr = np.asarray(test.meta["snr"])
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.scatter(snr, y_std[:, 0], s=6, label="calibrated std")
ax.scatter(snr, np.abs(y_pred[:, 0] - y_test[:, 0]), s=6, alpha=0.5, label="|predicted - true|")
ax.set_xscale("log")
ax.set_xlabel("S/N")
ax.set_ylabel("Teff (K)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
