"""Draw the figures of docs/science.rst into docs/_static/ (about 30 s on 2 cores).

    python docs/make_science_figures.py

Uses the mock survey only, except the right panel of the Li-rich figure, which reads the real
Gaia-ESO HR15N training labels from ../shared/data when they are there.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from astropy.table import Table  # noqa: E402

from skstellar.datasets import make_giraffe_survey, synthesize_spectra  # noqa: E402
from skstellar.preprocessing import lithium_preprocessor  # noqa: E402
from skstellar.science import quality_cuts, select_li_rich, separate_disks, to_xfe  # noqa: E402

OUT = Path(__file__).resolve().parent / "_static"
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "labels" / "labels_GIRAFFE_HR15N_training.csv"


def lithium_chain():
    giant = {"teff": [4700.0] * 2, "logg": [2.5] * 2, "feh": [0.0] * 2, "mgfe": [0.05] * 2,
             "alfe": [0.0] * 2, "ali": [1.0, 3.0]}
    raw = synthesize_spectra(giant, setups="HR15N", snr=80.0, rv=[-250.0, 120.0], random_state=0)
    pre = lithium_preprocessor()
    X = pre.fit_transform(raw)
    w = pre.named_steps["stitch"].wavelength_
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [2.2, 1]})
    for row, label in zip(X, ("A(Li) = 1.0, rv = -250 km/s", "A(Li) = 3.0, rv = +120 km/s")):
        a.plot(w, row, lw=0.5, label=label)
        b.plot(w, row, lw=1.0)
    for ax in (a, b):
        ax.axvline(6707.8, color="k", ls=":", lw=0.8)
        ax.set_xlabel("rest wavelength (Å)")
    a.axvline(6562.8, color="k", ls=":", lw=0.8)
    a.text(6564, 0.05, "Hα", fontsize=9, transform=a.get_xaxis_transform())
    a.text(6709, 0.05, "Li I", fontsize=9, transform=a.get_xaxis_transform())
    a.set_ylabel("normalised flux")
    a.set_title("lithium_preprocessor: 4701 bins of 0.075 Å, 6455-6807.5 Å")
    a.legend(loc="lower left", fontsize=8)
    b.set_xlim(6700, 6720)
    b.set_title("Li I 6707.8 Å and Ca I 6717.7 Å")
    fig.tight_layout()
    fig.savefig(OUT / "science_lithium_chain.png", dpi=110)
    plt.close(fig)


def disks():
    _, lab = make_giraffe_survey(2500, setups="HR15N", snr=None, random_state=1)
    lab = lab[np.isin(lab["population"], ["thin", "thick"])]
    rng = np.random.default_rng(1)
    feh = lab["feh"] + rng.normal(0, 0.04, len(lab))
    mgfe = lab["mgfe"] + rng.normal(0, 0.03, len(lab))
    pop, prob = separate_disks(feh, mgfe)
    truth = np.asarray(lab["population"])
    assigned = pop != "noise"
    right = (pop[assigned] == truth[assigned]).mean()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4), sharex=True, sharey=True)
    colours = {"thin": "tab:blue", "thick": "tab:red", "noise": "0.7"}
    for name in ("thin", "thick"):
        m = truth == name
        a.scatter(feh[m], mgfe[m], s=4, c=colours[name], label=name)
    for name in ("noise", "thin", "thick"):
        m = pop == name
        b.scatter(feh[m], mgfe[m], s=4 + 10 * prob[m], c=colours[name], label=f"{name} ({m.sum()})")
    a.set_title("true population (mock, label noise 0.04 / 0.03 dex)")
    b.set_title(f"separate_disks: {assigned.mean():.0%} assigned, {right:.1%} of them right")
    for ax in (a, b):
        ax.set_xlabel("[Fe/H]")
        ax.legend(markerscale=3, fontsize=8)
    a.set_ylabel("[Mg/Fe]")
    fig.tight_layout()
    fig.savefig(OUT / "science_disks.png", dpi=110)
    plt.close(fig)


def li_rich():
    _, lab = make_giraffe_survey(5000, setups="HR15N", snr=(30, 150), random_state=2)
    rng = np.random.default_rng(2)
    n = len(lab)
    cat = Table({"id": lab["id"], "teff": lab["teff"] + rng.normal(0, 40, n),
                 "logg": lab["logg"] + rng.normal(0, 0.07, n), "ali": lab["ali"] + rng.normal(0, 0.1, n),
                 "snr": lab["snr"]})
    found = select_li_rich(cat, on_missing="skip")  # the mock's catalogue errors are not the ensemble's
    planted = np.asarray(lab["li_rich"])
    hit = np.isin(found["id"], lab["id"][planted])
    panels = [("mock survey, noisy labels", cat, "teff", "logg", "ali", found,
               f"{len(found)} selected, {hit.sum()} of {planted.sum()} planted")]
    if REAL.exists():
        real = Table.read(REAL, format="ascii.csv")
        got = select_li_rich(real, columns={"ali": "LI1", "teff": "TEFF", "logg": "LOGG"}, on_missing="skip")
        panels.append(("Gaia-ESO iDR6 HR15N training labels", real, "TEFF", "LOGG", "LI1", got,
                       f"{len(got)} of {len(real)} selected"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, (title, t, te, lg, li, sel, note) in zip(axes[0], panels):
        sc = ax.scatter(t[te], t[lg], c=t[li], s=3, cmap="viridis", vmin=0, vmax=3.5)
        ax.scatter(sel[te], sel[lg], s=40, facecolors="none", edgecolors="r", lw=0.8, label=note)
        ax.axvline(5500, color="r", ls=":", lw=0.8)
        ax.axhline(3.5, color="r", ls=":", lw=0.8)
        ax.invert_xaxis()
        ax.invert_yaxis()
        ax.set_xlabel("Teff (K)")
        ax.set_ylabel("log g")
        ax.set_title(title, fontsize=10)
        ax.legend(loc="lower left", fontsize=8)
    fig.colorbar(sc, ax=axes[0].tolist(), label="A(Li)")
    fig.savefig(OUT / "science_li_rich.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def quality():
    _, lab = make_giraffe_survey(3000, setups="HR15N", population="mixed", snr=(10, 150), random_state=3)
    rng = np.random.default_rng(3)
    n = len(lab)
    # The mock catalogue has errors and S/N; flags, v sin i and [M/H] are drawn here for the figure.
    lab["vsini"] = rng.exponential(6.0, n)
    lab["mh"] = lab["feh"] + 0.3 * lab["mgfe"] + rng.normal(0, 0.08, n)
    lab["tech"] = np.where(rng.random(n) < 0.04, "10302-13-14-00", "")
    lab["peculi"] = np.where(rng.random(n) < 0.03, "1011-13-14-00", "")
    mask, counts = quality_cuts(lab)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    x = np.arange(len(counts))
    ax.bar(x - 0.2, counts["rejected"], 0.4, label="rejected by the cut")
    ax.bar(x + 0.2, counts["only"], 0.4, label="rejected by this cut only")
    ax.set_xticks(x, [f"{c}\n{t}" for c, t in zip(counts["cut"], counts["threshold"])], fontsize=8)
    ax.set_ylabel("stars")
    ax.set_title(f"quality_cuts on 3000 mock stars (S/N 10-150): {mask.sum()} pass every cut", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "science_quality.png", dpi=110)
    plt.close(fig)


def abundances():
    _, lab = make_giraffe_survey(1500, setups="HR15N", snr=None, random_state=4)
    a_fe = lab["feh"] + 7.45  # the mock's labels are on the Grevesse et al. (2007) scale
    a_mg = lab["mgfe"] + lab["feh"] + 7.53
    asplund09 = {"Mg": 7.60, "Fe": 7.50}
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.scatter(lab["feh"], to_xfe(a_mg, a_fe, "Mg"), s=3, label="Grevesse et al. 2007 (default)")
    ax.scatter(a_fe - 7.50, to_xfe(a_mg, a_fe, "Mg", solar=asplund09), s=3,
               label="Asplund et al. 2009 (solar=...)")
    ax.set_xlabel("[Fe/H]")
    ax.set_ylabel("[Mg/Fe] = to_xfe(A(Mg), A(Fe), 'Mg')")
    ax.set_title("the same A(Mg), A(Fe) on two solar scales", fontsize=10)
    ax.legend(markerscale=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "science_abundances.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for draw in (lithium_chain, disks, li_rich, quality, abundances):
        draw()
        print("drew", draw.__name__)
