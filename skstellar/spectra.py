"""The container of a batch of spectra: :class:`SpectralSet`."""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np
from astropy.table import Table, vstack

__all__ = ["SpectralSet", "SetupData"]


class SetupData:
    """The spectra of one instrument setup for all stars of a :class:`SpectralSet`.

    Parameters
    ----------
    wavelength : ndarray of shape (n_pixels,) or (n_stars, n_pixels), float64
        The stored grid (:attr:`grid`), in Angstrom; strictly increasing along the
        pixel axis. A 1-D grid is shared by every star, a 2-D grid gives each star its
        own.
    flux : ndarray of shape (n_stars, n_pixels), float32
    error : ndarray of shape (n_stars, n_pixels), float32, or None
        One-sigma flux uncertainty.
    scale : ndarray of shape (n_stars,), float64, or None
        Per-star factor on a shared 1-D grid: star ``i`` is sampled at
        ``grid * scale[i]``. A Doppler correction of a shared grid is such a factor
        (:class:`~skstellar.preprocessing.RadialVelocityCorrector` sets it), so it
        costs 8 bytes per star instead of 8 bytes per pixel.

    Attributes
    ----------
    wavelength : ndarray of shape (n_pixels,) or (n_stars, n_pixels)
        The effective grid of every star: :attr:`grid` itself, or ``grid * scale[:,
        None]`` (built on each access) when a scale is set.
    grid : ndarray of shape (n_pixels,) or (n_stars, n_pixels)
        The stored grid, without the scale: fast paths read it with :attr:`scale`.
    """

    __slots__ = ("_grid", "_flux", "_error", "_scale")

    def __init__(self, wavelength, flux, error=None, scale=None):
        object.__setattr__(self, "_grid", wavelength)
        object.__setattr__(self, "_flux", flux)
        object.__setattr__(self, "_error", error)
        object.__setattr__(self, "_scale", scale)

    def __setattr__(self, name, value):
        raise AttributeError(f"SetupData is read-only; build a new one (cannot set {name!r}).")

    def __reduce__(self):
        return (SetupData, (self._grid, self._flux, self._error, self._scale))

    @property
    def grid(self) -> np.ndarray:
        """The stored grid: ``(p,)`` or ``(n, p)``, without the per-star :attr:`scale`."""
        return self._grid

    @property
    def scale(self) -> np.ndarray | None:
        """Per-star factor ``(n,)`` on the shared :attr:`grid`, or None."""
        return self._scale

    @property
    def flux(self) -> np.ndarray:
        return self._flux

    @property
    def error(self) -> np.ndarray | None:
        return self._error

    @property
    def wavelength(self) -> np.ndarray:
        """The effective grid: ``(p,)`` if shared by all stars, else ``(n, p)`` float64."""
        if self._scale is None:
            return self._grid
        return self._grid[np.newaxis, :] * self._scale[:, np.newaxis]

    @property
    def shared_grid(self) -> bool:
        """True when every star of the setup has the same wavelength grid."""
        return self._grid.ndim == 1 and self._scale is None

    def take(self, rows: np.ndarray) -> SetupData:
        wave = self._grid if self._grid.ndim == 1 else self._grid[rows]
        err = None if self._error is None else self._error[rows]
        scale = None if self._scale is None else self._scale[rows]
        return SetupData(wave, self._flux[rows], err, scale)

    def __repr__(self) -> str:
        n, p = self._flux.shape
        grid = "per-star grids" if self._grid.ndim == 2 else "shared grid"
        if self._scale is not None:
            grid += " x per-star scale"
        err = ", with errors" if self._error is not None else ""
        return f"<SetupData: {n} stars x {p} px ({grid}{err})>"


def _as_setup(name, wavelength, flux, error=None, scale=None) -> SetupData:
    """Validate and convert the arrays of one setup; errors name the setup."""
    where = f"setup {name!r}"
    wave = np.asarray(wavelength, dtype=np.float64)
    flux = np.asarray(flux)
    if flux.dtype.byteorder not in ("=", "|") or flux.dtype != np.float32:
        # FITS data arrive big-endian; TensorFlow and numba want native float32. A value
        # beyond float32 becomes inf, which the SpectrumCleaner flags per star.
        with np.errstate(over="ignore"):
            flux = flux.astype(np.float32)
    if flux.ndim == 1:
        flux = flux[np.newaxis, :]
    if flux.ndim != 2:
        raise ValueError(f"{where}: flux must be 2-D (n_stars, n_pixels), got shape {flux.shape}.")
    if flux.shape[1] == 0:
        raise ValueError(f"{where}: flux has no pixels.")
    if wave.ndim not in (1, 2):
        raise ValueError(f"{where}: wavelength must be 1-D or 2-D, got shape {wave.shape}.")
    if wave.shape[-1] != flux.shape[1]:
        raise ValueError(
            f"{where}: wavelength has {wave.shape[-1]} pixels but flux has {flux.shape[1]}."
        )
    if wave.ndim == 2 and wave.shape[0] != flux.shape[0]:
        raise ValueError(
            f"{where}: per-star wavelength has {wave.shape[0]} rows but flux has {flux.shape[0]} stars."
        )
    bad = ~np.isfinite(wave)
    if bad.any():
        star, pix = _first_bad(bad)
        raise ValueError(f"{where}: wavelength is not finite (NaN or inf) at {star}pixel {pix}.")
    if wave.shape[-1] > 1:
        steps = np.diff(wave, axis=-1)
        bad = steps <= 0
        if bad.any():
            star, pix = _first_bad(bad)
            row = wave if wave.ndim == 1 else wave[np.argmax(bad.any(axis=1))]
            raise ValueError(
                f"{where}: wavelength is not strictly increasing at {star}pixel {pix + 1} "
                f"({row[pix]:.4f} followed by {row[pix + 1]:.4f})."
            )
    if error is not None:
        error = np.asarray(error)
        if error.dtype != np.float32 or error.dtype.byteorder not in ("=", "|"):
            with np.errstate(over="ignore"):
                error = error.astype(np.float32)
        if error.ndim == 1:
            error = error[np.newaxis, :]
        if error.shape != flux.shape:
            raise ValueError(f"{where}: error has shape {error.shape} but flux has {flux.shape}.")
    if scale is not None:
        scale = np.asarray(scale, dtype=np.float64)
        if wave.ndim != 1:
            raise ValueError(
                f"{where}: a per-star scale needs a shared 1-D wavelength grid; this one has "
                f"shape {wave.shape}."
            )
        if scale.shape != (flux.shape[0],):
            raise ValueError(
                f"{where}: scale has shape {scale.shape}; expected one factor per star "
                f"({flux.shape[0]},)."
            )
        bad = ~(np.isfinite(scale) & (scale > 0))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"{where}: scale must be finite and positive; star {i} has {scale[i]}."
            )
    return SetupData(wave, flux, error, scale)


def _first_bad(mask):
    """Locate the first True of a 1-D or 2-D mask as ('star i, ', pixel)."""
    if mask.ndim == 1:
        return "", int(np.argmax(mask))
    star, pix = np.unravel_index(np.argmax(mask), mask.shape)
    return f"star {star}, ", int(pix)


def _as_meta(meta, n) -> Table:
    if meta is None:
        meta = Table()
    elif isinstance(meta, Table):
        meta = meta.copy(copy_data=False)
    elif isinstance(meta, Mapping):
        meta = Table(dict(meta))
    else:
        meta = Table(meta)
    if len(meta.colnames) and len(meta) != n:
        raise ValueError(f"meta has {len(meta)} rows but the spectra have {n} stars.")
    if "id" not in meta.colnames:
        meta["id"] = np.array([str(i) for i in range(n)])
        meta.columns.move_to_end("id", last=False)
    return meta


_PLACEHOLDER_IDS = {"", "none", "nan", "null", "n/a", "na", "-", "--"}


def is_placeholder_id(value) -> bool:
    """Whether a star id is a placeholder: None, empty, "None", "nan", "null", "N/A", ..."""
    return value is None or str(value).strip().lower() in _PLACEHOLDER_IDS


def check_ids(ids, where="the SpectralSet", *, allow_duplicates=False):
    """Raise if a star id is a placeholder (None, empty, "nan", ...) or, unless allowed,
    repeated; ``where`` names the source (a file, a column) in the message."""
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"{where}: ids must be 1-D, one per star; got shape {ids.shape}.")
    text = np.char.strip(np.char.lower(ids.astype(str)))
    bad = np.isin(text, list(_PLACEHOLDER_IDS))
    if ids.dtype.kind == "O":
        bad |= np.array([v is None for v in ids], dtype=bool)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{where}: star {i} has the placeholder id {str(ids[i])!r} ({int(bad.sum())} such); a "
            "star id must name the star. Fill in the ids or take another id column."
        )
    if not allow_duplicates and ids.size:
        keys = np.char.strip(ids.astype(str)) if ids.dtype.kind in "OUS" else ids
        _, first, counts = np.unique(keys, return_index=True, return_counts=True)
        if (counts > 1).any():
            dup = first[counts > 1]
            i = int(dup.min())
            raise ValueError(
                f"{where}: star id {str(ids[i])!r} appears {int(counts[np.argmax(first == i)])} times "
                f"({int((counts > 1).sum())} repeated ids); the output could not be joined back "
                "to a catalogue. Make the ids unique, or pass allow_duplicate_ids=True."
            )


class SpectralSet:
    """A batch of stars observed in one or more instrument setups.

    Per setup: a wavelength grid (shared ``(p,)`` or per star ``(n, p)``), the flux
    ``(n, p)`` as float32 and an optional flux error. Per star: a metadata table
    (`astropy.table.Table`) with at least an ``id`` column and usually ``rv`` (km/s) and
    ``snr``.

    A SpectralSet behaves like a scikit-learn sample collection: ``len(s)`` is the number
    of stars, ``s.shape == (n_stars, total_pixels)``, and indexing with an int, a slice,
    an int array or a boolean mask returns a new SpectralSet (an int keeps one star), so
    splitters such as `~sklearn.model_selection.train_test_split`, ``KFold``,
    ``cross_val_score`` and ``GridSearchCV`` split it without help. ``np.asarray(s)``
    gives the setups' flux side by side (no resampling).

    Build one with :meth:`from_arrays` or a reader of `skstellar.io`.

    Parameters
    ----------
    setups : dict of str to SetupData
        Validated per-setup arrays, in the order the setups are to be stitched.
    meta : astropy.table.Table
        One row per star.

    See Also
    --------
    skstellar.io.read_ges_giraffe : Read Gaia-ESO GIRAFFE FITS files.
    skstellar.preprocessing.SetupStitcher : Concatenate the setups into one array.

    Examples
    --------
    >>> import numpy as np
    >>> from skstellar.spectra import SpectralSet
    >>> wave = np.arange(5350.0, 5360.0, 0.05)
    >>> flux = np.ones((3, wave.size))
    >>> s = SpectralSet.from_arrays({"HR10": (wave, flux)}, meta={"rv": [1.0, -3.0, 12.5]})
    >>> s.shape
    (3, 200)
    >>> s[[0, 2]].meta["rv"].tolist()
    [1.0, 12.5]
    """

    __array_priority__ = 10  # keep numpy from treating `array * s` elementwise

    def __init__(self, setups: Mapping[str, SetupData], meta: Table):
        if not setups:
            raise ValueError("A SpectralSet needs at least one setup; got none.")
        self._setups = dict(setups)
        n = {name: d.flux.shape[0] for name, d in self._setups.items()}
        if len(set(n.values())) != 1:
            raise ValueError(
                "Every setup must hold the same stars; numbers of spectra per setup: "
                + ", ".join(f"{k}: {v}" for k, v in n.items())
            )
        self._meta = _as_meta(meta, next(iter(n.values())))

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_arrays(cls, setups, meta=None, *, allow_duplicate_ids=False) -> SpectralSet:
        """Build a SpectralSet from arrays.

        Parameters
        ----------
        setups : dict
            ``{setup: (wavelength, flux)}`` or ``{setup: (wavelength, flux, error)}``;
            wavelength in Angstrom of shape ``(p,)`` or ``(n, p)``, flux ``(n, p)`` (or
            ``(p,)`` for a single star).
        meta : astropy Table, dict of columns or None
            Per-star metadata. An ``id`` column of ``"0" … "n-1"`` is added when absent.
        allow_duplicate_ids : bool, default=False
            Accept an id held by several stars. By default that is an error, as is a
            placeholder id (None, empty, "nan"): the predictions could not be joined back
            to a catalogue.

        Returns
        -------
        SpectralSet
        """
        if not isinstance(setups, Mapping) or not setups:
            raise ValueError(
                "setups must be a non-empty dict {setup: (wavelength, flux[, error])}; "
                f"got {type(setups).__name__} {setups!r:.60}."
            )
        data = {}
        for name, arrays in setups.items():
            if not isinstance(arrays, (tuple, list)) or len(arrays) not in (2, 3):
                raise ValueError(
                    f"setup {name!r}: expected (wavelength, flux) or (wavelength, flux, error)."
                )
            data[str(name)] = _as_setup(name, *arrays)
        out = cls(data, meta)
        check_ids(out.meta["id"], "meta column 'id'", allow_duplicates=allow_duplicate_ids)
        return out

    @classmethod
    def concatenate(cls, sets, *, allow_duplicate_ids=False) -> SpectralSet:
        """Stack the stars of several SpectralSets with the same setups and grids.

        A star id in two of the sets is an error unless ``allow_duplicate_ids``.
        """
        sets = list(sets)
        if not sets:
            raise ValueError("concatenate needs at least one SpectralSet; got none.")
        first = sets[0]
        for k, other in enumerate(sets[1:], start=1):
            if other.setups != first.setups:
                raise ValueError(
                    f"Cannot concatenate: set 0 has setups {first.setups}, set {k} has {other.setups}."
                )
        data = {}
        for name in first.setups:
            parts = [s._setups[name] for s in sets]
            same_grid = all(p.grid.ndim == 1 for p in parts) and all(
                p.grid.shape == parts[0].grid.shape and np.array_equal(p.grid, parts[0].grid)
                for p in parts
            )
            scale = None
            if same_grid:
                wave = parts[0].grid
                if any(p.scale is not None for p in parts):  # keep the grids implicit
                    scale = np.concatenate(
                        [np.ones(p.flux.shape[0]) if p.scale is None else p.scale for p in parts]
                    )
            else:
                widths = {p.flux.shape[1] for p in parts}
                if len(widths) != 1:
                    raise ValueError(
                        f"Cannot concatenate setup {name!r}: pixel counts differ {sorted(widths)}."
                    )
                wave = np.concatenate(
                    [np.broadcast_to(p.wavelength, p.flux.shape) for p in parts]
                )
            errs = [p.error for p in parts]
            if any(e is None for e in errs) and not all(e is None for e in errs):
                raise ValueError(f"Cannot concatenate setup {name!r}: some sets have errors, some not.")
            err = None if errs[0] is None else np.concatenate(errs)
            data[name] = SetupData(wave, np.concatenate([p.flux for p in parts]), err, scale)
        meta = vstack([s.meta for s in sets], join_type="outer", metadata_conflicts="silent")
        check_ids(meta["id"], "the concatenated sets", allow_duplicates=allow_duplicate_ids)
        return cls(data, meta)

    def replace(
        self, setup=None, *, wavelength=None, flux=None, error=None, scale=None, meta=None
    ) -> SpectralSet:
        """A new SpectralSet with one setup's arrays and/or the metadata replaced.

        The other arrays are shared, not copied: transformers build their output with it
        and never write into their input. A new ``wavelength`` is the stars' effective
        grid and drops the setup's per-star scale unless ``scale`` is given too; a new
        ``scale`` alone applies to the setup's stored shared grid.
        """
        setups = dict(self._setups)
        if setup is not None:
            old = self._setup(setup)
            if wavelength is None:
                wavelength, scale = old.grid, old.scale if scale is None else scale
            setups[setup] = _as_setup(
                setup,
                wavelength,
                old.flux if flux is None else flux,
                old.error if error is None else error,
                scale,
            )
        return SpectralSet(setups, self._meta if meta is None else meta)

    def with_setups(self, setups, meta=None) -> SpectralSet:
        """A new SpectralSet holding ``setups`` (validated) and this set's or the given meta.

        ``setups`` is a dict of :class:`SetupData` or another SpectralSet; a SpectralSet,
        and a given ``meta`` with an ``id`` column, must hold the same stars in the same
        order as this set (their ids are compared), so that setups of different stars are
        never paired.
        """
        if isinstance(setups, SpectralSet):
            self._check_same_stars(setups.ids, "the SpectralSet given")
            setups = setups._setups
        if meta is not None and "id" in getattr(meta, "colnames", getattr(meta, "keys", lambda: ())()):
            self._check_same_stars(np.asarray(meta["id"]), "meta")
        data = {
            name: _as_setup(name, d.grid, d.flux, d.error, d.scale) for name, d in setups.items()
        }
        return SpectralSet(data, self._meta if meta is None else meta)

    def _check_same_stars(self, ids, what):
        mine = self.ids
        if len(ids) != len(mine):
            raise ValueError(f"{what} holds {len(ids)} stars; this SpectralSet holds {len(mine)}.")
        differ = np.asarray(ids).astype(str) != mine.astype(str)
        if differ.any():
            i = int(np.argmax(differ))
            raise ValueError(
                f"{what} holds other stars: star {i} is {str(ids[i])!r} there but "
                f"{str(mine[i])!r} here ({int(differ.sum())} differ). Match the stars by id first."
            )

    # -- access -----------------------------------------------------------------------
    @property
    def setups(self) -> tuple[str, ...]:
        """Names of the setups, in stitching order."""
        return tuple(self._setups)

    @property
    def meta(self) -> Table:
        """Per-star metadata table (one row per star)."""
        return self._meta

    @property
    def ids(self) -> np.ndarray:
        """The ``id`` column of :attr:`meta` as an array."""
        return np.asarray(self._meta["id"])

    def _setup(self, setup) -> SetupData:
        try:
            return self._setups[setup]
        except KeyError:
            raise KeyError(f"No setup {setup!r} in this SpectralSet; it has {self.setups}.") from None

    def setup_data(self, setup) -> SetupData:
        """The :class:`SetupData` (wavelength, flux, error) of one setup."""
        return self._setup(setup)

    def wavelength(self, setup) -> np.ndarray:
        """Wavelength grid of a setup: ``(p,)`` if shared, else ``(n, p)``.

        A setup with a per-star scale (a shared grid after a Doppler correction) gives
        its effective ``(n, p)`` grids, built on each call; read
        ``setup_data(setup).grid`` and ``.scale`` to avoid that.
        """
        return self._setup(setup).wavelength

    def flux(self, setup) -> np.ndarray:
        """Flux of a setup, ``(n, p)`` float32."""
        return self._setup(setup).flux

    def error(self, setup):
        """Flux error of a setup, ``(n, p)`` float32, or None."""
        return self._setup(setup).error

    def describe_star(self, i) -> str:
        """How error messages name star ``i``: its position and its id."""
        return f"star {int(i)} (id {str(self._meta['id'][int(i)])!r})"

    def n_pixels(self, setup) -> int:
        return self._setup(setup).flux.shape[1]

    def __len__(self) -> int:
        return len(self._meta)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self), sum(d.flux.shape[1] for d in self._setups.values()))

    @property
    def ndim(self) -> int:
        return 2

    def __array__(self, dtype=None, copy=None):
        out = np.concatenate([d.flux for d in self._setups.values()], axis=1)
        return out if dtype is None else out.astype(dtype, copy=False)

    # -- indexing ---------------------------------------------------------------------
    def _rows(self, key) -> np.ndarray:
        n = len(self)
        if isinstance(key, tuple):
            # scikit-learn's _safe_indexing asks for X[key, ...]
            if len(key) == 2 and key[1] is Ellipsis:
                key = key[0]
            else:
                raise IndexError(
                    f"SpectralSet is indexed by star only (int, slice, int array, bool mask); got {key!r:.80}."
                )
        if isinstance(key, numbers.Integral) and not isinstance(key, (bool, np.bool_)):
            if not -n <= key < n:
                raise IndexError(f"star index {key} is out of range for a SpectralSet of {n} stars.")
            return np.array([key % n])
        if isinstance(key, slice):
            return np.arange(n)[key]
        key = np.asarray(key)
        if key.dtype == bool:
            if key.shape != (n,):
                raise IndexError(
                    f"boolean mask has shape {key.shape} but the SpectralSet has {n} stars."
                )
            return np.flatnonzero(key)
        if key.size == 0:
            return np.array([], dtype=np.intp)
        if not np.issubdtype(key.dtype, np.integer) or key.ndim != 1:
            raise IndexError(
                f"SpectralSet indices must be integers or a boolean mask; got {key.dtype} array "
                f"of shape {key.shape}."
            )
        bad = (key < -n) | (key >= n)
        if bad.any():
            raise IndexError(
                f"star index {int(key[bad][0])} is out of range for a SpectralSet of {n} stars."
            )
        return key % n

    def __getitem__(self, key) -> SpectralSet:
        rows = self._rows(key)
        return SpectralSet(
            {name: d.take(rows) for name, d in self._setups.items()}, self._meta[rows]
        )

    def __iter__(self):
        raise TypeError(
            "A SpectralSet is not iterable star by star; index it (s[i]) or use its arrays."
        )

    def __repr__(self) -> str:
        parts = []
        for name, d in self._setups.items():
            w, f = d.grid, 1.0 if d.scale is None else d.scale
            lo, hi = float(np.min(w[..., 0] * f)), float(np.max(w[..., -1] * f))
            grid = "shared grid" if d.grid.ndim == 1 else "per-star grids"
            if d.scale is not None:
                grid += " x per-star scale"
            err = ", with errors" if d.error is not None else ""
            parts.append(f"{name}: {d.flux.shape[1]} px {lo:.2f}-{hi:.2f} A ({grid}{err})")
        cols = ", ".join(self._meta.colnames)
        return f"<SpectralSet of {len(self)} stars; " + "; ".join(parts) + f"; meta: {cols}>"

    def __eq__(self, other):  # identity semantics; arrays are compared with np functions
        return self is other

    __hash__ = object.__hash__
