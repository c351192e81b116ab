"""Saliency line by line: which known lines carry each label, and which labels read alike."""

import functools
from importlib import resources

import numpy as np

__all__ = ["LABEL_ELEMENTS", "default_lines", "line_attribution", "saliency_correlation"]

#: The element whose lines should carry each abundance label.
LABEL_ELEMENTS = {"feh": "Fe", "mgfe": "Mg", "alfe": "Al", "ali": "Li"}


@functools.lru_cache(maxsize=1)
def _read_default_lines():
    with resources.files("skstellar.explain").joinpath("data", "lines.csv").open("r", encoding="utf-8") as fh:
        data = np.genfromtxt(fh, delimiter=",", names=True, dtype=None, encoding="utf-8")
    return data


def default_lines():
    """The line table shipped with :mod:`skstellar.explain`.

    125 strong lines of the GIRAFFE HR10 (5339-5619 A), HR15N (6444-6818 A) and HR21
    (8475-8982 A) windows: Mg I 5528.41, 8717.81, 8736.02, 8806.75; Al I 5557.06, 8772.87,
    8773.90; Li I 6707.8; H alpha; the Ca II triplet; and the deepest Fe, Ca, Si, Ti and Ni
    lines (picked from the package's line list by the depth the mock survey's physics gives them
    in a red-clump giant and a solar dwarf; ``skstellar/explain/data/PROVENANCE.md`` says how).

    Returns
    -------
    astropy.table.Table
        Columns ``wavelength`` (air, rest frame, Angstrom), ``species`` (e.g. "Mg I"),
        ``setup`` and ``depth`` (the larger of the two reference stars' line depths).

    Examples
    --------
    >>> from skstellar.explain import default_lines
    >>> lines = default_lines()
    >>> len(lines), lines.colnames
    (125, ['wavelength', 'species', 'setup', 'depth'])
    >>> lines[lines["species"] == "Al I"]["wavelength"][-2:].tolist()
    [8772.87, 8773.9]
    """
    from astropy.table import Table

    data = _read_default_lines()
    table = Table({name: np.array(data[name]) for name in data.dtype.names})
    table["wavelength"].unit = "Angstrom"
    return table


def _columns(lines):
    """``(wavelength, species)`` arrays of a line table (astropy, pandas, dict, structured array)."""
    if lines is None:
        data = _read_default_lines()
        return np.asarray(data["wavelength"], dtype=np.float64), np.asarray(data["species"]).astype(str)
    for attribute in ("colnames", "columns", "keys"):
        names = getattr(lines, attribute, None)
        if names is not None:
            names = list(names() if callable(names) else names)
            break
    else:
        names = list(getattr(getattr(lines, "dtype", None), "names", None) or [])
    missing = [c for c in ("wavelength", "species") if c not in names]
    if missing:
        raise ValueError(f"the line table lacks the column(s) {missing}; it needs 'wavelength' (Angstrom) and "
                         f"'species' (e.g. 'Mg I'), and has {names}.")
    try:
        wavelength = np.asarray(lines["wavelength"], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("the line table's 'wavelength' column must hold numbers (Angstrom).") from None
    if wavelength.ndim != 1 or not np.isfinite(wavelength).all():
        raise ValueError("the line table's 'wavelength' column must be 1-D and finite.")
    return wavelength, np.asarray(lines["species"]).astype(str)


def _check_map(saliency_map, window):
    if saliency_map.wavelength_unit != "Angstrom":
        raise ValueError("this saliency map is on pixel indices (the model has no SetupStitcher), so its pixels "
                         "cannot be matched to lines; compute it with a pipeline that stitches the setups.")
    if not window > 0:
        raise ValueError(f"window must be a positive number of Angstrom; got {window!r}.")


def _window_sums(saliency_map, wavelength, window):
    """Per label and line: the sum of the saliency and of its absolute value within ``window``."""
    order = np.argsort(saliency_map.wavelength, kind="stable")
    pixels = saliency_map.wavelength[order]
    values = saliency_map.mean_values()[:, order].astype(np.float64)
    lo = np.searchsorted(pixels, wavelength - window, side="left")
    hi = np.searchsorted(pixels, wavelength + window, side="right")
    zero = np.zeros((values.shape[0], 1))
    signed = np.concatenate([zero, np.cumsum(values, axis=1)], axis=1)
    absolute = np.concatenate([zero, np.cumsum(np.abs(values), axis=1)], axis=1)
    return signed[:, hi] - signed[:, lo], absolute[:, hi] - absolute[:, lo], absolute[:, -1], hi > lo


def line_attribution(saliency_map, *, lines=None, window=0.3):
    """Rank the known lines by their share of each label's saliency.

    For each label, the share of the total ``|saliency|`` (summed over all pixels) that lies
    within ``window`` A of each line centre, with the sign of the saliency summed there. A
    negative sign on a line of the label's element is what an abundance read from that line
    looks like: a deeper line, a higher label.

    Parameters
    ----------
    saliency_map : SaliencyMap
        From :func:`saliency` on a model with a SetupStitcher (a wavelength axis). Maps per
        spectrum or member are averaged first.
    lines : table, default=None
        Any table (astropy Table, pandas DataFrame, dict of columns, structured array) with
        ``wavelength`` (rest-frame air, Angstrom) and ``species`` columns; None uses
        :func:`default_lines`. Lines with no pixel within ``window`` are left out.
    window : float, default=0.3
        Half-width (Angstrom) of the window around each line centre. Windows of close lines
        overlap, so shares of blends are counted for each line.

    Returns
    -------
    astropy.table.Table
        One row per label and line, best share first within each label: ``label``, ``rank``
        (1 = largest share), ``species``, ``wavelength``, ``share`` (fraction of the label's total
        ``|saliency|``), ``sign`` ("+" or "-") and ``saliency`` (the sum within the window, in
        the label's unit).

    Examples
    --------
    >>> import numpy as np
    >>> from skstellar.explain import SaliencyMap, line_attribution
    >>> wave = np.arange(8800.0, 8810.0, 0.1)
    >>> values = np.where(np.abs(wave - 8806.75) < 0.2, -1.0, 0.01)[None, :]
    >>> smap = SaliencyMap(values, wavelength=wave, setup=np.full(wave.size, "HR21"), labels=["mgfe"],
    ...                    units=["dex"], per="mean", members=np.arange(1), mean_flux=np.ones(wave.size),
    ...                    n_spectra=1, wavelength_unit="Angstrom")
    >>> top = line_attribution(smap)[0]
    >>> str(top["species"]), float(top["wavelength"]), str(top["sign"]), round(float(top["share"]), 2)
    ('Mg I', 8806.75, '-', 0.81)
    """
    from astropy.table import Table

    _check_map(saliency_map, window)
    wavelength, species = _columns(lines)
    signed, absolute, total, covered = _window_sums(saliency_map, wavelength, window)
    rows = []
    for i, label in enumerate(saliency_map.labels):
        share = absolute[i] / total[i] if total[i] > 0 else np.zeros_like(absolute[i])
        order = [j for j in np.argsort(-share, kind="stable") if covered[j]]
        for rank, j in enumerate(order, start=1):
            rows.append((label, rank, species[j], wavelength[j], share[j], "-" if signed[i, j] < 0 else "+",
                         signed[i, j]))
    names = ("label", "rank", "species", "wavelength", "share", "sign", "saliency")
    table = Table(rows=rows, names=names) if rows else Table(names=names, dtype=(str, int, str, float, float,
                                                                                   str, float))
    table["wavelength"].unit = "Angstrom"
    table.meta["window"] = window
    return table


def saliency_correlation(saliency_map, *, lines=None, window=0.3, elements=None):
    """How alike the labels' saliency maps are, and how much each label reads other elements' lines.

    Labels correlated in the training set are a trap (the thesis' warning, its Fig. 32): when
    [Mg/Fe] falls as [Fe/H] rises among the training stars, the network can predict [Mg/Fe]
    from the iron lines, and does so wherever that is easier than reading the Mg lines. Its
    [Mg/Fe] is then right for stars like the training set and wrong for others (a
    metal-poor star that is not alpha-rich, say). Two signs of it: the [Mg/Fe] map
    correlates strongly (here, negatively) with the [Fe/H] map, and a large share of its
    ``|saliency|`` lies on lines of elements other than Mg ("borrowed" signal).

    Parameters
    ----------
    saliency_map : SaliencyMap
        Maps per spectrum or member are averaged first.
    lines : table, default=None
        A line table with ``wavelength`` and ``species`` (see :func:`line_attribution`).
    window : float, default=0.3
        Half-width (Angstrom) of the window around each line.
    elements : dict of str to str, default=None
        The element of each abundance label (default: ``LABEL_ELEMENTS``, e.g. "mgfe" -> "Mg").

    Returns
    -------
    astropy.table.Table
        One row per label: ``label``; one column per label holding the Pearson correlation of the
        two maps over the pixels; ``on_lines``, the share of ``|saliency|`` within ``window`` of
        any line of the table; ``own``, on lines of the label's element; ``borrowed``, on lines
        of other elements (``own`` and ``borrowed`` are NaN for a label with no element, such
        as Teff or log g). A pixel near lines of both counts as the label's own.

    Notes
    -----
    In the mock survey (:mod:`skstellar.datasets`) [Mg/Fe] scales all the alpha elements
    (O, Ne, Mg, Si, S, Ca, Ti), so Si, Ca and Ti lines there carry [Mg/Fe] legitimately.

    Examples
    --------
    >>> import numpy as np
    >>> from skstellar.explain import SaliencyMap, saliency_correlation
    >>> wave = np.arange(8800.0, 8810.0, 0.1)
    >>> mg = np.where(np.abs(wave - 8806.75) < 0.2, -1.0, 0.0)
    >>> smap = SaliencyMap(np.stack([mg, -0.5 * mg]), wavelength=wave, setup=np.full(wave.size, "HR21"),
    ...                    labels=["mgfe", "feh"], units=["dex", "dex"], per="mean",
    ...                    members=np.arange(1), mean_flux=np.ones(wave.size), n_spectra=1,
    ...                    wavelength_unit="Angstrom")
    >>> table = saliency_correlation(smap)
    >>> round(float(table["feh"][0]), 2), float(table["own"][0]), float(table["borrowed"][1])
    (-1.0, 1.0, 1.0)
    """
    from astropy.table import Table

    _check_map(saliency_map, window)
    wavelength, species = _columns(lines)
    elements = LABEL_ELEMENTS if elements is None else elements
    element_of_line = np.array([s.split()[0] for s in species])
    values = saliency_map.mean_values().astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = np.corrcoef(values) if values.shape[0] > 1 else np.ones((1, 1))
    order = np.argsort(saliency_map.wavelength, kind="stable")
    pixels = saliency_map.wavelength[order]

    def near(selected):
        mask = np.zeros(pixels.size, dtype=bool)
        lo = np.searchsorted(pixels, wavelength[selected] - window, side="left")
        hi = np.searchsorted(pixels, wavelength[selected] + window, side="right")
        for a, b in zip(lo, hi):
            mask[a:b] = True
        return mask

    any_line = near(np.ones(wavelength.size, dtype=bool))
    table = Table()
    table["label"] = list(saliency_map.labels)
    for i, label in enumerate(saliency_map.labels):
        table[label] = np.atleast_2d(matrix)[:, i]
    on, own, borrowed = [], [], []
    for i, label in enumerate(saliency_map.labels):
        weight = np.abs(values[i, order])
        total = weight.sum() if weight.sum() > 0 else 1.0
        on.append(weight[any_line].sum() / total)
        element = elements.get(label)
        if element is None:
            own.append(np.nan)
            borrowed.append(np.nan)
            continue
        mine = near(element_of_line == element)
        own.append(weight[mine].sum() / total)
        borrowed.append(weight[any_line & ~mine].sum() / total)
    table["on_lines"], table["own"], table["borrowed"] = on, own, borrowed
    table.meta["window"] = window
    return table
