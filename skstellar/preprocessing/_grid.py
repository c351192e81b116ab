"""Wavelength-grid arithmetic shared by the preprocessing steps.

Pixel edges from pixel centres, feature names that carry the wavelength, and the row
chunks (run on :func:`skstellar.utils._threads.for_each_chunk`) that bound the temporaries
of the vectorised steps.
"""

import numpy as np

__all__ = [
    "SPEED_OF_LIGHT_KMS",
    "outer_edges",
    "pixel_edges",
    "row_chunks",
    "wavelength_names",
]

SPEED_OF_LIGHT_KMS = 299_792.458

# Rows per chunk: enough for a thread's call to outweigh its overhead (~20 us), few
# enough that the chunks of a batch balance over the threads; the per-star temporaries
# (the rebinner's per-star pixel edges) stay bounded.
_CHUNK_ELEMENTS = 200_000


def row_chunks(n_rows, n_cols):
    """Slices over ``n_rows`` with about ``_CHUNK_ELEMENTS / n_cols`` rows each."""
    size = max(1, _CHUNK_ELEMENTS // max(1, n_cols))
    return [slice(start, min(start + size, n_rows)) for start in range(0, n_rows, size)]


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
