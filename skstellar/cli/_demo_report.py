"""The demo's figures and ``report.html``: what each chain predicted, flagged and read."""

import numpy as np

from .._labels import LABEL_TITLES as TITLES
from .._labels import LABEL_UNITS as UNITS
from . import _figures
from ._report import Report

__all__ = ["write_report"]


def _labels_of(chain, lab):
    return lab if (chain == "A" or lab == "ali") else lab + "_hr15n"


def _one_to_one_data(result, chain, truth_train, predictions, sets_test):
    """Truth, prediction and set masks over training + test stars of one chain."""
    n_train = len(result["train"])
    val = np.zeros(n_train, bool)
    val[result["pipe"].named_steps["cnn"].validation_index_] = True
    truth, pred, std = {}, {}, {}
    for lab in result["labels"]:
        col = _labels_of(chain, lab)
        truth[lab] = np.concatenate([np.asarray(truth_train[lab], float), np.asarray(predictions[f"true_{lab}"])])
        pred[lab] = np.concatenate([np.asarray(result["train"][lab], float), np.asarray(predictions[col])])
        std[lab] = np.concatenate([np.asarray(result["train"][f"e_{lab}"], float),
                                   np.asarray(predictions[f"e_{col}"])])
    pad = np.zeros(len(predictions), bool)
    sets = {"training": np.concatenate([~val, pad]), "validation": np.concatenate([val, pad])}
    sets.update({name: np.concatenate([np.zeros(n_train, bool), mask]) for name, mask in sets_test.items()})
    return truth, pred, std, sets


def write_report(out, results, truth_train, predictions, sets_test, science, saliency, summary, settings):
    import matplotlib

    matplotlib.use("Agg")
    from skstellar.explain import plot_saliency

    report = Report("skstellar demo: stellar labels from mock Gaia-ESO GIRAFFE spectra", figure_dir=out)
    report.text(
        f"Trained on {settings['n_train']} mock disk stars at S/N >= 30 ({settings['n_models']} CNN members, "
        f"the {settings['n_keep']} best kept, at most {settings['max_epochs']} epochs). Chain A reads HR10 + HR21 "
        "(Ambrosch et al. 2023); chain B reads HR15N (Nepal et al. 2023). Test stars: 'inner' disk stars at "
        "S/N 10-150 and 'outer' stars outside the training box or with broken spectra.")
    report.heading("Accuracy against the published figures")
    report.table([(c, t, n, f"{b:+.3f}", f"{s:.3f}", f"{e:.3f}", p, u) for c, t, u, n, b, s, e, p in summary],
                 ["chain", "label", "n", "bias", "scatter", "mean e_", "published precision", "unit"],
                 caption="Inner test stars with S/N >= 30 judged training-like: prediction minus truth")
    rows = []
    for name, mask in sets_test.items():
        for chain, col in (("A", "training_like"), ("B", "training_like_hr15n")):
            flagged = ~np.asarray(predictions[col], bool)[mask]
            rows.append((name, chain, int(mask.sum()), f"{100 * flagged.mean():.1f} %" if mask.any() else "-"))
    report.table(rows, ["set", "chain", "stars", "flagged unlike the training set"])
    report.table(_label_check_rows(predictions),
                 ["chain", "stars", "kind", "flagged", "by the label check", "worst residual at", "Ca II triplet",
                  "H alpha", "Li I", "Mg I", "Al I"],
                 caption="Why: per kind of test star, the fraction flagged (filter or label check), the fraction "
                 "whose predicted labels do not explain the spectrum, where their worst residual most often "
                 "lies [A], and the median residual per line region (about 1 or less when explained; '-' "
                 "where the chain does not cover the region)")

    for chain, result in results.items():
        name = "A (HR10 + HR21)" if chain == "A" else "B (HR15N)"
        truth, pred, std, sets = _one_to_one_data(result, chain, truth_train, predictions, sets_test)
        labels = result["labels"]
        report.heading(f"Chain {name}")
        report.figure(_figures.one_to_one(truth, pred, sets, labels, TITLES, UNITS),
                      f"one_to_one_{chain.lower()}",
                      f"Chain {name}: predicted against true labels per set, bias and scatter in each panel")
        test_std = {lab: std[lab][len(result["train"]):] for lab in labels}
        test_err = {lab: (pred[lab] - truth[lab])[len(result["train"]):] for lab in labels}
        inner_good = sets_test["inner S/N>=30"]
        report.figure(_figures.calibration({k: v[inner_good] for k, v in test_err.items()},
                                           {k: v[inner_good] for k, v in test_std.items()}, labels, TITLES,
                                           UNITS),
                      f"calibration_{chain.lower()}",
                      f"Chain {name}: |error| against the calibrated ensemble std, inner S/N >= 30 stars")
        colour, clabel = ("feh", "[Fe/H] [dex]") if chain == "A" else ("ali", "A(Li) [dex]")
        inner = np.asarray(predictions["set"]) == "inner"
        report.figure(_figures.kiel(predictions[_labels_of(chain, "teff")][inner],
                                    predictions[_labels_of(chain, "logg")][inner],
                                    predictions[_labels_of(chain, colour)][inner], clabel,
                                    title=f"Chain {name}: inner test stars"),
                      f"kiel_{chain.lower()}", f"Chain {name}: Kiel diagram of the predictions, coloured by {clabel}")
        flag_col = "training_like" if chain == "A" else "training_like_hr15n"
        report.figure(_figures.similarity_map(result["pipe"].named_steps["similarity"].training_embedding_,
                                              result["embedding"], sets_test,
                                              ~np.asarray(predictions[flag_col], bool),
                                              title=f"Chain {name}: joint t-SNE map"),
                      f"tsne_{chain.lower()}", f"Chain {name}: t-SNE map of training and test spectra; circled: "
                      "flagged unlike the training set")
        sal = saliency[chain]
        report.figure(plot_saliency(sal["map"]), f"saliency_{chain.lower()}",
                      f"Chain {name}: mean saliency d(label)/d(flux) per pixel, with line markers")
        report.figure(_correlation_figure(sal["correlation"]), f"saliency_correlation_{chain.lower()}",
                      f"Chain {name}: correlation between the labels' saliency maps")
        report.table(_attribution_rows(sal["lines"], sal["correlation"]),
                     ["label", "first line", "second line", "third line", "on own element's lines",
                      "borrowed from other elements"],
                     caption=f"Chain {name}: lines carrying the largest shares of each label's |saliency| "
                     "(within 0.3 A; sign - : a deeper line raises the label)")

    report.heading("Science: thin and thick disks (chain A)")
    disks = science["disks"]
    sub = predictions[disks["rows"]]
    report.figure(_figures.disk_plane(sub["feh"], sub["mgfe"], disks["population"],
                                      truth=f"{100 * disks['accuracy']:.0f} %"),
                  "disks", "[Mg/Fe] against [Fe/H] of training-like inner S/N >= 30 stars, and the HDBSCAN "
                  "populations (noise in grey)")
    report.text(f"{disks['n']} stars; {100 * disks['assigned']:.0f} % assigned to a disk, "
                f"{100 * disks['accuracy']:.0f} % of them to the population the mock drew them from.")
    report.heading("Science: Li-rich giant candidates (chain B)")
    li = science["li"]
    inner = np.asarray(predictions["set"]) == "inner"
    chosen = np.isin(np.asarray(predictions["id"]), np.asarray(li["table"]["id"]))
    report.figure(_figures.kiel(predictions["teff_hr15n"][inner], predictions["logg_hr15n"][inner],
                                predictions["ali"][inner], "A(Li) [dex]", highlight=chosen[inner],
                                highlight_label="Li-rich candidates", title="Chain B: Li-rich giant candidates"),
                  "li_rich", "Kiel diagram of chain B's inner test stars, Li-rich candidates starred")
    report.text(f"{len(li['table'])} candidates with the thesis' cuts (A(Li) > 2, log g < 3.5, Teff < 5500 K, "
                f"S/N > 25, e_Teff < 50 K, e_log g, e_[Fe/H], e_A(Li) < 0.1 dex); {li['found']} of the "
                f"{li['planted']} planted Li-rich giants among the test stars found. The error cuts were set for "
                "the spread of 8 members; the e_ columns here are calibrated to the validation residuals of a "
                "smaller ensemble and are wider, so most planted giants fail them (Li-rich giants are 2 % of the "
                f"training set). The label and S/N cuts alone select {li['n_label_cuts']} stars: recall "
                f"{100 * li['recall_label_cuts']:.0f} %, precision {100 * li['precision_label_cuts']:.0f} %. "
                "The table lists the strict selection (li_rich_candidates.ecsv).")
    cols = [c for c in ("id", "teff_hr15n", "logg_hr15n", "ali", "e_ali", "snr", "true_ali", "true_li_rich")
            if c in li["table"].colnames]
    report.table([[row[c] for c in cols] for row in li["table"]], cols, caption="Li-rich giant candidates")
    report.write(out / "report.html")
    return report


def _label_check_rows(predictions):
    """Per chain and kind of test star: flagged, by the label check, and the median residual per line."""
    kinds = np.where(np.asarray(predictions["set"]) == "inner", "inner (disk)",
                     np.asarray(predictions["true_edge_kind"]).astype(str))
    rows = []
    for chain, suffix in (("A", ""), ("B", "_hr15n")):
        if "labels_explained" + suffix not in predictions.colnames:
            continue
        for kind in dict.fromkeys(kinds):
            mask = kinds == kind
            flagged = ~np.asarray(predictions["training_like" + suffix], bool)[mask]
            unexplained = ~np.asarray(predictions["labels_explained" + suffix], bool)[mask]

            medians = [_median(predictions[column + suffix], mask) for column in (
                "explain_ca_triplet", "explain_halpha", "explain_li", "explain_mg", "explain_al")]
            worst = np.rint(np.asarray(predictions["explain_local_wavelength" + suffix], float)[mask][
                unexplained]).astype(int)
            values, counts = np.unique(worst, return_counts=True)
            rows.append((chain, int(mask.sum()), kind, f"{100 * flagged.mean():.0f} %",
                         f"{100 * unexplained.mean():.0f} %", str(values[np.argmax(counts)]) if worst.size else "-",
                         *medians))
    return rows


def _median(column, mask):
    values = np.asarray(column, float)[mask]
    return f"{np.nanmedian(values):.1f}" if np.isfinite(values).any() else "-"


def _attribution_rows(lines, correlation, top=3):
    rows = []
    for row in correlation:
        label = row["label"]
        mine = lines[lines["label"] == label][:top]
        cells = [f"{r['species']} {r['wavelength']:.2f} ({r['sign']}) {100 * r['share']:.0f} %" for r in mine]
        cells += [""] * (top - len(cells))
        rows.append((_title(label), *cells, _share(row["own"]), _share(row["borrowed"])))
    return rows


def _share(x):
    return "-" if not np.isfinite(x) else f"{100 * x:.0f} %"


def _title(label):
    return TITLES.get(label, label)


def _correlation_figure(correlation):
    import matplotlib.pyplot as plt

    names = list(correlation["label"])
    matrix = np.array([[float(row[other]) for other in names] for row in correlation])
    fig, ax = plt.subplots(figsize=(4.6, 4), constrained_layout=True)
    image = ax.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r")
    fig.colorbar(image, ax=ax, label="Pearson correlation of the saliency maps")
    titles = [_title(n) for n in names]
    ax.set_xticks(range(len(names)), titles, rotation=45)
    ax.set_yticks(range(len(names)), titles)
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
    ax.set_title("saliency correlation between labels")
    return fig
