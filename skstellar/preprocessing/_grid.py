"""Wavelength-grid arithmetic shared by the preprocessing steps.

Pixel edges from pixel centres, locating values among per-star pixel edges without a
Python loop over stars, feature names that carry the wavelength, and the row chunks
that bound the temporaries of the vectorised steps.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = [
    "SPEED_OF_LIGHT_KMS",
    "for_each_chunk",
    "linear_step",
    "locate",
    "outer_edges",
    "pixel_edges",
    "row_chunks",
    "row_taker",
    "wavelength_names",
]

SPEED_OF_LIGHT_KMS = 299_792.458

# Rows per chunk are chosen so that one float64 work array stays near this many
# elements (1.6 MB): large enough to amortise numpy's call overhead (~60 calls a chunk),
# small enough for the chunk's temporaries to stay in cache, one chunk per thread, and
# to bound them for a 10^4-star batch (with 16 MB arrays the rebinner's temporaries
# alone were ~1.5x the input of 1000 stars). On the 2-core machine, 2e5 gave the
# rebinner ~10 % more CPU throughput than 5e5 (noisy: shared machine), 5e4 no more.
_CHUNK_ELEMENTS = 200_000


def row_chunks(n_rows, n_cols):
    """Slices over ``n_rows`` with about ``_CHUNK_ELEMENTS / n_cols`` rows each."""
    size = max(1, _CHUNK_ELEMENTS // max(1, n_cols))
    return [slice(start, min(start + size, n_rows)) for start in range(0, n_rows, size)]


# Threads over row chunks: numpy releases the GIL in the heavy calls (partition, cumsum,
# take, ufuncs), so the chunks of one step run on all cores. Each chunk writes its own
# rows of the output and nothing else, so the result does not depend on the number of
# threads. Capped at 8: the steps are memory-bound beyond that.
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
MAX_THREADS = min(8, _CORES)
_pool = None


def for_each_chunk(func, chunks, n_threads=None):
    """Call ``func(chunk)`` for every chunk, on up to ``n_threads`` threads (default
    :data:`MAX_THREADS`); exceptions propagate. The calls must touch disjoint outputs."""
    global _pool
    chunks = list(chunks)
    n_threads = MAX_THREADS if n_threads is None else n_threads
    if n_threads <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            func(chunk)
        return
    if _pool is None or _pool._max_workers < n_threads:
        _pool = ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="skstellar")
    # one task per thread, each walking its share of the chunks in order
    shares = [chunks[k::n_threads] for k in range(n_threads)]
    futures = [_pool.submit(lambda share: [func(c) for c in share], s) for s in shares if s]
    for f in futures:
        f.result()


def linear_step(centres):
    """The pixel width of a regular (linear) 1-D grid, or None if it is not regular.

    Regular means every centre lies within 1e-9 pixel of ``first + k * step``: then a
    wavelength's pixel position is arithmetic, with no search.
    """
    c = np.asarray(centres, dtype=np.float64)
    if c.ndim != 1 or c.size < 2:
        return None
    step = (c[-1] - c[0]) / (c.size - 1)
    ideal = c[0] + step * np.arange(c.size)
    if np.max(np.abs(c - ideal)) <= 1e-9 * step:
        return float(step)
    return None


def pixel_edges(centres):
    """Edges of the pixels whose centres are given (along the last axis).

    Inner edges are the midpoints between neighbouring centres; the outer edges lie
    half a pixel beyond the first and last centre (the convention of
    ``specutils.SpectralAxis.bin_edges``). A single pixel gets a width of 1.

    Parameters
    ----------
    centres : ndarray of shape (p,) or (n, p)

    Returns
    -------
    ndarray of shape (p + 1,) or (n, p + 1), float64
    """
    c = np.asarray(centres, dtype=np.float64)
    shape = c.shape[:-1] + (c.shape[-1] + 1,)
    edges = np.empty(shape)
    if c.shape[-1] == 1:
        edges[..., 0] = c[..., 0] - 0.5
        edges[..., 1] = c[..., 0] + 0.5
        return edges
    edges[..., 1:-1] = 0.5 * (c[..., 1:] + c[..., :-1])
    edges[..., 0] = c[..., 0] - 0.5 * (c[..., 1] - c[..., 0])
    edges[..., -1] = c[..., -1] + 0.5 * (c[..., -1] - c[..., -2])
    return edges


def outer_edges(centres):
    """First and last pixel edge of each spectrum (see :func:`pixel_edges`), cheaply.

    Returns
    -------
    first, last : float or ndarray of shape (n,)
    """
    c = np.asarray(centres, dtype=np.float64)
    if c.shape[-1] == 1:
        return c[..., 0] - 0.5, c[..., 0] + 0.5
    return (
        c[..., 0] - 0.5 * (c[..., 1] - c[..., 0]),
        c[..., -1] + 0.5 * (c[..., -1] - c[..., -2]),
    )


def locate(edges, values, *, with_edges=False):
    """Index ``j`` of the pixel holding each value: ``edges[j] <= value < edges[j + 1]``.

    Values outside the edges get the first or last pixel (callers mask them).

    Parameters
    ----------
    edges : ndarray of shape (p + 1,) or (n, p + 1)
        Increasing pixel edges, shared or one row per star.
    values : ndarray of shape (m,) or (n, m)
        Increasing values, shared or one row per star.
    with_edges : bool, default=False
        Also return ``edges[j]`` and ``edges[j + 1]`` (row-wise).

    Returns
    -------
    j : ndarray of shape (m,) when both are 1-D, else (n, m), intp
    low, high : ndarrays like ``j``, float64, only with ``with_edges``
    """
    p = edges.shape[-1] - 1
    if edges.ndim == 1:
        j = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, p - 1)
        return (j, edges[j], edges[j + 1]) if with_edges else j
    values = np.broadcast_to(values, (edges.shape[0], values.shape[-1]))
    # Survey grids are (nearly) linear, so a linear guess from each row's end edges is
    # almost always right; one vectorised check finds the exceptions and a vectorised
    # bisection settles them (many of them only on strongly non-linear grids).
    first, last = edges[:, :1], edges[:, -1:]
    j = np.floor((values - first) * (p / (last - first))).astype(np.intp)
    np.clip(j, 0, p - 1, out=j)
    take = row_taker(j, p + 1)
    low, high = take(edges), take(edges, 1)
    wrong = (low > values) & (j > 0)
    wrong |= (high <= values) & (j < p - 1)
    if wrong.any():
        rows, cols = np.nonzero(wrong)
        j[rows, cols] = _bisect(edges, rows, values[rows, cols])
        low[rows, cols] = edges[rows, j[rows, cols]]
        high[rows, cols] = edges[rows, j[rows, cols] + 1]
    return (j, low, high) if with_edges else j


def row_taker(j, width):
    """A function ``take(arr, shift=0) -> arr[i, j[i, k] + shift]`` for ``(n, width)`` arrays.

    The flat index is built once and reused for every array of that width; a shift
    reads from an offset view instead of adding to the index. One flat ``np.take`` is
    2x faster than ``np.take_along_axis``. A 1-D ``j`` indexes every row alike.
    """
    if j.ndim == 1:
        return lambda arr, shift=0: arr[..., j + shift]
    flat = j + (np.arange(j.shape[0]) * width)[:, np.newaxis]
    return lambda arr, shift=0: np.take(arr.reshape(-1)[shift:], flat)


def _bisect(edges, rows, values):
    """Vectorised binary search of ``values`` among the edges of ``rows``."""
    p = edges.shape[1] - 1
    lo = np.zeros(values.shape, dtype=np.intp)  # edges[rows, lo] <= value (or lo == 0)
    hi = np.full(values.shape, p, dtype=np.intp)  # value < edges[rows, hi] (or hi == p)
    while True:
        active = hi - lo > 1
        if not active.any():
            return np.clip(lo, 0, p - 1)
        mid = (lo + hi) // 2
        below = edges[rows, mid] <= values
        lo = np.where(active & below, mid, lo)
        hi = np.where(active & ~below, mid, hi)


def wavelength_names(setup, wavelength):
    """Feature names ``"<setup>_<wavelength>"``, e.g. ``"HR10_5350.06"``.

    The number of decimals is the fewest (0 to 4) that print every wavelength of the
    grid exactly, raised further only if names would otherwise repeat.
    """
    w = np.asarray(wavelength, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(w)))) if w.size else 1.0
    decimals = next(
        (d for d in range(5) if np.all(np.abs(np.round(w, d) - w) <= 1e-9 * scale)), 4
    )
    while True:
        names = np.array([f"{setup}_{x:.{decimals}f}" for x in w], dtype=object)
        if len(set(names)) == len(names) or decimals >= 12:
            return names
        decimals += 1
