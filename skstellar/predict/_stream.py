"""Prediction over a whole survey, chunk by chunk, in bounded memory and resumable:
:func:`predict_survey`."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from astropy.table import vstack
from sklearn.pipeline import Pipeline

from .._predict_table import predict_table
from ..filters import TSNESimilarityFilter
from ..io._convert import expand_paths
from ..io._store import SpectralStore
from ..spectra import SpectralSet
from ._output import ChunkedTable

__all__ = ["SurveyRun", "filter_block", "predict_chunk", "predict_survey"]

# Stars per chunk when neither the caller nor a filter's batch_size says: ~0.6 GB of raw
# GIRAFFE HR10 + HR21 spectra with errors and the preprocessing's temporaries.
DEFAULT_CHUNK = 2048


class SurveyRun(NamedTuple):
    """What :func:`predict_survey` did."""

    output: Path
    n_rows: int
    n_chunks: int
    computed: list
    skipped: int
    seconds: float
    rows_computed: int

    @property
    def stars_per_second(self) -> float:
        """Stars computed by this call per second of it."""
        return self.rows_computed / self.seconds if self.seconds > 0 else float("nan")


def filter_block(pipeline):
    """The filter's ``batch_size`` (the stars of one joint map), or None without a filter or a batch size.

    Raises
    ------
    ValueError
        Several filters with different batch sizes.
    """
    steps = []

    def walk(est):
        if isinstance(est, Pipeline):
            for _, step in est.steps:
                walk(step)
        elif isinstance(est, TSNESimilarityFilter):
            steps.append(est)

    walk(pipeline)
    sizes = {f.batch_size for f in steps}
    sizes.discard(None)
    if len(sizes) > 1:
        raise ValueError(
            f"the pipeline's similarity filters have different batch sizes {sorted(sizes)}; give them one."
        )
    return sizes.pop() if sizes else None


def predict_chunk(pipeline, spectra, block=None):
    """``predict_table`` on consecutive blocks of ``block`` stars of a chunk (all of it when None),
    stacked: each block is one joint map of the filter."""
    n = len(spectra)
    if block is None or block >= n:
        return predict_table(pipeline, spectra)
    return vstack([predict_table(pipeline, spectra[lo:lo + block]) for lo in range(0, n, block)],
                  metadata_conflicts="silent")


# -- sources -------------------------------------------------------------------------------
class _StoreSource:
    """Chunks of a SpectralStore by index range; a task reads its own chunk."""

    def __init__(self, store, chunk_size):
        self.store = store if isinstance(store, SpectralStore) else SpectralStore(store)
        self.chunk_size = chunk_size
        self.n_stars = len(self.store)
        self.n_chunks = -(-self.n_stars // chunk_size)
        self.identity = {"source": str(self.store.path.resolve()), "n_stars": self.n_stars}

    def bounds(self, k):
        return k * self.chunk_size, min((k + 1) * self.chunk_size, self.n_stars)

    def task(self, k):
        """A picklable description of chunk ``k``: read where it is processed."""
        return (str(self.store.path), *self.bounds(k))

    def chunks(self, first):
        for k in range(first, self.n_chunks):
            yield k, self.store.read(*self.bounds(k))


class _FilesSource:
    """Chunks of spectrum files, each read by a reader of skstellar.io (via convert's readers)."""

    def __init__(self, files, chunk_size, reader, reader_kwargs):
        self.files = expand_paths(files)
        self.chunk_size = chunk_size
        self.reader, self.reader_kwargs = reader, reader_kwargs
        self.n_stars = None
        self.n_chunks = -(-len(self.files) // chunk_size)
        digest = hashlib.blake2b("\n".join(map(str, self.files)).encode(), digest_size=8).hexdigest()
        self.identity = {"source": f"{len(self.files)} files {digest}", "n_stars": None}

    def task(self, k):
        return (self.files[k * self.chunk_size:(k + 1) * self.chunk_size], self.reader, self.reader_kwargs)

    def chunks(self, first):
        for k in range(first, self.n_chunks):
            yield k, read_task(self.task(k))


class _IterSource:
    """SpectralSets from an iterable, each one chunk; finished chunks are skipped, not computed."""

    def __init__(self, sets):
        self.sets = sets
        self.n_stars = sum(len(s) for s in sets) if isinstance(sets, (list, tuple)) else None
        self.n_chunks = len(sets) if isinstance(sets, (list, tuple)) else None
        self.identity = {"source": "iterable of SpectralSets", "n_stars": self.n_stars}

    def chunks(self, first):
        for k, spectra in enumerate(self.sets):
            if not isinstance(spectra, SpectralSet):
                raise TypeError(f"chunk {k} of the iterable is a {type(spectra).__name__}, not a SpectralSet.")
            if k >= first:
                yield k, spectra


def read_task(task):
    """The SpectralSet of a chunk description (run where the chunk is processed)."""
    if isinstance(task[0], str):
        path, start, stop = task
        with SpectralStore(path) as store:
            return store.read(start, stop)
    files, reader, kwargs = task
    from ..io import read_fits_spectra, read_ges_giraffe

    if reader == "ges":
        return read_ges_giraffe(files, **kwargs)
    if reader == "fits":
        return read_fits_spectra(files, **kwargs)
    return reader(files, **kwargs)


def _is_file_list(source):
    return isinstance(source, (list, tuple)) and bool(source) and all(isinstance(p, (str, os.PathLike)) for p in source)


def _source(source, chunk_size, reader, reader_kwargs):
    if isinstance(source, SpectralStore):
        return _StoreSource(source, chunk_size)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.suffix.lower() in (".h5", ".hdf5") and not path.is_dir():
            return _StoreSource(path, chunk_size)
        return _FilesSource([path], chunk_size, reader, reader_kwargs)
    if isinstance(source, SpectralSet):
        return _IterSource([source[lo:lo + chunk_size] for lo in range(0, len(source), chunk_size)])
    if isinstance(source, Iterable):
        if _is_file_list(source):
            return _FilesSource(source, chunk_size, reader, reader_kwargs)
        return _IterSource(source)
    raise TypeError(
        "source must be a SpectralStore or its .h5 path, a SpectralSet, an iterable of SpectralSets, or "
        f"spectrum files; got {type(source).__name__}."
    )


def _chunk_size(chunk_size, block):
    if chunk_size is None:
        return block * max(1, DEFAULT_CHUNK // block) if block else DEFAULT_CHUNK
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of stars; got {chunk_size}.")
    if block and chunk_size % block:
        raise ValueError(
            f"chunk_size={chunk_size} is not a multiple of the similarity filter's batch_size={block}: a joint "
            "map would then straddle two chunks and a star's verdict depend on where chunks begin. Give a "
            f"multiple of {block}."
        )
    return chunk_size


def _pipeline_identity(pipeline):
    steps = pipeline.steps if isinstance(pipeline, Pipeline) else [("estimator", pipeline)]
    return [f"{name}:{type(step).__module__}.{type(step).__name__}" for name, step in steps]


def predict_survey(
    pipeline, source, output, *, chunk_size=None, resume=True, overwrite=False, progress=True, client=None,
    max_in_flight=None, reader="ges", reader_kwargs=None,
):
    """Predict a whole survey chunk by chunk into an ECSV table on disk: bounded memory, resumable.

    Each chunk of stars goes through :func:`skstellar.predict_table` (preprocessing,
    similarity verdict, ensemble mean and std) and its rows are appended to ``output``;
    memory holds one chunk (one per Dask task), whatever the number of stars. Interrupted
    (killed, a power cut), the same call continues after the last chunk written, and no
    chunk written is computed again.

    Parameters
    ----------
    pipeline : Pipeline or estimator
        Fitted, as for :func:`skstellar.predict_table`.
    source : SpectralStore, path, SpectralSet, iterable of SpectralSets, or list of files
        A store (or its ``.h5`` path) is read chunk by chunk by index range; a SpectralSet
        is cut into chunks; each SpectralSet of an iterable is one chunk; FITS files (or
        folders) are read ``chunk_size`` files at a time with ``reader``.
    output : str or path-like
        The ``.ecsv`` table to write. Its checkpoint ``<output>.progress.json`` sits beside it.
    chunk_size : int, default=None
        Stars per chunk (files per chunk for files). With a similarity filter whose
        ``batch_size`` is set, it must be a multiple of it (default: the largest multiple
        not above 2048); otherwise 2048.
    resume : bool, default=True
        Continue an interrupted run of the same source, chunk size and pipeline; False
        starts again (replacing the output).
    overwrite : bool, default=False
        Replace an existing output that has no checkpoint.
    progress : bool, default=True
        A tqdm progress bar in stars, with their rate (stars/s).
    client : distributed.Client, default=None
        Run the chunks as tasks on this Dask cluster (see :mod:`skstellar.predict._dask`).
    max_in_flight : int, default=None
        Dask: chunks submitted ahead of the one being written (default: twice the workers'
        threads), which bounds the memory of the gathered rows.
    reader : {"ges", "fits"} or callable, default="ges"
        Files only: how a chunk of files is read (as in
        :func:`skstellar.io.convert_to_store`).
    reader_kwargs : dict, default=None
        Files only: further arguments of the reader.

    Returns
    -------
    SurveyRun
        ``output``, ``n_rows`` in the table, ``n_chunks``, the chunks ``computed`` by this
        call, the chunks ``skipped`` (written by an earlier run) and the ``seconds`` taken.

    Notes
    -----
    **The filter's verdict does not depend on the chunks.** The t-SNE map of
    :class:`~skstellar.filters.TSNESimilarityFilter` depends on every spectrum embedded
    with the training set. Here each block of ``batch_size`` consecutive stars of the
    source (stars ``0..B-1``, ``B..2B-1``, ... of a store) is embedded as one joint map,
    i.e. a star's verdict is that of ``predict_table(pipeline, store[jB:(j+1)B])``, and a
    chunk is a whole number of blocks. So the verdict is the same whatever the chunk size,
    on one machine or on Dask, interrupted or not. It differs from one ``predict_table``
    call on all stars at once, in which the filter splits them into batches by content
    fingerprint (in a pseudo-random order), because those batches mix stars from the
    whole survey: one would have to read every spectrum before drawing the first map.
    Without a ``batch_size`` each chunk is one map (and the verdict depends on the chunk
    size, which the checkpoint records). For SpectralSets and files the blocks start at
    each chunk's first star.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from skstellar import SpectralSet
    >>> from skstellar.io import read_predictions, write_store
    >>> from skstellar.predict import predict_survey
    >>> from skstellar.preprocessing import SetupStitcher
    >>> from sklearn.pipeline import make_pipeline
    >>> rng = np.random.default_rng(0)
    >>> wave = np.linspace(8500.0, 8510.0, 20)
    >>> s = SpectralSet.from_arrays({"HR21": (wave, 1 + 0.1 * rng.normal(size=(50, 20)))})
    >>> pipe = make_pipeline(SetupStitcher(), Ridge()).fit(s, np.asarray(s)[:, 0])
    >>> folder = Path(tempfile.mkdtemp())
    >>> store = write_store(s, folder / "survey.h5")
    >>> run = predict_survey(pipe, store, folder / "labels.ecsv", chunk_size=20, progress=False)
    >>> run.n_rows, run.computed
    (50, [0, 1, 2])
    >>> predict_survey(pipe, store, folder / "labels.ecsv", chunk_size=20, progress=False).computed
    []
    >>> len(read_predictions(folder / "labels.ecsv"))
    50
    """
    t0 = time.perf_counter()
    block = filter_block(pipeline)
    reader_kwargs = dict(reader_kwargs or {})
    if _is_file_list(source):  # files per chunk: a filter block starts at each chunk's first star
        size = int(chunk_size or 1000)
    else:
        size = _chunk_size(chunk_size, block)
    src = _source(source, size, reader, reader_kwargs)
    plan = {**src.identity, "chunk_size": size, "block": block or size, "pipeline": _pipeline_identity(pipeline)}
    table = ChunkedTable(output, plan, resume=resume, overwrite=overwrite)
    if src.n_chunks is not None and table.done > src.n_chunks:
        raise ValueError(f"{output}: the checkpoint has {table.done} chunks done; the source has {src.n_chunks}.")
    skipped, rows_before = table.done, table.rows
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=src.n_stars, initial=table.rows, unit="star", desc="predict", smoothing=0.1)
    computed = []
    try:
        if client is None:
            results = ((k, predict_chunk(pipeline, spectra, block)) for k, spectra in src.chunks(table.done))
        else:
            from ._dask import dask_chunks

            results = dask_chunks(client, pipeline, src, table.done, block, max_in_flight)
        for k, rows in results:
            table.append(k, rows)
            computed.append(k)
            if bar is not None:
                bar.update(len(rows))
        table.finish()
    finally:
        if bar is not None:
            bar.close()
        if isinstance(src, _StoreSource) and src.store is not source:
            src.store.close()
    n_chunks = src.n_chunks if src.n_chunks is not None else table.done
    return SurveyRun(table.path, table.rows, n_chunks, computed, skipped, time.perf_counter() - t0,
                     table.rows - rows_before)
