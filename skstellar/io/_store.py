"""A SpectralSet on disk, written and read chunk by chunk: :class:`SpectralStore` (HDF5).

Layout of the file (h5py)::

    /                       attrs: format, version, n_stars, setups (JSON list), table_meta (JSON)
    /setups/<setup>/grid    (p,) float64 shared grid, or (n, p) per-star grids (resizable)
    /setups/<setup>/flux    (n, p) float32, chunked by rows, resizable
    /setups/<setup>/error   (n, p) float32, when the spectra carry errors
    /setups/<setup>/scale   (n,) float64, when the grid carries a per-star Doppler factor
    /meta/<column>          (n, ...) one dataset per metadata column; attrs: columns (JSON)

``n_stars`` is written last by :meth:`SpectralStore.append`: rows past it belong to an append
that did not finish and are overwritten by the next one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..spectra import SetupData, SpectralSet

__all__ = ["SpectralStore", "open_store", "write_store"]

FORMAT = "skstellar.SpectralStore"
VERSION = 1
# Rows per HDF5 chunk: about 1 MiB of flux, so reading any range touches little more than it.
_CHUNK_BYTES = 1 << 20
_STR = None  # h5py's variable-length UTF-8 dtype, built on first use (h5py imported lazily)


def _h5py():
    import h5py

    return h5py


def _string_dtype():
    global _STR
    if _STR is None:
        _STR = _h5py().string_dtype("utf-8")
    return _STR


class SpectralStore:
    """Spectra of many stars in one HDF5 file, appended and read chunk by chunk.

    Opening a store reads its attributes only, whatever its size; :meth:`read` reads the
    rows asked for. A store pickles as its path (a Dask task reopens it where it runs).

    Parameters
    ----------
    path : str or path-like
        The ``.h5`` file.
    mode : {"r", "a"}, default="r"
        Read only, or read and append (the file is created when absent).

    Attributes
    ----------
    path : pathlib.Path
    setups : tuple of str
        Setup names, in stitching order (empty for a new store).

    See Also
    --------
    open_store, write_store, convert_to_store

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from skstellar import SpectralSet
    >>> from skstellar.io import SpectralStore
    >>> wave = np.linspace(8500.0, 8510.0, 50)
    >>> s = SpectralSet.from_arrays({"HR21": (wave, np.ones((4, 50)))}, meta={"rv": [1.0, 2, 3, 4]})
    >>> path = Path(tempfile.mkdtemp()) / "survey.h5"
    >>> with SpectralStore(path, mode="a") as store:
    ...     store.append(s)
    ...     store.append(s[:2])
    >>> store = SpectralStore(path)
    >>> len(store), store.shape
    (6, (6, 50))
    >>> store.read(3, 5).meta["rv"].tolist()
    [4.0, 1.0]
    >>> store.close()
    """

    def __init__(self, path, mode="r"):
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' (read) or 'a' (append); got {mode!r}.")
        self.path = Path(path)
        self.mode = mode
        if mode == "r" and not self.path.exists():
            raise FileNotFoundError(f"No spectral store at {self.path}.")
        h5py = _h5py()
        try:
            self._file = h5py.File(self.path, mode)
        except OSError as exc:
            raise ValueError(f"{self.path}: not a readable HDF5 file ({exc}).") from exc
        attrs = self._file.attrs
        if "format" not in attrs:
            if mode == "r" or len(self._file):
                self._file.close()
                raise ValueError(f"{self.path}: an HDF5 file but not a skstellar spectral store.")
            attrs["format"], attrs["version"], attrs["n_stars"] = FORMAT, VERSION, 0
            attrs["setups"], attrs["table_meta"] = "[]", "{}"
        elif attrs["format"] != FORMAT or int(attrs["version"]) > VERSION:
            self._file.close()
            raise ValueError(
                f"{self.path}: format {attrs['format']!r} version {attrs['version']}; this skstellar "
                f"reads {FORMAT!r} up to version {VERSION}."
            )

    # -- pickling: by path, so that a Dask task opens the file where it runs -------------
    def __reduce__(self):
        return (SpectralStore, (str(self.path), "r"))

    def close(self):
        if self._file.id.valid:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- description ---------------------------------------------------------------------
    @property
    def setups(self) -> tuple[str, ...]:
        return tuple(json.loads(self._file.attrs["setups"]))

    def __len__(self) -> int:
        return int(self._file.attrs["n_stars"])

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_stars, total_pixels)``, as :attr:`SpectralSet.shape`."""
        return (len(self), sum(self._file[f"setups/{s}/flux"].shape[1] for s in self.setups))

    @property
    def meta_columns(self) -> list[str]:
        return json.loads(self._file["meta"].attrs["columns"]) if "meta" in self._file else []

    @property
    def nbytes_on_disk(self) -> int:
        self._file.flush()
        return os.path.getsize(self.path)

    def __repr__(self) -> str:
        return f"<SpectralStore {self.path}: {len(self)} stars, setups {self.setups}>"

    # -- reading -------------------------------------------------------------------------
    def read(self, start=0, stop=None) -> SpectralSet:
        """The stars ``start:stop`` (store order) as a SpectralSet, read from disk.

        Raises
        ------
        IndexError
            A range outside the store or empty.
        """
        n = len(self)
        stop = n if stop is None else stop
        if not 0 <= start < stop <= n:
            raise IndexError(f"{self.path}: cannot read stars {start}:{stop} of a store of {n} stars.")
        setups = {}
        for name in self.setups:
            group = self._file[f"setups/{name}"]
            grid = group["grid"]
            wave = grid[()] if grid.ndim == 1 else grid[start:stop]
            error = group["error"][start:stop] if "error" in group else None
            scale = group["scale"][start:stop] if "scale" in group else None
            setups[name] = SetupData(wave, group["flux"][start:stop], error, scale)
        meta = Table()
        for column in self.meta_columns:
            data = self._file[f"meta/{column}"]
            values = data.asstr()[start:stop] if data.dtype.kind == "O" else data[start:stop]
            meta[column] = values
        meta.meta.update(json.loads(self._file.attrs["table_meta"]))
        return SpectralSet(setups, meta)

    def __getitem__(self, key) -> SpectralSet:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise IndexError(f"a SpectralStore is read by a slice of stars (start:stop); got {key!r}.")
        start, stop, _ = key.indices(len(self))
        return self.read(start, stop)

    def iter_chunks(self, chunk_size, start=0):
        """Yield ``(start, stop, SpectralSet)`` over the store, ``chunk_size`` stars at a time."""
        for lo in range(start, len(self), chunk_size):
            hi = min(lo + chunk_size, len(self))
            yield lo, hi, self.read(lo, hi)

    # -- writing -------------------------------------------------------------------------
    def append(self, spectra: SpectralSet):
        """Append the stars of a SpectralSet at the end of the store.

        The first append fixes the setups, shared or per-star grids, errors and metadata
        columns; later ones must match them.

        Raises
        ------
        ValueError
            Naming the setup or column that differs from the store.
        """
        if self.mode != "a":
            raise ValueError(f"{self.path} is open read-only; open it with mode='a' to append.")
        if not isinstance(spectra, SpectralSet):
            raise TypeError(f"append takes a SpectralSet; got {type(spectra).__name__}.")
        f = self._file
        n0, m = len(self), len(spectra)
        if m == 0:
            return
        if not self.setups:
            self._create(spectra)
        elif spectra.setups != self.setups:
            raise ValueError(f"{self.path}: the store has setups {self.setups}; the spectra have {spectra.setups}.")
        for name in self.setups:
            self._append_setup(name, spectra.setup_data(name), n0, m)
        columns = self.meta_columns
        if set(spectra.meta.colnames) != set(columns):
            raise ValueError(
                f"{self.path}: the store has metadata columns {columns}; the spectra have "
                f"{spectra.meta.colnames}."
            )
        for column in columns:
            data = f[f"meta/{column}"]
            data.resize(n0 + m, axis=0)
            values = np.asarray(spectra.meta[column])
            data[n0:] = values.astype(str).astype(object) if data.dtype.kind == "O" else values
        table_meta = json.loads(f.attrs["table_meta"])
        for key, value in _json_safe(spectra.meta.meta).items():
            if isinstance(value, dict) and isinstance(table_meta.get(key), dict):
                table_meta[key].update(value)  # e.g. the "dropped" stars of every chunk read
            else:
                table_meta.setdefault(key, value)
        f.attrs["table_meta"] = json.dumps(table_meta)
        f.flush()
        f.attrs["n_stars"] = n0 + m  # last: the rows are complete
        f.flush()

    def _create(self, spectra):
        f = self._file
        for name in spectra.setups:
            d = spectra.setup_data(name)
            group = f.require_group(f"setups/{name}")
            p = d.flux.shape[1]
            rows = max(1, min(1024, _CHUNK_BYTES // (4 * p)))
            for key in ("grid", "flux", "error", "scale"):
                if key in group:
                    del group[key]  # left by an append that failed before n_stars
            if d.grid.ndim == 1:
                group.create_dataset("grid", data=d.grid)
            else:
                group.create_dataset("grid", shape=(0, p), maxshape=(None, p), dtype="f8", chunks=(rows, p))
            group.create_dataset("flux", shape=(0, p), maxshape=(None, p), dtype="f4", chunks=(rows, p))
            if d.error is not None:
                group.create_dataset("error", shape=(0, p), maxshape=(None, p), dtype="f4", chunks=(rows, p))
            if d.scale is not None:
                group.create_dataset("scale", shape=(0,), maxshape=(None,), dtype="f8", chunks=(4096,))
        meta = f.require_group("meta")
        for column in spectra.meta.colnames:
            values = np.asarray(spectra.meta[column])
            if column in meta:
                del meta[column]
            if values.dtype.kind in "USO":
                dtype = _string_dtype()
            elif values.dtype.kind in "biuf":
                dtype = values.dtype
            else:
                raise ValueError(
                    f"{self.path}: metadata column {column!r} has dtype {values.dtype}, which the store "
                    "cannot hold (numbers, booleans and strings only)."
                )
            shape = values.shape[1:]
            meta.create_dataset(column, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                                chunks=(4096, *shape))
        meta.attrs["columns"] = json.dumps(list(spectra.meta.colnames))
        f.attrs["setups"] = json.dumps(list(spectra.setups))

    def _append_setup(self, name, d, n0, m):
        group = self._file[f"setups/{name}"]
        flux = group["flux"]
        where = f"{self.path}, setup {name!r}"
        if d.flux.shape[1] != flux.shape[1]:
            raise ValueError(f"{where}: the store has {flux.shape[1]} pixels; the spectra have {d.flux.shape[1]}.")
        grid = group["grid"]
        if grid.ndim == 1:
            if d.grid.ndim != 1 or not np.array_equal(d.grid, grid[()]):
                raise ValueError(
                    f"{where}: the store has one shared wavelength grid and these spectra have another "
                    "(or per-star grids); convert them to the store's grid, or build a store with "
                    "per-star grids from the start."
                )
        else:
            grid.resize(n0 + m, axis=0)
            grid[n0:] = np.broadcast_to(d.grid, d.flux.shape)
        for key, values in (("error", d.error), ("scale", d.scale)):
            if (key in group) != (values is not None):
                have = "has" if key in group else "has no"
                raise ValueError(f"{where}: the store {have} {key} column; these spectra differ.")
            if values is not None:
                group[key].resize(n0 + m, axis=0)
                group[key][n0:] = values
        flux.resize(n0 + m, axis=0)
        flux[n0:] = d.flux


def _json_safe(meta):
    out = {}
    for key, value in meta.items():
        try:
            json.dumps(value)
        except TypeError:
            continue  # a value JSON cannot hold is not kept (the arrays are what matters)
        out[str(key)] = value
    return out


def open_store(path) -> SpectralStore:
    """Open a spectral store read-only; nothing but its attributes is read."""
    return SpectralStore(path, mode="r")


def write_store(spectra, path, *, overwrite=False) -> SpectralStore:
    """Write a SpectralSet, or an iterable of them (chunks), to a new store; return it open read-only.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
        path.unlink()
    chunks = [spectra] if isinstance(spectra, SpectralSet) else spectra
    with SpectralStore(path, mode="a") as store:
        for chunk in chunks:
            store.append(chunk)
    return open_store(path)
