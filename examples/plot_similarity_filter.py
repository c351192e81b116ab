"""
The similarity filter and its map
=================================

A network returns a label for any spectrum, also for one unlike everything it was trained on.
:class:`~skstellar.filters.TSNESimilarityFilter` says which spectra are like the training set.
It embeds the new spectra *together with* the training spectra in one t-SNE map (the method of
Ambrosch et al. 2023, Sect. 4.1.3) and flags those far from every training spectrum, and adds
two PCA scores: a residual that catches broken spectra (emission lines, bad normalisation) and a
whitened PCA distance that catches stars just beyond the edge of the training set.

Here the filter is fitted on "disk" stars and judges a test set of disk stars plus "edge" stars
of every kind that :func:`~skstellar.datasets.make_giraffe_survey` can draw (too hot, too
metal-poor or metal-rich, emission lines, bad normalisation, ...).
"""

# %%
# Training and test spectra
# -------------------------
import matplotlib.pyplot as plt
import numpy as np

from skstellar.datasets import make_giraffe_survey
from skstellar.filters import TSNESimilarityFilter
from skstellar.preprocessing import giraffe_preprocessor

train, _ = make_giraffe_survey(400, population="disk", snr=(30, 150), random_state=0)
disk, _ = make_giraffe_survey(150, population="disk", snr=(30, 150), random_state=1)
edge, edge_labels = make_giraffe_survey(140, population="edge", snr=(30, 150), random_state=2)

prep = giraffe_preprocessor().fit(train)
X_train = prep.transform(train)
X_new = np.vstack([prep.transform(disk), prep.transform(edge)])
kind = np.array(["disk"] * len(disk) + list(edge_labels["edge_kind"]))

# %%
# Fit, and judge the new spectra in one joint map
# -----------------------------------------------
# ``embed`` returns a :class:`~skstellar.filters.SimilarityMap`: the map coordinates of the new
# and the training spectra, the three scores, their thresholds and the verdict. ``predict`` gives
# +1 (training-like) or -1 (outer), as scikit-learn's outlier detectors do.
filt = TSNESimilarityFilter(perplexity=20, random_state=0).fit(X_train)
result = filt.embed(X_new)
outer = ~result.training_like
for name in np.unique(kind):
    rows = kind == name
    by_score = [100 * flags[rows].mean() for flags in (result.map_outer, result.residual_outer, result.pca_outer)]
    print(f"{name:11s} flagged {100 * outer[rows].mean():5.1f} %  "
          "(map {:3.0f} %, residual {:3.0f} %, PCA {:3.0f} %)".format(*by_score))

# %%
# The map
# -------
# Grey: the training spectra. Circles: new disk stars; other markers: edge stars, by kind;
# red edges: flagged outer. Unusual stars (hot, metal-poor) form islands of their own; broken
# spectra may sit among normal stars in the map and are flagged by the residual instead.
fig, ax = plt.subplots(figsize=(7.5, 6))
ax.scatter(*result.training_embedding[0].T, s=4, color="0.75", label="training")
markers = dict(zip(np.unique(kind), "o^svD<>Ph"))
for name, marker in markers.items():
    rows = kind == name
    ax.scatter(*result.embedding[rows].T, s=18, marker=marker, label=name,
               edgecolors=np.where(outer[rows], "red", "none"), linewidths=0.8)
ax.set_xticks([])
ax.set_yticks([])
ax.set_title("joint t-SNE map (red edge: flagged outer)")
ax.legend(fontsize=7, ncol=2, loc="best")
fig.tight_layout()

# %%
# What each score catches
# -----------------------
# Each score divided by its threshold (computed leave-one-out on the training spectra so that
# about 1 % of them are over it); above 1 the score flags the spectrum.
scores = {
    "map distance": result.map_distance / result.map_threshold,
    "PCA residual": result.residual / result.residual_threshold,
    "PCA distance": result.pca_distance / result.pca_threshold,
}
names = list(markers)
fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), sharey=True)
for ax, (title, score) in zip(axes, scores.items()):
    for row, name in enumerate(names):
        values = score[kind == name]
        jitter = np.random.default_rng(row).uniform(-0.25, 0.25, len(values))
        ax.scatter(values, row + jitter, s=4, color=np.where(values > 1, "red", "C0"))
    ax.set_yticks(range(len(names)), names)
    ax.axvline(1, color="red", lw=0.8)
    ax.set_xscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("score / threshold")
fig.tight_layout()
plt.show()
