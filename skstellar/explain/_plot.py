"""Saliency maps drawn on a broken wavelength axis, one row per label."""

import numpy as np

from ._lines import _columns

__all__ = ["plot_saliency"]

# Species marked by default: the lines an astronomer checks the labels against.
_MARKED = ("Mg I", "Al I", "Li I", "H I", "Ca II")


def _markers(lines):
    if lines is None:
        wavelength, species = _columns(None)
        keep = np.isin(species, _MARKED)
        return wavelength[keep], species[keep]
    if lines is False:
        return np.empty(0), np.empty(0, dtype=str)
    return _columns(lines)


def plot_saliency(saliency_map, *, spectrum=None, lines=None, labels=None, figsize=None):
    """Draw the saliency of each label on the wavelength axis, the setups side by side.

    The top row is a spectrum (the mean of the spectra the map was computed from, unless
    ``spectrum`` is given); below it one row per label, in its unit per unit of normalised
    flux. Each setup gets its own column (a broken wavelength axis: the gaps between the
    setups are left out). Known lines are marked by dotted vertical lines, labelled with
    their species on the spectrum row.

    Parameters
    ----------
    saliency_map : SaliencyMap
        Maps per spectrum or member are averaged first.
    spectrum : array-like of shape (n_pixels,), default=None
        The spectrum for the top row; None: ``saliency_map.mean_flux``.
    lines : table or False, default=None
        Lines to mark: a table with ``wavelength`` and ``species`` columns; None marks the
        Mg I, Al I, Li I, H I and Ca II lines of :func:`default_lines`; False marks none.
    labels : sequence of str, default=None
        The labels to draw, in this order; None: all.
    figsize : (float, float), default=None
        Figure size in inches; None: 4.5 inches per setup wide, 1.6 per row high.

    Returns
    -------
    matplotlib.figure.Figure
        Built without pyplot (no window opens; ``fig.savefig`` writes it). The line markers
        are the artists with gid "line-marker".

    Examples
    --------
    >>> import numpy as np
    >>> from skstellar.explain import SaliencyMap, plot_saliency
    >>> wave = np.concatenate([np.arange(5520.0, 5540.0, 0.06), np.arange(8800.0, 8815.0, 0.1)])
    >>> setup = np.where(wave < 7000, "HR10", "HR21")
    >>> values = -np.exp(-0.5 * ((wave - 8806.75) / 0.2) ** 2)[None, :]
    >>> smap = SaliencyMap(values, wavelength=wave, setup=setup, labels=["mgfe"], units=["dex"], per="mean",
    ...                    members=np.arange(1), mean_flux=1 + values[0] / 2, n_spectra=1,
    ...                    wavelength_unit="Angstrom")
    >>> fig = plot_saliency(smap)
    >>> len(fig.axes)
    4
    """
    from matplotlib.figure import Figure

    values = saliency_map.mean_values()
    if labels is None:
        rows = list(range(len(saliency_map.labels)))
    else:
        rows = [saliency_map.label_index(label) for label in ([labels] if isinstance(labels, str) else labels)]
    flux = saliency_map.mean_flux if spectrum is None else np.asarray(spectrum, dtype=np.float64)
    if flux.shape != saliency_map.wavelength.shape:
        raise ValueError(f"spectrum has shape {flux.shape}; the map has {saliency_map.wavelength.size} pixels.")
    setups = list(dict.fromkeys(saliency_map.setup.tolist()))
    columns = [np.flatnonzero(saliency_map.setup == s) for s in setups]
    mark_wave, mark_species = _markers(lines)
    angstrom = saliency_map.wavelength_unit == "Angstrom"

    n_rows = 1 + len(rows)
    fig = Figure(figsize=figsize or (4.5 * len(setups), 1.6 * n_rows + 0.6), layout="constrained")
    axes = fig.subplots(n_rows, len(setups), sharex="col", sharey="row", squeeze=False)
    fig.get_layout_engine().set(wspace=0.01)
    for c, (setup, pix) in enumerate(zip(setups, columns)):
        wave = saliency_map.wavelength[pix]
        axes[0, c].plot(wave, flux[pix], color="0.2", lw=0.6)
        axes[0, c].set_title(setup or "pixels", fontsize=9)
        for r, i in enumerate(rows, start=1):
            axes[r, c].plot(wave, values[i, pix], color=f"C{i % 10}", lw=0.6)
            axes[r, c].axhline(0.0, color="0.6", lw=0.4)
        inside = (mark_wave >= wave.min()) & (mark_wave <= wave.max()) if angstrom else np.zeros(0, dtype=bool)
        last_text = -np.inf
        for w, s in sorted(zip(mark_wave[inside], mark_species[inside])):
            for r in range(n_rows):
                axes[r, c].axvline(w, color="0.5", lw=0.5, ls=":", gid="line-marker")
            if w - last_text > 0.02 * np.ptp(wave):  # a label per crowded group, not a smudge
                axes[0, c].annotate(f"{s} {w:.1f}", (w, 0.02), xycoords=("data", "axes fraction"),
                                    rotation=90, fontsize=6, va="bottom", ha="right")
                last_text = w
        axes[-1, c].set_xlabel("wavelength [Å]" if angstrom else "pixel", fontsize=8)
        # Broken axis: no spine between neighbouring setups.
        for ax in axes[:, c]:
            ax.tick_params(labelsize=7)
            if c > 0:
                ax.spines["left"].set_visible(False)
                ax.tick_params(left=False)
            if c < len(setups) - 1:
                ax.spines["right"].set_visible(False)
    axes[0, 0].set_ylabel("flux", fontsize=8)
    for r, i in enumerate(rows, start=1):
        unit = saliency_map.units[i] or "label"
        axes[r, 0].set_ylabel(f"{saliency_map.labels[i]}\n[{unit} / flux]", fontsize=8)
    return fig
