"""
The command line, from files to a table of labels
=================================================

A survey's data is a directory of FITS files and a label catalogue. ``skstellar train`` turns
them into a model file, ``skstellar info`` says what the model is, and ``skstellar predict``
writes one row of labels per star, with a ``status`` that says why a row has none. Each command
is also a Python call, :func:`skstellar.cli.main`, with the same arguments as a list; it returns
the exit code (0 success, 1 error, 3 ``predict`` wrote rows without labels). See
:doc:`/cli` for every option.

Here the mock survey, written as Gaia-ESO GIRAFFE files, stands in for a survey directory. The
ensemble is tiny (2 networks, 1 kept, 6 epochs, 300 stars: under a minute on two cores),
so the labels are rougher than they can be; the full-size recipe is on :doc:`/performance`.
"""

# %%
# A survey directory and a label table
# ------------------------------------
# 300 training stars (600 files, HR10 and HR21) and their labels in an ECSV table with a
# ``CNAME`` column, as Gaia-ESO names it. With real data, start at the next step.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from skstellar.cli import main
from skstellar.datasets import make_giraffe_survey
from skstellar.io import read_predictions, write_ges_giraffe

work = Path(tempfile.mkdtemp())
train_spectra, train_labels = make_giraffe_survey(300, population="disk", snr=(30, 150), random_state=0)
write_ges_giraffe(train_spectra, work / "train")
train_labels.rename_column("id", "CNAME")
train_labels["CNAME", "teff", "logg", "feh"].write(work / "labels.ecsv")
print(len(list((work / "train").glob("*.fits"))), "training files")

# %%
# ``skstellar train``
# -------------------
# Reads the files, matches them to the label rows by ``CNAME``, fits the preprocessing of
# Ambrosch et al. (2023) (``--preset ambrosch2023``: HR10 + HR21, 8669 pixels), the t-SNE
# similarity filter and the CNN ensemble, prints each label's bias and scatter on the
# validation stars (40 % held out) and saves the model with its manifest. On a shell this is
# ``skstellar train --spectra train --labels labels.ecsv ...``.
model = work / "model.joblib"
code = main([
    "train", "--spectra", str(work / "train"), "--labels", str(work / "labels.ecsv"),
    "--id-column", "CNAME", "--label-columns", "teff", "logg", "feh",
    "--n-models", "2", "--n-keep", "1", "--max-epochs", "6", "--seed", "0",
    "--out", str(model),
])
print("exit code", code)

# %%
# ``skstellar info``
# ------------------
# The manifest: package versions, setups and wavelength grids (with a hash), labels and their
# ranges in the training set, every step's parameters, the validation figures, the date and the
# command line -- what one needs to know, years later, about where a table of labels came from.
code = main(["info", str(model)])

# %%
# New files, two of them broken
# -----------------------------
# 40 new stars. One HR21 file is overwritten by an HTML error page (a failed download), and one
# star's HR10 file is missing.
new_spectra, truth = make_giraffe_survey(40, population="disk", snr=(30, 150), random_state=1)
new_files = write_ges_giraffe(new_spectra, work / "new")
new_files[1].write_text("<html><body>502 Bad Gateway</body></html>\n")  # star 0, HR21
new_files[4].unlink()  # star 2, HR10

# %%
# ``skstellar predict``
# ---------------------
# One row per star of the input files, plus one per file that could not be read: none is
# dropped. The exit code is 3: the table is written, but some rows have no labels.
code = main(["predict", "--model", str(model), "--spectra", str(work / "new"), "--out", str(work / "labels.fits")])
print("exit code", code)

# %%
# The table
# ---------
# :func:`skstellar.io.read_predictions` (or astropy's ``Table.read``) reads it back; the labels
# of a row without them are masked. The ``status`` column says why.
table = read_predictions(work / "labels.fits")
print(table.colnames)
not_ok = table["status"] != "ok"
for row in table[not_ok]:
    print(f"{row['id'] or '(no id)':20s} teff {row['teff']}  status: {row['status'][:70]}")

# %%
# Predicted against true Teff, log g and [Fe/H]
# ---------------------------------------------
# The stars with labels, matched to the truth by id, with the calibrated error bars ``e_<label>``
# (with one kept network the error is its scatter on the validation stars, the same for every
# star). Stars the similarity filter finds unlike the training set (``training_like`` False)
# would be red crosses (here the filter passes every new star: they are drawn like the training
# stars). Even one network of 6 epochs, trained on 180 stars, puts the stars on the diagonal; a
# larger ensemble on more stars does better (:doc:`/performance`).
ok = ~not_ok
rows = {star_id: k for k, star_id in enumerate(truth["id"])}
true_rows = np.array([rows[star_id] for star_id in table["id"][ok]])
like = np.asarray(table["training_like"][ok], dtype=bool)
units = {"teff": "K", "logg": "dex", "feh": "dex"}
fig, axes = plt.subplots(1, 3, figsize=(11, 3.7))
for ax, (label, unit) in zip(axes, units.items()):
    true = np.asarray(truth[label])[true_rows]
    predicted = np.ma.filled(table[label][ok].astype(float), np.nan)
    error = np.ma.filled(table[f"e_{label}"][ok].astype(float), np.nan)
    ax.errorbar(true[like], predicted[like], yerr=error[like], fmt=".", ms=4, lw=0.6, label="training-like")
    if (~like).any():
        ax.plot(true[~like], predicted[~like], "x", color="red", label="not training-like")
    lo, hi = true.min(), true.max()
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
    ax.set_xlabel(f"true {label} ({unit})")
    ax.set_ylabel(f"predicted {label} ({unit})")
    ax.set_title(f"{label}: scatter {np.std(predicted - true):.3g} {unit}", fontsize=10)
axes[0].legend(fontsize=8)
fig.suptitle(f"skstellar predict: {ok.sum()} of {len(table)} rows with labels", fontsize=10)
fig.tight_layout()
plt.show()
