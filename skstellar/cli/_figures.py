"""The demo report's figures (matplotlib): one-to-one, Kiel, similarity map, calibration, disks.

Each function takes plain arrays and returns a Figure with axis labels, units and a legend,
so the demo decides what to plot and these only decide how.
"""

import numpy as np

__all__ = ["calibration", "disk_plane", "kiel", "one_to_one", "similarity_map"]

SET_COLOURS = {"training": "0.55", "validation": "tab:blue", "inner S/N>=30": "tab:green",
               "inner S/N<30": "tab:orange", "outer": "tab:red"}


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _bias_scatter(truth, pred):
    d = np.asarray(pred, float) - np.asarray(truth, float)
    d = d[np.isfinite(d)]
    return (np.mean(d), np.std(d), d.size) if d.size else (np.nan, np.nan, 0)


def one_to_one(truth, pred, sets, labels, titles, units):
    """Predicted against true label, one row per label and one column per set.

    ``truth`` and ``pred`` map label -> array over all stars; ``sets`` maps a set name to a
    boolean mask over the same stars. Each panel states the set's bias and scatter.
    """
    plt = _plt()
    names = [name for name, mask in sets.items() if np.any(mask)]
    fig, axes = plt.subplots(len(labels), len(names), figsize=(2.6 * len(names), 2.5 * len(labels)),
                             squeeze=False, constrained_layout=True)
    for i, label in enumerate(labels):
        t_all, p_all = np.asarray(truth[label], float), np.asarray(pred[label], float)
        finite = np.isfinite(t_all) & np.isfinite(p_all)
        lo, hi = np.percentile(np.concatenate([t_all[finite], p_all[finite]]), [0.5, 99.5])
        pad = 0.05 * (hi - lo)
        for j, name in enumerate(names):
            ax, mask = axes[i, j], np.asarray(sets[name])
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="k", lw=0.8, label="one-to-one")
            ax.scatter(t_all[mask], p_all[mask], s=4, alpha=0.6, color=SET_COLOURS.get(name, "tab:purple"),
                       label=name)
            bias, scatter, n = _bias_scatter(t_all[mask], p_all[mask])
            ax.text(0.04, 0.96, f"n={n}\nbias {bias:+.3g}\nscatter {scatter:.3g} {units[label]}",
                    transform=ax.transAxes, va="top", fontsize=7)
            ax.set_xlim(lo - pad, hi + pad)
            ax.set_ylim(lo - pad, hi + pad)
            ax.set_xlabel(f"true {titles[label]} [{units[label]}]", fontsize=8)
            ax.set_ylabel(f"predicted {titles[label]} [{units[label]}]", fontsize=8)
            ax.tick_params(labelsize=7)
            if i == 0:
                ax.set_title(name, fontsize=9)
                ax.legend(loc="lower right", fontsize=6)
    return fig


def kiel(teff, logg, colour, colour_label, *, highlight=None, highlight_label=None, title=None):
    """Kiel diagram (Teff against log g, both axes reversed) coloured by a label.

    ``highlight``: a boolean mask of stars drawn on top as large open stars (candidates).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.8), constrained_layout=True)
    teff, logg, colour = (np.asarray(a, float) for a in (teff, logg, colour))
    points = ax.scatter(teff, logg, c=colour, s=6, cmap="viridis", label="predicted labels")
    fig.colorbar(points, ax=ax, label=colour_label)
    if highlight is not None and np.any(highlight):
        ax.scatter(teff[highlight], logg[highlight], s=90, marker="*", facecolor="none", edgecolor="red",
                   linewidths=1.2, label=highlight_label or "selected")
    ax.invert_xaxis()
    ax.invert_yaxis()
    ax.set_xlabel("Teff [K]")
    ax.set_ylabel("log g [dex]")
    if title:
        ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    return fig


def similarity_map(training_xy, test_xy, test_sets, outer, *, title=None):
    """The joint t-SNE map: training stars grey, test stars by set, flagged stars circled."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 5.4), constrained_layout=True)
    ax.scatter(*np.asarray(training_xy).T, s=3, color="0.75", label="training")
    test_xy = np.asarray(test_xy)
    for name, mask in test_sets.items():
        if np.any(mask):
            ax.scatter(*test_xy[mask].T, s=6, color=SET_COLOURS.get(name, "tab:purple"), label=name)
    outer = np.asarray(outer, bool)
    if outer.any():
        ax.scatter(*test_xy[outer].T, s=40, facecolor="none", edgecolor="k", linewidths=0.7,
                   label="flagged: unlike the training set")
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(title or "joint t-SNE map of training and test spectra")
    ax.legend(fontsize=7, markerscale=2)
    return fig


def calibration(errors, stds, labels, titles, units):
    """|prediction - truth| against the ensemble std per label, with the share inside 1 sigma."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(labels), figsize=(3.0 * len(labels), 3.0), squeeze=False,
                             constrained_layout=True)
    for ax, label in zip(axes[0], labels):
        err, std = np.abs(np.asarray(errors[label], float)), np.asarray(stds[label], float)
        ok = np.isfinite(err) & np.isfinite(std) & (std > 0)
        ax.loglog(std[ok], err[ok], ".", ms=2, alpha=0.6, label="stars")
        if ok.any():
            line = np.array([std[ok].min(), std[ok].max()])
            ax.loglog(line, line, "k-", lw=0.8, label="|error| = std")
            inside = np.mean(err[ok] <= std[ok])
            ax.text(0.04, 0.96, f"{100 * inside:.0f} % within 1 std\n(68 % if calibrated)",
                    transform=ax.transAxes, va="top", fontsize=7)
        ax.set_xlabel(f"ensemble std of {titles[label]} [{units[label]}]", fontsize=8)
        ax.set_ylabel(f"|error| [{units[label]}]", fontsize=8)
        ax.legend(loc="lower right", fontsize=6)
    return fig


def disk_plane(feh, mgfe, population, *, truth=None):
    """[Mg/Fe] against [Fe/H]: density of all stars, then the HDBSCAN populations on top."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), constrained_layout=True, sharex=True, sharey=True)
    feh, mgfe, population = np.asarray(feh, float), np.asarray(mgfe, float), np.asarray(population)
    ok = np.isfinite(feh) & np.isfinite(mgfe)
    hb = axes[0].hexbin(feh[ok], mgfe[ok], gridsize=40, mincnt=1, cmap="Greys")
    fig.colorbar(hb, ax=axes[0], label="stars per bin")
    axes[0].set_title("density of predicted labels")
    colours = {"thin": "tab:blue", "thick": "tab:red", "noise": "0.7"}
    for name, colour in colours.items():
        m = population == name
        axes[1].scatter(feh[m], mgfe[m], s=5, color=colour, label=f"{name} ({m.sum()})")
    axes[1].set_title("HDBSCAN populations" + (f" (true thin/thick agree: {truth})" if truth else ""))
    axes[1].legend(fontsize=8, markerscale=2)
    for ax in axes:
        ax.set_xlabel("[Fe/H] [dex]")
        ax.set_ylabel("[Mg/Fe] [dex]")
    return fig
