"""
Cross-validation and grid search over the whole pipeline
========================================================

A :class:`~skstellar.spectra.SpectralSet` splits like an array (``len``, indexing by an int
array), and every step of the method is a scikit-learn estimator. So the preprocessing sits
*inside* the pipeline that is cross-validated: each fold fits the output grid on its own
training stars, as a survey run would, and no information leaks from the held-out stars.

Here :class:`~sklearn.model_selection.GridSearchCV` tunes the rebinning step of the
:class:`~skstellar.preprocessing.Rebinner` and the penalty of a ridge regression on [Fe/H]. Ridge
keeps the example to seconds; a :class:`~skstellar.models.CNNLabelRegressor` (or a pipeline with
a :class:`~skstellar.filters.TSNESimilarityFilter`) is searched the same way, only slower.
"""

# %%
# A mock survey and a pipeline
# ----------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import Pipeline

from skstellar.datasets import make_giraffe_survey
from skstellar.preprocessing import giraffe_preprocessor

spectra, labels = make_giraffe_survey(300, snr=(30, 150), random_state=0)
y = np.asarray(labels["feh"])

pipe = Pipeline([*giraffe_preprocessor().steps, ("ridge", Ridge())])
cv = KFold(n_splits=3, shuffle=True, random_state=0)
scores = cross_val_score(pipe, spectra, y, cv=cv, scoring="neg_root_mean_squared_error")
print(f"[Fe/H] RMSE per fold: {np.round(-scores, 3)} dex")

# %%
# Grid search
# -----------
# Parameters of a step are addressed as ``<step>__<parameter>``. A coarser grid averages more
# native pixels per bin (less noise, blurred lines).
grid = {
    "rebin__step": [{"HR10": 0.06, "HR21": 0.1}, {"HR10": 0.2, "HR21": 0.3}],
    "ridge__alpha": np.logspace(-4, 2, 7),
}
search = GridSearchCV(pipe, grid, cv=cv, scoring="neg_root_mean_squared_error").fit(spectra, y)
best = search.best_params_
print(f"best: bins {best['rebin__step']}, alpha {best['ridge__alpha']:g}, RMSE {-search.best_score_:.3f} dex")
print("features of the best pipeline:", search.best_estimator_[:-1].transform(spectra[:1]).shape[1])

# %%
# The validation curve
# --------------------
results = search.cv_results_
fig, ax = plt.subplots(figsize=(6, 4))
for step in grid["rebin__step"]:
    rows = np.array([params["rebin__step"] == step for params in results["params"]])
    alphas = np.array([params["ridge__alpha"] for params in results["params"]])[rows]
    mean, std = -results["mean_test_score"][rows], results["std_test_score"][rows]
    ax.errorbar(alphas, mean, yerr=std, marker="o", capsize=3,
                label=f"bins {step['HR10']} Å (HR10), {step['HR21']} Å (HR21)")
ax.set_xscale("log")
ax.set_xlabel("ridge penalty alpha")
ax.set_ylabel("[Fe/H] RMSE, 3-fold CV (dex)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
