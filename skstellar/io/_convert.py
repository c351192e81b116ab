"""FITS files into a spectral store, chunk by chunk: :func:`convert_to_store`."""

from __future__ import annotations

from pathlib import Path

from ._fits import read_fits_spectra
from ._fitsfile import expand_paths
from ._giraffe import read_ges_giraffe
from ._stack import describe_missing
from ._store import SpectralStore, open_store

__all__ = ["convert_to_store", "expand_paths"]

_READERS = ("ges", "fits")


def convert_to_store(
    paths, store, *, reader="ges", chunk_size=1000, overwrite=False, on_bad="raise", n_jobs=None,
    progress=False, **reader_kwargs
):
    """Read spectrum files chunk by chunk into a new :class:`SpectralStore`.

    Memory holds one chunk of files at a time, whatever their number.

    Parameters
    ----------
    paths : str, path-like or iterable of them
        FITS files, or folders whose FITS files are all read (sorted by name).
    store : str or path-like
        The ``.h5`` file to create.
    reader : {"ges", "fits"} or callable, default="ges"
        ``"ges"``: :func:`read_ges_giraffe` (setups matched by star); ``"fits"``:
        :func:`read_fits_spectra` (give ``setup=``); a callable ``reader(paths) ->
        SpectralSet`` for any other format.
    chunk_size : int, default=1000
        Files read per chunk.
    overwrite : bool, default=False
        Replace an existing store.
    on_bad : {"raise", "drop"}, default="raise"
        ``"ges"`` only: a star without a file for every setup *within its chunk* is
        dropped, and listed in the store's ``meta.meta["dropped"]``; "raise" raises at
        the end, naming the stars, once the rest is written.
    n_jobs : int or None
        Processes reading the files of a chunk (see the readers).
    progress : bool, default=False
        A tqdm progress bar over the files.
    **reader_kwargs
        Passed on to the reader (e.g. ``setup="HR21"`` for ``"fits"``).

    Returns
    -------
    SpectralStore
        Open read-only.

    Raises
    ------
    FileExistsError
        ``store`` exists and ``overwrite`` is False.
    ValueError
        An unknown reader, a folder without FITS files, any reader's error (naming the
        file), or with ``on_bad="raise"`` stars lacking a setup.

    Notes
    -----
    With ``"ges"``, the files of one star (one per setup) must fall in the same chunk:
    list them next to each other (GES file names that start with the star's ``Cname``
    do, sorted) or use a chunk larger than the distance between them.
    """
    if not (callable(reader) or reader in _READERS):
        raise ValueError(f"reader must be one of {_READERS} or a callable; got {reader!r}.")
    if on_bad not in ("raise", "drop"):
        raise ValueError(f'on_bad must be "raise" or "drop"; got {on_bad!r}.')
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be a positive number of files; got {chunk_size}.")
    files = expand_paths(paths)
    store = Path(store)
    if store.exists():
        if not overwrite:
            raise FileExistsError(f"{store} exists; pass overwrite=True to replace it.")
        store.unlink()

    def read(chunk):
        if reader == "ges":
            return read_ges_giraffe(chunk, on_bad="drop", n_jobs=n_jobs, **reader_kwargs)
        if reader == "fits":
            return read_fits_spectra(chunk, n_jobs=n_jobs, **reader_kwargs)
        return reader(chunk)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), unit="file", desc="convert")
    dropped = {}
    with SpectralStore(store, mode="a") as out:
        for start in range(0, len(files), chunk_size):
            chunk = files[start:start + chunk_size]
            try:
                spectra = read(chunk)
            except ValueError as exc:
                if "No star has a spectrum in every setup" not in str(exc) or on_bad == "raise":
                    raise
                continue  # every star of this chunk lacks a setup: all are dropped
            dropped.update(spectra.meta.meta.get("dropped", {}))
            if out.setups and spectra.setups != out.setups:
                if reader != "ges" or not set(spectra.setups) < set(out.setups):
                    raise ValueError(
                        f"{store}: files {start}-{start + len(chunk) - 1} hold setups {spectra.setups}; the "
                        f"store, from the files before them, {out.setups}."
                    )
                # every star of this chunk lacks the store's other setups
                lacking = sorted(set(out.setups) - set(spectra.setups))
                dropped.update({i: lacking for i in spectra.ids.tolist()})
                continue
            out.append(spectra)
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    if dropped and on_bad == "raise":
        raise ValueError(
            f"{store}: {len(dropped)} stars lack a setup within their chunk of {chunk_size} files "
            f"(the others are written): {describe_missing(dropped)}. List each star's files together, "
            'or pass on_bad="drop".'
        )
    return open_store(store)
