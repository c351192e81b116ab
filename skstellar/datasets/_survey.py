"""The public generators: `make_giraffe_survey` and `synthesize_spectra`."""

import numbers
from collections.abc import Mapping

import numpy as np
from astropy.table import Table
from joblib import Parallel, delayed

from ..spectra import SetupData, SpectralSet
from . import _cache
from ._observe import (
    add_cosmics,
    add_emission,
    add_noise,
    add_zero_runs,
    distort_continuum,
    shift,
)
from ._populations import POPULATIONS, draw_labels
from ._profiles import MAX_ABS_RV, render, setup_model, sigma_instrument
from ._setups import SETUPS, check_setups

__all__ = ["make_giraffe_survey", "synthesize_spectra"]

LABELS = ("teff", "logg", "feh", "mgfe", "alfe", "ali", "vmic")
REQUIRED = ("teff", "logg", "feh", "mgfe", "alfe")
# What the physics is meant for; labels outside raise an error naming the star.
VALID_RANGE = {
    "teff": (3500.0, 9000.0), "logg": (-0.5, 6.0), "feh": (-4.0, 1.5), "mgfe": (-1.0, 1.5),
    "alfe": (-2.0, 2.5), "ali": (-1.0, 4.5), "vmic": (0.0, 5.0),
}
SOLAR_LI = 1.05
CHUNK = 256  # stars per synthesis chunk: bounds memory and fixes the random streams


def _as_generator(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    if random_state is None or isinstance(random_state, numbers.Integral):
        return np.random.default_rng(random_state)
    raise TypeError(
        "random_state must be None, an int, a numpy Generator or RandomState; "
        f"got {type(random_state).__name__}."
    )


def default_vmic(teff, logg):
    """Microturbulence (km/s) when the labels give none: about 1 in dwarfs, 1.5 in giants."""
    v = 1.1 + 0.00025 * (np.asarray(teff) - 5500.0) - 0.13 * (np.asarray(logg) - 4.2)
    return np.clip(v, 0.5, 2.8)


def _label_arrays(labels):
    if isinstance(labels, Table):
        cols = {k: labels[k] for k in labels.colnames}
    elif isinstance(labels, Mapping):
        cols = dict(labels)
    elif isinstance(labels, np.ndarray) and labels.dtype.names:
        cols = {k: labels[k] for k in labels.dtype.names}
    else:
        raise TypeError(
            "labels must be an astropy Table, a dict of columns or a structured array with "
            f"columns {REQUIRED} (+ optional 'ali', 'vmic'); got {type(labels).__name__}."
        )
    missing = [k for k in REQUIRED if k not in cols]
    if missing:
        raise ValueError(
            f"labels lack the column(s) {missing}; required: {REQUIRED}, optional: ('ali', 'vmic')."
        )
    out = {}
    n = None
    for k in REQUIRED + ("ali", "vmic"):
        if k not in cols:
            continue
        try:
            a = np.atleast_1d(np.asarray(cols[k], dtype=np.float64))
        except (TypeError, ValueError):
            raise ValueError(f"labels column {k!r} is not numeric.") from None
        if a.ndim != 1:
            raise ValueError(f"labels column {k!r} must be 1-D, got shape {a.shape}.")
        if n is None:
            n = a.size
        elif a.size != n:
            raise ValueError(f"labels column {k!r} has {a.size} rows, 'teff' has {n}.")
        out[k] = a
    if n == 0:
        raise ValueError("labels has no rows.")
    out.setdefault("ali", np.full(n, SOLAR_LI))
    out.setdefault("vmic", default_vmic(out["teff"], out["logg"]))
    for k in LABELS:
        a = out[k]
        lo, hi = VALID_RANGE[k]
        bad = ~np.isfinite(a) | (a < lo) | (a > hi)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"labels row {i}: {k} = {float(a[i])} is outside the range the synthesis "
                f"covers [{lo}, {hi}]."
            )
    ids = None
    if "id" in cols:
        ids = np.asarray(cols["id"]).astype(str)
    return out, n, ids


def _per_star(value, n, name, lo, hi):
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        a = np.full(n, float(a))
    if a.shape != (n,):
        raise ValueError(
            f"{name} must be a scalar or have one value per star ({n}); got shape {a.shape}."
        )
    bad = ~np.isfinite(a) | (a < lo) | (a > hi)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{name} of star {i} is {float(a[i])}; expected a finite value in [{lo}, {hi}]."
        )
    return np.array(a)


def _synthesize(labels, setups, rv, snr, seed, artefacts=None, n_jobs=None):
    """Chunked synthesis of all setups. ``artefacts``: dict of per-star observation effects.

    Chunks are independent (each has its own random stream, fixed by ``seed``, the
    chunk number and the setup), so they run in threads -- numpy and scipy.sparse release the GIL --
    and the output does not depend on ``n_jobs``.
    """
    n = labels["teff"].size
    models = {name: setup_model(name) for name in setups}
    flux = {name: np.empty((n, SETUPS[name].n_pixels), dtype=np.float32) for name in setups}
    error = {name: None if snr is None else np.empty_like(flux[name]) for name in setups}

    def run(c):
        sl = slice(c * CHUNK, min((c + 1) * CHUNK, n))
        chunk = {k: v[sl] for k, v in labels.items()}
        for name in setups:
            model = models[name]
            # Keyed by the setup's name, not its position: a setup's spectra do not
            # depend on which other setups are asked for.
            key = (c, list(SETUPS).index(name))
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))
            rest = render(model, chunk)
            if artefacts is not None:
                em = np.flatnonzero(artefacts["emission"][sl])
                if em.size:
                    sigma = float(sigma_instrument(model.wave.mean(), model.resolution))
                    add_emission(rest, model.wave, name, sigma, em, rng, artefacts["emission_strength"])
            obs = shift(rest, model.wave, SETUPS[name].n_pixels, rv[sl])
            del rest
            if artefacts is not None:
                bad = np.flatnonzero(artefacts["bad_norm"][sl])
                if bad.size:
                    sub = obs[bad]
                    distort_continuum(sub, rng)
                    obs[bad] = sub
            if snr is not None:
                err = add_noise(obs, snr[sl], rng)
                if artefacts is not None:
                    add_cosmics(obs, rng, artefacts["cosmic_rate"])
                    add_zero_runs(obs, err, rng, artefacts["zero_run_probability"])
                error[name][sl] = err
            flux[name][sl] = obs

    n_chunks = -(-n // CHUNK)
    Parallel(n_jobs=n_jobs, backend="threading")(delayed(run)(c) for c in range(n_chunks))
    return {name: SetupData(SETUPS[name].wavelength, flux[name], error[name]) for name in setups}


def synthesize_spectra(
    labels, *, setups=("HR10", "HR21"), snr=None, rv=0.0, random_state=None, n_jobs=None
):
    """Synthesise GIRAFFE spectra for given stellar labels.

    The same physics as :func:`make_giraffe_survey`, for labels you choose: with
    ``snr=None`` and ``rv=0`` the spectra are noise-free and in the rest frame, so the
    effect of each label can be seen directly.

    Parameters
    ----------
    labels : astropy Table, dict of columns or structured array
        Columns ``teff`` (K), ``logg`` (cgs), ``feh``, ``mgfe``, ``alfe`` (dex) and
        optionally ``ali`` (A(Li), default 1.05) and ``vmic`` (km/s, default a
        Teff-log g relation: ~1 in dwarfs, ~1.5 in giants); an ``id`` column, if
        present, becomes the spectra's ids. Valid ranges: Teff 3500-9000 K, log g
        -0.5-6, [Fe/H] -4-1.5.
    setups : str or sequence of str, default=("HR10", "HR21")
        GIRAFFE setups among "HR10", "HR15N", "HR21", in stitching order.
    snr : None, float or array-like of shape (n,), default=None
        Signal-to-noise ratio per pixel at the continuum. None: no noise and no
        error array.
    rv : float or array-like of shape (n,), default=0.0
        Radial velocity in km/s (``abs(rv) <= 400``), applied as
        lambda_obs = lambda_rest (1 + rv / c).
    random_state : int, numpy Generator, RandomState or None
        Seeds the noise.
    n_jobs : int or None, default=None
        Threads synthesising chunks of 256 stars in parallel (None: 1 unless in a
        `joblib.parallel_config` context; -1: all cores). The output does not depend on it.

    Returns
    -------
    spectra : SpectralSet
        Normalised flux on the native 0.05 A grids, meta ``id``, ``rv``, ``snr``
        (inf when noise-free).

    See Also
    --------
    make_giraffe_survey : Draw labels from survey-like populations and observe them.

    Examples
    --------
    >>> from skstellar.datasets import synthesize_spectra
    >>> sun = {"teff": [5777.0], "logg": [4.44], "feh": [0.0], "mgfe": [0.0], "alfe": [0.0]}
    >>> s = synthesize_spectra(sun, setups="HR21")
    >>> s.shape
    (1, 10141)
    >>> w = s.wavelength("HR21")
    >>> bool(s.flux("HR21")[0, abs(w - 8542.09).argmin()] < 0.35)
    True
    """
    setups = check_setups(setups)
    arrays, n, ids = _label_arrays(labels)
    rv = _per_star(rv, n, "rv", -MAX_ABS_RV, MAX_ABS_RV)
    if snr is not None:
        snr = _per_star(snr, n, "snr", 1e-3, np.inf)
        if (snr <= 0).any():
            i = int(np.argmax(snr <= 0))
            raise ValueError(f"snr must be positive; star {i} has {snr[i]}.")
    seed = int(_as_generator(random_state).integers(0, 2**63 - 1))
    data = _synthesize(arrays, setups, rv, snr, seed, n_jobs=n_jobs)
    meta = Table()
    meta["id"] = ids if ids is not None else np.array([str(i) for i in range(n)])
    meta["rv"] = rv
    meta["snr"] = np.full(n, np.inf) if snr is None else snr
    return SpectralSet(data, meta)


def make_giraffe_survey(
    n_stars,
    *,
    setups=("HR10", "HR21"),
    population="disk",
    snr=(10.0, 150.0),
    random_state=None,
    edge_fraction=0.1,
    rv_scale=50.0,
    rv_error=0.0,
    cosmic_rate=3.0,
    zero_run_probability=0.03,
    emission_strength=(0.3, 1.5),
    n_jobs=None,
    cache=False,
):
    """A mock Gaia-ESO GIRAFFE survey: raw spectra and their true labels.

    Stars are drawn from survey-like label priors, their spectra synthesised from a
    real atomic line list (linemake, 5330-5630, 6440-6830, 8470-9010 A) with a
    one-layer LTE model -- Boltzmann excitation and Saha ionisation at a temperature
    tied to Teff and an electron pressure growing with log g, H- continuum opacity, a
    Milne-Eddington curve of growth, thermal + microturbulent + instrumental widths and
    pressure-broadened wings -- then observed: Doppler shifted, with noise, cosmic-ray
    hits and zero-flux runs.

    Parameters
    ----------
    n_stars : int
        Number of stars.
    setups : str or sequence of str, default=("HR10", "HR21")
        Among "HR10" (5339-5619 A, R = 19 800), "HR15N" (6444-6818 A, R = 17 000) and
        "HR21" (8475-8982 A, R = 16 200, the grid of the real Gaia-ESO files); all at
        the native 0.05 A sampling.
    population : {"disk", "edge", "mixed"}, default="disk"
        "disk": dwarfs and giants spread like the Gaia-ESO Kiel diagram; 72 % thin
        disk, 23 % thick disk (two separate sequences in [Mg/Fe] vs [Fe/H]), 5 % a
        globular cluster ([Fe/H] = -1.25 with a Mg-Al anticorrelation), and 2 % of the
        stars replaced by Li-rich giants (A(Li) 2-3.9, log g < 3.5, Teff < 5500 K).
        "edge": stars outside the training label box, equally split among the
        ``edge_kind`` values "hot" (Teff 7000-8000 K), "metal_poor" ([Fe/H] < -1.8),
        "metal_rich" ([Fe/H] > 0.8), "high_logg" (log g > 4.9), "extreme_al"
        ([Al/Fe] > 0.8 or < -0.6), "emission" (emission cores in H alpha, the Ca II
        triplet and strong HR10 lines) and "bad_norm" (a 10-40 % continuum
        distortion). "mixed": the disk with a fraction ``edge_fraction`` of edge stars.
    snr : (float, float), float or None, default=(10, 150)
        A range to draw the signal-to-noise ratio from (log-uniform), one value for
        all, or None for noise-free spectra (then no cosmic rays or zero runs either).
    random_state : int, numpy Generator, RandomState or None
        The same seed gives identical output.
    edge_fraction : float, default=0.1
        Fraction of edge stars when ``population="mixed"``.
    rv_scale : float, default=50.0
        Standard deviation (km/s) of the drawn radial velocities (clipped at +-350).
    rv_error : float, default=0.0
        Standard deviation (km/s) of the catalogue RV error: ``spectra.meta["rv"]`` is
        the true RV (``labels["rv"]``) plus this noise.
    cosmic_rate : float, default=3.0
        Mean number of cosmic-ray hits per spectrum and setup.
    zero_run_probability : float, default=0.03
        Chance per spectrum and setup of a run of zero-flux pixels (error = inf).
    emission_strength : (float, float), default=(0.3, 1.5)
        Range (uniform) of the peak height, in continuum units, of the emission added to
        each line of ``edge_kind="emission"`` stars. The default gives cores that rise
        above the continuum; (0.05, 0.3) only partly fills the absorption cores (a weakly
        active star, a little nebular emission), which shape-based scores can miss.
    n_jobs : int or None, default=None
        Threads synthesising chunks of 256 stars in parallel (None: 1 unless in a
        `joblib.parallel_config` context; -1: all cores). The output does not depend on it.
    cache : bool, str or path-like, default=False
        Keep the survey on disk and read it back on the next call with the same
        arguments: True uses ``$SKSTELLAR_CACHE`` or ``~/.cache/skstellar``, a path that
        folder. Needs an integer ``random_state``. A 10 000-star survey in three setups
        takes 1.9 GB.

    Returns
    -------
    spectra : SpectralSet
        Observed-frame normalised spectra, with flux errors; meta ``id``, ``rv``, ``snr``.
    labels : astropy.table.Table
        One row per star: ``id`` (``"mock-<6 hex digits from the seed>-<row>"``, so
        surveys drawn with different seeds have distinct ids); the true ``teff``,
        ``logg``, ``feh``, ``mgfe``, ``alfe``, ``ali``, ``vmic``; typical catalogue
        errors ``e_teff`` ... ``e_vmic`` (shrinking with S/N); the true ``rv``;
        ``snr``; ``population`` ("thin", "thick", "globular" or "edge");
        ``edge_kind`` ("" for disk stars); ``li_rich``.

    See Also
    --------
    synthesize_spectra : Spectra for labels you choose.

    Notes
    -----
    Solar labels (vmic 1.0 km/s) give, at GIRAFFE resolution, line-centre depths
    below the continuum of 0.806 (Ca II 8542), 0.621 (Mg I 8806.75), 0.582 (Mg I
    5528.4) and 0.242 (Al I 8773.9), against about 0.8, 0.6, 0.6 and 0.15-0.25 in the
    real Sun. The width Taylor expansion costs at most 0.005 in depth (rms 6e-4,
    worst for cool giants with vmic 2.8 km/s) against exact Gaussians.

    Examples
    --------
    >>> from skstellar.datasets import make_giraffe_survey
    >>> spectra, labels = make_giraffe_survey(20, random_state=0)
    >>> spectra.setups, spectra.shape
    (('HR10', 'HR21'), (20, 15742))
    >>> sorted(set(labels["population"]) - {"thin", "thick", "globular"})
    []
    """
    if not isinstance(n_stars, numbers.Integral) or isinstance(n_stars, bool) or n_stars < 1:
        raise ValueError(f"n_stars must be a positive integer, got {n_stars!r}.")
    n = int(n_stars)
    setups = check_setups(setups)
    if population not in POPULATIONS:
        raise ValueError(f"population must be one of {POPULATIONS}, got {population!r}.")
    if not 0.0 <= edge_fraction <= 1.0:
        raise ValueError(f"edge_fraction must be in [0, 1], got {edge_fraction!r}.")
    for name, v in (("rv_scale", rv_scale), ("rv_error", rv_error), ("cosmic_rate", cosmic_rate)):
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}.")
    if not 0.0 <= zero_run_probability <= 1.0:
        raise ValueError(f"zero_run_probability must be in [0, 1], got {zero_run_probability!r}.")
    if (np.ndim(emission_strength) != 1 or len(emission_strength) != 2
            or not 0.0 < emission_strength[0] <= emission_strength[1] < np.inf):
        raise ValueError(
            f"emission_strength must be a range (low, high) with 0 < low <= high, got {emission_strength!r}."
        )
    path = None
    if cache is not False and cache is not None:
        if not isinstance(random_state, numbers.Integral):
            raise ValueError(
                "cache needs an integer random_state (the cache key), "
                f"got {type(random_state).__name__}."
            )
        arguments = dict(
            n_stars=n, setups=list(setups), population=population, snr=snr,
            random_state=int(random_state), edge_fraction=edge_fraction, rv_scale=rv_scale,
            rv_error=rv_error, cosmic_rate=cosmic_rate, zero_run_probability=zero_run_probability,
        )
        if tuple(emission_strength) != (0.3, 1.5):  # the default keeps the caches written before it existed
            arguments["emission_strength"] = [float(v) for v in emission_strength]
        path = _cache.cache_file(cache, arguments)
        if path.exists():
            return _cache.load(path)
    rng = _as_generator(random_state)
    lab = draw_labels(n, population, rng, edge_fraction)
    if snr is None:
        snr_arr = None
    elif np.ndim(snr) == 0:
        snr_arr = _per_star(snr, n, "snr", 1e-3, np.inf)
    else:
        if len(snr) != 2 or not 0 < snr[0] <= snr[1]:
            raise ValueError(f"snr must be None, a positive number or a range (low, high); got {snr!r}.")
        snr_arr = np.exp(rng.uniform(np.log(snr[0]), np.log(snr[1]), n))
    rv_true = np.clip(rng.normal(0.0, rv_scale, n), -350.0, 350.0)
    rv_cat = rv_true + (rng.normal(0.0, rv_error, n) if rv_error > 0 else 0.0)
    seed = int(rng.integers(0, 2**63 - 1))
    artefacts = {
        "emission": lab["edge_kind"] == "emission",
        "bad_norm": lab["edge_kind"] == "bad_norm",
        "cosmic_rate": cosmic_rate,
        "zero_run_probability": zero_run_probability,
        "emission_strength": tuple(float(v) for v in emission_strength),
    }
    data = _synthesize({k: lab[k] for k in LABELS}, setups, rv_true, snr_arr, seed, artefacts, n_jobs)
    # A tag from the seed keeps ids unique when surveys drawn with different seeds are
    # concatenated (e.g. generated chunk by chunk).
    tag = f"{seed % 16**6:06x}"
    ids = np.array([f"mock-{tag}-{i:07d}" for i in range(n)])
    meta = Table()
    meta["id"] = ids
    meta["rv"] = rv_cat
    meta["snr"] = np.full(n, np.inf) if snr_arr is None else snr_arr
    labels = Table()
    labels["id"] = ids
    for k in LABELS:
        labels[k] = lab[k]
    s = np.full(n, 1e4) if snr_arr is None else snr_arr
    for k, (base, slope) in _LABEL_ERRORS.items():
        labels["e_" + k] = base + slope / s
    labels["rv"] = rv_true
    labels["snr"] = meta["snr"]
    labels["population"] = lab["population"]
    labels["edge_kind"] = lab["edge_kind"]
    labels["li_rich"] = lab["li_rich"]
    spectra = SpectralSet(data, meta)
    if path is not None:
        _cache.save(path, spectra, labels)
    return spectra, labels


# Catalogue-like label errors: base + slope / snr.
_LABEL_ERRORS = {
    "teff": (30.0, 1500.0), "logg": (0.05, 3.0), "feh": (0.03, 2.0), "mgfe": (0.03, 2.0),
    "alfe": (0.04, 3.0), "ali": (0.05, 3.0), "vmic": (0.1, 3.0),
}
