"""
Science with the labels: the two disks, Li-rich giants, quality cuts, abundance scales
======================================================================================

Labels are for science. :mod:`skstellar.science` has a helper for each piece of it that
Ambrosch et al. (2023) do with the CNN labels, all working on tables (an astropy ``Table``,
a pandas ``DataFrame``, a dict of columns) and none loading TensorFlow:

- :func:`~skstellar.science.to_xh` / :func:`~skstellar.science.to_xfe` (and their inverses)
  convert abundances A(X) to [X/H] and [X/Fe] on one solar scale;
- :func:`~skstellar.science.quality_cuts` applies the thesis' training-set cuts and says which
  cut rejects whom;
- :func:`~skstellar.science.separate_disks` (and the estimator
  :class:`~skstellar.science.DiskSeparator`) finds the chemical thin and thick disks with
  HDBSCAN in [Mg/Fe] against [Fe/H];
- :func:`~skstellar.science.select_li_rich` selects Li-rich giant candidates.

To stay fast, this example trains no network. The label table of a mock HR15N survey
(:func:`~skstellar.datasets.make_giraffe_survey`: thin and thick disk, a globular cluster, 2 %
planted Li-rich giants, with catalogue errors that shrink with S/N) plays the survey catalogue a
network is trained on. For the predicted labels it stands in for, we add Gaussian noise to the
true labels, of about the size of a small CNN ensemble's errors (0.04 dex in [Fe/H], 0.03 in
[Mg/Fe], 40 K, 0.07 in log g, 0.1 in A(Li) at S/N 60, growing as 1/(S/N) below), and give it as
the error columns. A table of real predictions (:func:`skstellar.predict_table`, or
``skstellar predict``) goes through the same calls.
"""

# %%
# The catalogue, with abundances as A(X)
# --------------------------------------
# Catalogues give abundances in several forms: Gaia-ESO as A(X) = log10(N_X / N_H) + 12, the
# networks here as [Fe/H] and [X/Fe]. The conversions use one solar table (Grevesse, Asplund &
# Sauval 2007, the MARCS and Gaia-ESO scale) unless ``solar=`` gives another. We write the mock
# catalogue's [Fe/H] and [Mg/Fe] as A(Fe) and A(Mg), the form a Gaia-ESO catalogue has, and
# convert them back, as one would before training.
import matplotlib.pyplot as plt
import numpy as np
from astropy.table import Table

from skstellar.datasets import make_giraffe_survey
from skstellar.science import (
    DiskSeparator,
    from_xfe,
    from_xh,
    quality_cuts,
    select_li_rich,
    separate_disks,
    to_xfe,
    to_xh,
)

_, catalogue = make_giraffe_survey(3000, setups="HR15N", snr=(15, 150), random_state=0)
print(f"{len(catalogue)} stars:",
      ", ".join(f"{np.sum(catalogue['population'] == name)} {name}" for name in ("thin", "thick", "globular")),
      f"({np.sum(catalogue['li_rich'])} of them Li-rich giants)")

catalogue["a_fe"] = from_xh(catalogue["feh"], "Fe")
catalogue["a_mg"] = from_xfe(catalogue["mgfe"], catalogue["feh"], "Mg")
print(f"star 0: A(Fe) {catalogue['a_fe'][0]:.2f}, A(Mg) {catalogue['a_mg'][0]:.2f} -> "
      f"[Mg/H] {to_xh(catalogue['a_mg'][0], 'Mg'):+.3f}, "
      f"[Mg/Fe] {to_xfe(catalogue['a_mg'][0], catalogue['a_fe'][0], 'Mg'):+.3f} "
      f"(the catalogue's [Mg/Fe]: {catalogue['mgfe'][0]:+.3f})")
print(f"A(Li) = 3.05 is [Li/H] = {to_xh(3.05, 'Li'):.2f}")
asplund09 = {"Mg": 7.60, "Fe": 7.50}
shift = to_xfe(catalogue["a_mg"], catalogue["a_fe"], "Mg", solar=asplund09) - catalogue["mgfe"]
print(f"on the Asplund et al. (2009) scale every [Mg/Fe] moves by {np.mean(shift):+.2f} dex")

# %%
# Quality cuts: which catalogue stars to train on
# -----------------------------------------------
# The thesis trains only on catalogue stars that pass S/N >= 30, e_Teff <= 200 K,
# e_log g <= 0.3 dex, abundance errors <= 0.2 dex, empty TECH/PECULI flags, v sin i <= 20 km/s
# and :math:`|[M/H] - [Fe/H]|` <= 0.2 dex. The mock catalogue has no flags, v sin i or [M/H]:
# ``on_missing="skip"`` leaves those cuts out (the default names the missing column). The
# ``counts`` table says, per cut, how many stars it rejects and how many it alone rejects --
# which cut would be worth relaxing.
mask, counts = quality_cuts(catalogue, on_missing="skip")
print(f"{mask.sum()} of {len(catalogue)} stars pass")
counts.pprint()

# %%
# The S/N cut rejects most stars, and two thirds of them it alone rejects. The abundance-error cut
# rejects only stars that fail the S/N cut too (none alone), and the e_Teff and e_log g cuts none:
# in the mock catalogue the errors shrink with S/N, so below S/N 30 is where they are large.
fig, ax = plt.subplots(figsize=(7, 3.4))
x = np.arange(len(counts))
ax.bar(x - 0.2, counts["rejected"], 0.4, label="rejected by the cut")
ax.bar(x + 0.2, counts["only"], 0.4, label="rejected by this cut alone")
ax.set_xticks(x, [f"{cut}\n{threshold}" for cut, threshold in zip(counts["cut"], counts["threshold"])], fontsize=8)
ax.set_ylabel("stars")
ax.set_title(f"quality_cuts: {mask.sum()} of {len(catalogue)} mock catalogue stars pass every cut", fontsize=10)
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# Predicted labels
# ----------------
# The labels a network would predict for all 3000 stars: the true ones plus noise, the noise
# also given as the errors ``e_<label>``, as :func:`skstellar.predict_table` gives the ensemble's
# calibrated errors.
rng = np.random.default_rng(0)
snr = np.asarray(catalogue["snr"])
predicted = Table({"id": catalogue["id"], "snr": snr})
for label, sigma in {"teff": 40.0, "logg": 0.07, "feh": 0.04, "mgfe": 0.03, "ali": 0.1}.items():
    predicted[f"e_{label}"] = sigma * np.clip(60 / snr, 0.5, 2.5)
    predicted[label] = catalogue[label] + rng.normal(0, 1, len(predicted)) * predicted[f"e_{label}"]
true_population = np.asarray(catalogue["population"])

# %%
# The thin and thick disks
# ------------------------
# :func:`~skstellar.science.separate_disks` clusters the stars in [Fe/H] and [Mg/Fe] (scaled to
# unit variance) with HDBSCAN and names the clusters by their mean [Mg/Fe] (lowest "thin",
# highest "thick"); stars in no cluster are "noise" -- a sizable fraction is expected, 35 % in the
# thesis. It reads the columns ``feh`` and ``mgfe`` (``columns=`` names others).
population, probability = separate_disks(predicted)
assigned = np.isin(population, ["thin", "thick"])
right = population[assigned] == true_population[assigned]
print({str(name): int(np.sum(population == name)) for name in np.unique(population)})
print(f"assigned {assigned.mean():.0%} of the stars; {right.mean():.1%} of those to their true population")
print("the globular cluster's stars:", {str(name): int(np.sum(population[true_population == "globular"] == name))
                                        for name in np.unique(population)})

# %%
# Left, the stars by their true population; right, as ``separate_disks`` names them (marker size:
# membership probability). The two sequences are found and named right; the noise lies between
# them and at their ends, and the globular cluster ([Fe/H] = -1.25), too small and too sparse
# for a cluster of its own, is noise.
colours = {"thin": "tab:blue", "thick": "tab:red", "globular": "tab:green", "noise": "0.7", "other": "tab:orange"}
fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), sharex=True, sharey=True)
for name in ("thin", "thick", "globular"):
    rows = true_population == name
    axes[0].scatter(predicted["feh"][rows], predicted["mgfe"][rows], s=4, color=colours[name],
                    label=f"{name} ({rows.sum()})")
for name in ("noise", "other", "thin", "thick"):
    rows = population == name
    if rows.any():
        axes[1].scatter(predicted["feh"][rows], predicted["mgfe"][rows], s=2 + 8 * probability[rows],
                        color=colours[name], label=f"{name} ({rows.sum()})")
axes[0].set_title("true population (labels with noise)", fontsize=10)
axes[1].set_title(f"separate_disks: {assigned.mean():.0%} assigned, {right.mean():.1%} of them right", fontsize=10)
for ax in axes:
    ax.set_xlabel("[Fe/H]")
    ax.legend(markerscale=3, fontsize=8, loc="upper right")
axes[0].set_ylabel("[Mg/Fe]")
fig.tight_layout()

# %%
# Assigning new stars
# -------------------
# :class:`~skstellar.science.DiskSeparator` is the estimator form: fit on one set of stars,
# ``predict`` the population of new ones (HDBSCAN's ``approximate_predict``) without refitting,
# e.g. a new data release against the clusters of the last one. Here: fit on half the stars,
# assign the other half.
half = np.arange(len(predicted)) % 2 == 0
X = np.column_stack([predicted["feh"], predicted["mgfe"]])
separator = DiskSeparator().fit(X[half])
new_population = separator.predict(X[~half])
new_assigned = np.isin(new_population, ["thin", "thick"])
new_right = new_population[new_assigned] == true_population[~half][new_assigned]
print("cluster means ([Fe/H], [Mg/Fe]):",
      {separator.cluster_names_[k]: np.round(mean, 2).tolist() for k, mean in enumerate(separator.cluster_means_)})
print(f"new stars: {new_assigned.mean():.0%} assigned, {new_right.mean():.1%} of those right")

# %%
# Li-rich giants
# --------------
# :func:`~skstellar.science.select_li_rich` applies the thesis' selection: A(Li) > 2,
# log g < 3.5, Teff < 5500 K, S/N > 25 and errors e_Teff < 50 K, e_log g, e_[Fe/H],
# e_A(Li) < 0.1 dex; it returns the selected rows, richest first. The error cuts keep only
# well-measured stars, at the price of candidates at lower S/N; with ``max_e_*=None`` the label
# cuts alone decide. A star with NaN in a column a cut reads fails that cut.
selected = select_li_rich(predicted)
label_cuts_only = select_li_rich(predicted, max_e_teff=None, max_e_logg=None, max_e_feh=None, max_e_ali=None)
planted = catalogue["id"][catalogue["li_rich"]]
for name, table in (("all cuts", selected), ("label cuts only", label_cuts_only)):
    found = np.isin(table["id"], planted)
    print(f"{name:16s}: {len(table):3d} selected, {found.sum()} of the {len(planted)} planted Li-rich giants")
missed = ~np.isin(planted, label_cuts_only["id"])
low_snr = catalogue["snr"][catalogue["li_rich"]][missed] <= 25
print(f"of the {missed.sum()} planted ones the label cuts miss, {low_snr.sum()} have S/N <= 25; the noise moved "
      f"the other {(~low_snr).sum()} out of a label cut")
for column, fmt in (("teff", ".0f"), ("logg", ".2f"), ("ali", ".2f"), ("e_ali", ".2f"), ("snr", ".0f")):
    selected[column].info.format = fmt
print(selected["id", "teff", "logg", "ali", "e_ali", "snr"][:5])

# %%
# A Kiel diagram coloured by A(Li) (the richest drawn on top): the selection box (dotted) is
# the giant branch below 5500 K and log g 3.5. Circles: the stars the full selection keeps;
# crosses: those only the label cuts keep, at S/N below 60, where the errors fail the cuts.
# The Li-rich dwarfs at the left are normal: hot dwarfs keep their lithium.
order = np.argsort(predicted["ali"])
lonely = ~np.isin(label_cuts_only["id"], selected["id"])
fig, ax = plt.subplots(figsize=(7.5, 5.2))
points = ax.scatter(predicted["teff"][order], predicted["logg"][order], c=predicted["ali"][order], s=3,
                    cmap="viridis", vmin=0, vmax=3.5)
ax.scatter(selected["teff"], selected["logg"], s=45, facecolors="none", edgecolors="red", lw=0.9,
           label=f"selected, all cuts ({len(selected)})")
ax.scatter(label_cuts_only["teff"][lonely], label_cuts_only["logg"][lonely], s=30, marker="x", color="k", lw=0.8,
           label=f"label cuts only: an error cut fails ({lonely.sum()})")
ax.axvline(5500, color="red", ls=":", lw=0.8)
ax.axhline(3.5, color="red", ls=":", lw=0.8)
ax.invert_xaxis()
ax.invert_yaxis()
ax.set_xlabel("predicted Teff (K)")
ax.set_ylabel("predicted log g")
ax.legend(loc="lower left", fontsize=8)
fig.colorbar(points, ax=ax, label="predicted A(Li)")
fig.tight_layout()
plt.show()
