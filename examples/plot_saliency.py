"""
What the network reads: saliency on the wavelength axis, line by line
=====================================================================

A label is trustworthy when the network reads it from the right lines. The gradient saliency of
Ambrosch et al. (2023, Sect. 4.3) -- the derivative of every predicted label with respect to
every input pixel -- shows where it reads. :func:`skstellar.explain.saliency` computes it
through the whole pipeline (preprocessing, every kept network with its ridge skip, the label
scaling undone), in the label's unit per unit of normalised flux, on the rest-frame wavelength
axis. :func:`~skstellar.explain.line_attribution` turns it into a ranking of the known lines,
and :func:`~skstellar.explain.saliency_correlation` shows labels that read each other's lines.

A **negative** saliency on a line means a deeper line gives a higher label: what an abundance
read from its own element's lines looks like.

This example trains a small ensemble of the default recipe (2 networks, 5 epochs, 700 mock disk
stars: under a minute on two cores) for Teff, log g, [Fe/H], [Mg/Fe] and [Al/Fe] and asks which
lines [Fe/H], [Mg/Fe] and [Al/Fe] are read from. The measurement with a larger ensemble is on
:doc:`/explain`.
"""

# %%
# Train a small ensemble on the GIRAFFE chain
# -------------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.pipeline import make_pipeline

from skstellar.datasets import make_giraffe_survey
from skstellar.explain import default_lines, line_attribution, saliency, saliency_correlation
from skstellar.models import CNNLabelRegressor
from skstellar.preprocessing import giraffe_preprocessor

LABELS = ["teff", "logg", "feh", "mgfe", "alfe"]
spectra, labels = make_giraffe_survey(850, population="disk", snr=(30, 150), random_state=0)
y = np.column_stack([labels[name] for name in LABELS])
train, test = spectra[:700], spectra[700:]

pipe = make_pipeline(
    giraffe_preprocessor(),
    CNNLabelRegressor(n_models=2, n_keep=2, max_epochs=5, random_state=0, label_names=LABELS),
)
pipe.fit(train, y[:700])
scatter = np.std(pipe.predict(test) - y[700:], axis=0)
print("held-out scatter:", ", ".join(f"{name} {value:.3g}" for name, value in zip(LABELS, scatter)))

# %%
# The saliency of 150 held-out stars
# ----------------------------------
# ``per="mean"`` (the default) averages over the stars and the kept networks; ``labels`` picks
# the labels to differentiate (each costs a backward pass).
smap = saliency(pipe, test, labels=["feh", "mgfe", "alfe"])
print(smap.values.shape, "pixels from", smap.wavelength.min(), "to", smap.wavelength.max(), "Å")
print(smap.to_table()[3000:3003])

# %%
# The maps on the wavelength axis
# -------------------------------
# Top: the mean spectrum of the stars; below, the saliency of each label, HR10 and HR21 side
# by side, with the Mg I (green) and Al I (red) lines of the line table
# (:func:`~skstellar.explain.default_lines`) and the iron line Fe I 5371.49 Å (grey) marked.
# (:func:`~skstellar.explain.plot_saliency` draws such a figure in one call, to save with
# ``savefig``.)
lines = default_lines()
marks = {"Mg I": "tab:green", "Al I": "tab:red"}
marked = [(w, marks[s]) for w, s in zip(lines["wavelength"], lines["species"]) if s in marks]
marked.append((5371.49, "0.4"))
setups = list(dict.fromkeys(smap.setup))
rows = ["spectrum", *smap.labels]
fig, axes = plt.subplots(len(rows), 2, figsize=(11, 7.5), sharex="col", sharey="row",
                         gridspec_kw={"width_ratios": [1, 1.8]})
for column, setup in enumerate(setups):
    pixels = smap.setup == setup
    wave = smap.wavelength[pixels]
    for row, name in enumerate(rows):
        ax = axes[row, column]
        if name == "spectrum":
            ax.plot(wave, smap.mean_flux[pixels], lw=0.4, color="k")
        else:
            ax.plot(wave, smap.values[smap.labels.index(name)][pixels], lw=0.4, color="C0")
            ax.axhline(0, color="k", lw=0.4)
        for centre, colour in marked:
            if wave[0] < centre < wave[-1]:
                ax.axvline(centre, color=colour, lw=0.7, ls=":")
        if column == 0:
            unit = smap.units[smap.labels.index(name)] if name != "spectrum" else ""
            ax.set_ylabel("mean flux" if name == "spectrum" else f"d {name} / d flux\n({unit})", fontsize=9)
    axes[0, column].set_title(setup, fontsize=10)
    axes[-1, column].set_xlabel("rest wavelength (Å)")
handles = [plt.Line2D([], [], color=c, ls=":", label=s) for s, c in [*marks.items(), ("Fe I 5371.49", "0.4")]]
axes[0, 1].legend(handles=handles, fontsize=8, loc="lower right", ncol=3)
fig.tight_layout()

# %%
# Close-ups: Mg I and Al I
# ------------------------
# A few Ångström around Fe I 5371.49 Å, the Al I doublet at 8773 Å with Mg I 8736.02 Å, and
# Mg I 8806.75 Å. [Al/Fe] dips deep on both Al I lines: it reads them. [Fe/H] dips on the Fe I
# line and on both Mg I lines. [Mg/Fe] does *not* dip on its own lines: it is slightly negative
# at Mg I 8736.02, even positive at Mg I 8806.75, and its largest feature here is a positive
# bump on Fe I 5371.49 -- the [Fe/H] map with its sign flipped.
windows = [(5368, 5375), (8732, 8778), (8802, 8811)]
fig, axes = plt.subplots(len(smap.labels), len(windows), figsize=(11, 6), sharex="col", sharey="row",
                         gridspec_kw={"width_ratios": [7, 46 / 2.5, 9 / 1.2]})
for column, (lo, hi) in enumerate(windows):
    pixels = (smap.wavelength > lo) & (smap.wavelength < hi)
    for row, name in enumerate(smap.labels):
        ax = axes[row, column]
        ax.plot(smap.wavelength[pixels], smap.values[row][pixels], lw=0.9, drawstyle="steps-mid")
        ax.axhline(0, color="k", lw=0.4)
        for centre, colour in marked:
            if lo < centre < hi:
                ax.axvline(centre, color=colour, lw=0.8, ls=":")
        if column == 0:
            ax.set_ylabel(f"d {name} / d flux", fontsize=9)
    axes[-1, column].set_xlabel("rest wavelength (Å)")
axes[0, 0].set_title("Fe I 5371.49", fontsize=9)
axes[0, 1].set_title("Mg I 8736.02, Al I 8772.87 and 8773.90", fontsize=9)
axes[0, 2].set_title("Mg I 8806.75", fontsize=9)
fig.tight_layout()

# %%
# Line by line
# ------------
# :func:`~skstellar.explain.line_attribution` gives, per label, each line's share of the total
# ``|saliency|`` within 0.3 Å of its centre, with the sign of the saliency summed there. The
# shares are small numbers -- the ridge skip and the network spread some weight over all 8669
# pixels -- what matters is which lines come first.
ranked = line_attribution(smap)
ranked["share"].info.format = ".2%"
ranked["saliency"].info.format = ".3g"
for name in smap.labels:
    print(ranked[(ranked["label"] == name) & (ranked["rank"] <= 5)]["label", "rank", "species", "wavelength",
                                                                     "share", "sign"])
    print()

# %%
# ``saliency_correlation`` measures the borrowing: the correlation of the maps over the pixels,
# and the share of each abundance's ``|saliency|`` on its own element's lines (``own``) and on
# other elements' (``borrowed``).
correlation = saliency_correlation(smap)
for column in correlation.colnames[1:]:
    correlation[column].info.format = ".2f"
print(correlation)

# %%
# The ranking as a figure: the eight lines with the largest share per label, bars coloured by
# species, the sign of the summed saliency in brackets. [Al/Fe] is read from its four Al I lines,
# all negative, as it should be. [Fe/H] ranks Mg I 8736.02 and Fe I 5371.49 (negative) among
# Ti II lines. [Mg/Fe] borrows: it ranks Fe I 5371.49 first, with the *positive* sign of borrowed
# signal (a deeper iron line, a lower [Mg/Fe]), then Ti lines; no Mg I line is among its first
# eight, and its map correlates with the [Fe/H] map at -0.68 (13 % of its ``|saliency|`` on other
# elements' lines, 1 % on Mg). The reason: in the mock disk population, as in the Galaxy, [Mg/Fe]
# falls as [Fe/H] rises (r = -0.73), so iron lines predict [Mg/Fe] for stars like the training
# set -- and fail for a star off that relation. The mock's [Mg/Fe] also scales every alpha element,
# so the Ti lines carry it legitimately. :doc:`/explain` shows the same with a larger run, and that
# training on stars whose labels are drawn independently moves [Mg/Fe] to Mg I 8736.02.
species_colours = {"Mg I": "tab:green", "Al I": "tab:red", "Fe I": "0.45", "Fe II": "0.65", "Ti I": "tab:blue",
                   "Ti II": "tab:cyan", "Si I": "tab:olive", "Ca I": "tab:purple", "Ca II": "tab:pink",
                   "Ni I": "tab:brown", "H I": "k", "Li I": "gold"}
fig, axes = plt.subplots(1, len(smap.labels), figsize=(11, 3.8))
for ax, name in zip(axes, smap.labels):
    top = ranked[(ranked["label"] == name) & (ranked["rank"] <= 8)][::-1]
    names = [f"{s} {w:.2f} ({sign})" for s, w, sign in zip(top["species"], top["wavelength"], top["sign"])]
    ax.barh(range(len(top)), 100 * top["share"], color=[species_colours.get(s, "0.8") for s in top["species"]])
    ax.set_yticks(range(len(top)), names, fontsize=8)
    ax.set_xlabel("share of |saliency| (%)")
    ax.set_title(name, fontsize=10)
fig.tight_layout()
plt.show()
