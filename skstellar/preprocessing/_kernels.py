"""Compiled per-row kernels of the cleaner and the rebinner (numba).

Both steps are a handful of passes over each spectrum with data-dependent work per
pixel (a selection for the median, a walk over the pixels a bin overlaps). In numpy
they took ~10 array passes and temporaries per step (3 600 stars/s for the chain on 2
cores); as one compiled loop per row they read the input once. Each kernel handles the
rows ``start:stop`` and writes only those rows of its outputs, so row chunks run on a
thread pool without the GIL (``nogil``) and the result does not depend on the number of
threads. ``cache=True`` keeps the machine code next to this file (or in numba's user
cache when the package directory is read-only), so only the first call of an
installation pays the compilation (~7 s for all kernels).
"""

import math

import numpy as np
from numba import njit

__all__ = ["clean_rows", "rebin_rows", "rebin_rows_regular"]


@njit(nogil=True, cache=True)
def _select(a, lo, hi, kth):
    """Move the ``kth`` smallest of ``a[lo:hi]`` to ``a[kth]`` (in place), smaller
    values before it, larger after it (Hoare partition around a median of three)."""
    while hi - lo > 1:
        mid = (lo + hi - 1) // 2
        # median of three as the pivot: sorted or reversed spectra are no worst case
        x, y, z = a[lo], a[mid], a[hi - 1]
        if x > y:
            x, y = y, x
        if y > z:
            y = z
            if x > y:
                y = x
        pivot = y
        i, j = lo, hi - 1
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if kth <= j:
            hi = j + 1
        elif kth >= i:
            lo = i
        else:
            return


@njit(nogil=True, cache=True)
def _kth_pair(a, n, c, work):
    """The ``c - 1``-th and ``c``-th smallest of ``a[:n]`` (``0 < c < n``; ``a`` is
    reordered, ``work`` a scratch buffer of at least ``n``).

    A quickselect over all ``n`` values touches each ~3.4 times with unpredictable
    branches (4x slower than numpy's SIMD partition). Instead, 63 evenly spaced values
    bracket the wanted ranks (+-10 of the 63, about 2.5 standard deviations of their
    rank); one branch-free pass counts the values below and above the bracket and
    copies those inside it (about a third of them) into ``work``, where the quickselect
    runs. If the ranks fall outside the bracket (rare: only for unlucky orders), the
    quickselect runs on everything.
    """
    if n >= 256:
        stride = n // 63
        for q in range(63):
            work[q] = a[q * stride]
        work[:63].sort()
        centre = (63 * c) // n
        lo_piv = work[max(centre - 10, 0)]
        hi_piv = work[min(centre + 10, 62)]
        n_lo = 0
        n_in = 0
        for q in range(n):
            x = a[q]
            below = x < lo_piv
            n_lo += below
            work[n_in] = x
            n_in += (not below) & (x <= hi_piv)
        if n_lo <= c - 1 and c < n_lo + n_in:
            _select(work, 0, n_in, c - n_lo)
            upper = work[c - n_lo]
            lower = work[0]
            for q in range(1, c - n_lo):
                if work[q] > lower:
                    lower = work[q]
            return float(lower), float(upper)
    _select(a, 0, n, c)
    lower = a[0]  # the largest of the part before c
    for q in range(1, c):
        if a[q] > lower:
            lower = a[q]
    return float(lower), float(a[c])


@njit(nogil=True, cache=True)
def _median(a, n, work):
    """Median of ``a[:n]`` (float64; ``a`` is reordered); NaN for ``n == 0``."""
    if n == 0:
        return np.nan
    if n == 1:
        return float(a[0])
    lower, upper = _kth_pair(a, n, n // 2, work)
    return upper if n % 2 else 0.5 * (lower + upper)


@njit(nogil=True, cache=True, inline="always")
def _usable(f, e):
    """A usable pixel: finite, non-zero flux and finite error (``e``: 0 if none)."""
    return math.isfinite(f) and f != 0 and math.isfinite(e)


@njit(nogil=True, cache=True)
def clean_rows(flux, error, stride, sigma, mad_to_sigma, mean_ad_to_sigma, out, err_out,
               counts, empty, start, stop):
    """Clean rows ``start:stop`` of ``flux`` (n, p) float32 into ``out``.

    Usable pixels: finite, non-zero flux and (if ``error`` has rows) finite error. From
    the usable pixels among every ``stride``-th one (all of them if that sample holds
    none): the median ``m`` and ``s = mad_to_sigma * MAD``, or, if the MAD is 0,
    ``mean_ad_to_sigma`` times the mean absolute deviation of all usable pixels (inf
    if that is 0 too: a constant spectrum has no spikes). Unusable pixels and those
    above ``m + sigma * s`` get ``m`` (their error, if ``err_out`` has rows: ``s``);
    ``counts`` gets their number, ``empty`` whether the row had no usable pixel (its
    output is left to the caller).
    The median and the deviations are taken in float32 like the flux, the statistics
    accumulated in float64.
    """
    p = flux.shape[1]
    has_error = error.shape[0] > 0
    write_error = err_out.shape[0] > 0
    buf = np.empty(p, dtype=np.float32)
    work = np.empty(p, dtype=np.float32)
    zeros = np.zeros(p, dtype=np.float32)
    for i in range(start, stop):
        f = flux[i]
        e = error[i] if has_error else zeros
        n = 0
        for q in range(0, p, stride):
            buf[n] = f[q]
            n += _usable(f[q], e[q])
        step = stride
        if n == 0:  # the sample missed every usable pixel: take them all
            step = 1
            for q in range(p):
                buf[n] = f[q]
                n += _usable(f[q], e[q])
        # no usable pixel at all; found here rather than by a counting pass over every row
        empty[i] = n == 0
        if n == 0:
            counts[i] = p
            continue
        med = np.float32(_median(buf, n, work))
        n = 0
        for q in range(0, p, step):
            buf[n] = abs(f[q] - med)
            n += _usable(f[q], e[q])
        scale = mad_to_sigma * _median(buf, n, work)
        if scale == 0:
            total = 0.0
            n_usable = 0
            for q in range(p):
                if _usable(f[q], e[q]):
                    total += abs(f[q] - med)
                    n_usable += 1
            scale = mean_ad_to_sigma * total / n_usable
            if scale == 0:
                scale = np.inf
        limit = np.float32(med + sigma * scale)
        scale32 = np.float32(scale)
        n_bad = 0
        o = out[i]
        for q in range(p):
            bad = not (f[q] <= limit and _usable(f[q], e[q]))
            o[q] = med if bad else f[q]
            n_bad += bad
        counts[i] = n_bad
        if write_error:  # a loop of its own: with the error store inside, the one above
            eo = err_out[i]  # no longer vectorises (the cleaner took nearly 2x the CPU)
            for q in range(p):
                bad = not (f[q] <= limit and _usable(f[q], e[q]))
                eo[q] = scale32 if bad else e[q]


@njit(nogil=True, cache=True)
def rebin_rows(edges, scale, flux, error, new_edges, tiny, out, err_out, nonfinite, start,
               stop):
    """Flux-conserving rebinning of rows ``start:stop`` onto the bins ``new_edges``.

    ``edges`` (1, p + 1) are the pixel edges shared by every row, or (n, p + 1) one row
    per star; ``scale`` (n,) multiplies a shared grid per star (empty: none). Output bin
    ``k`` is the mean flux density over it, ``sum_j f_j o_jk / w_k`` with ``o_jk`` the
    overlap of pixel ``j``, and its error ``sqrt(sum_j (s_j o_jk)^2) / w_k``; a pixel of
    non-finite error overlapping a bin by more than ``tiny`` of its width makes the
    bin's error inf. Only overlapping pixels are read, so a NaN elsewhere cannot leak
    into a bin. Parts of bins outside the pixels contribute nothing: the caller pads
    or refuses such bins. Works in the star's observed frame (bin edges divided by its
    scale), where the ratio of overlap to width is the same. ``nonfinite[i]`` is set
    for rows with a NaN or inf output bin (checked here, where the values are in
    registers, rather than by a pass over the output).
    """
    p = flux.shape[1]
    m = new_edges.size - 1
    has_error = error.shape[0] > 0
    per_star = edges.shape[0] > 1
    for i in range(start, stop):
        e = edges[i] if per_star else edges[0]
        inv = 1.0 / scale[i] if scale.size > 0 else 1.0
        f = flux[i]
        # the pixel holding the first bin edge: e[j] <= x < e[j + 1] (clipped to 0..p-1)
        x = new_edges[0] * inv
        lo_j, hi_j = 0, p
        while hi_j - lo_j > 1:
            mid = (lo_j + hi_j) // 2
            if e[mid] <= x:
                lo_j = mid
            else:
                hi_j = mid
        j = lo_j
        x = max(x, e[0])  # the part of a bin before the first pixel holds nothing
        lo = new_edges[0] * inv
        for k in range(m):
            # one segment per pixel the bin overlaps: [x, e[j + 1]] for the pixels that
            # end inside the bin, then [x, hi] in the pixel holding hi
            hi = new_edges[k + 1] * inv
            acc = 0.0
            var = 0.0
            while j < p and e[j + 1] <= hi:
                seg = e[j + 1] - x
                if seg > 0:  # a pixel ending where the bin starts adds nothing, not NaN
                    acc += f[j] * seg
                    if has_error:
                        var = _add_variance(var, error[i, j], seg, tiny * (e[j + 1] - e[j]))
                    x = e[j + 1]
                j += 1
            if j < p and hi > x:
                seg = hi - x
                acc += f[j] * seg
                if has_error:
                    var = _add_variance(var, error[i, j], seg, tiny * (e[j + 1] - e[j]))
                x = hi
            width = hi - lo
            value = acc / width
            out[i, k] = value
            if not math.isfinite(value):
                nonfinite[i] = True
            if has_error:
                err_out[i, k] = math.sqrt(var) / width
            lo = hi


@njit(nogil=True, cache=True, inline="always")
def _add_variance(var, s, seg, tiny):
    """``var + (s seg)^2``; inf for a pixel without information (its error not finite)
    unless it overlaps by less than ``tiny`` (rounding at a shared edge)."""
    if math.isfinite(s):
        return var + (s * seg) * (s * seg)
    return np.inf if seg > tiny else var


@njit(nogil=True, cache=True)
def rebin_rows_regular(origin, step, scale, flux, new_edges, out, nonfinite, start, stop):
    """:func:`rebin_rows` for the common case, flux only on a shared regular grid
    (pixel ``j`` spans ``origin + step * [j, j + 1]``, times the star's ``scale``).

    The walk of :func:`rebin_rows` mispredicts the end of almost every bin, the main
    cost of the rebinning. Here positions are arithmetic (pixel units ``u``) and each
    bin is a difference of the flux integral ``I(u) = C[j] + (u - j) f[j]`` at its
    edges, with ``C`` the running sum of the pixels the bins cover (float64): no
    data-dependent branch. Positions are clipped to the pixels, so parts of bins outside
    them hold nothing, as in the walk; pixels outside the bins are never read.
    ``nonfinite`` as in :func:`rebin_rows`.
    """
    p = flux.shape[1]
    m = new_edges.size - 1
    cum = np.empty(p + 1)
    # 1 / bin width in Angstrom, for all stars: a product per bin instead of a division
    inv_width = np.empty(m)
    for k in range(m):
        inv_width[k] = 1.0 / (new_edges[k + 1] - new_edges[k])
    for i in range(start, stop):
        pixel = step * scale[i] if scale.size > 0 else step  # pixel width in Angstrom
        inv = 1.0 / pixel
        shift = origin / step
        f = flux[i]
        u_first = min(max(new_edges[0] * inv - shift, 0.0), float(p))
        u_last = min(max(new_edges[m] * inv - shift, 0.0), float(p))
        j_first = min(int(u_first), p - 1)
        j_last = min(int(u_last), p - 1)
        # running sum two pixels a step: the chain of dependent additions, the loop's
        # bottleneck, is half as long
        total = 0.0
        cum[j_first] = 0.0
        j = j_first
        while j < j_last:
            a = float(f[j])
            cum[j + 1] = total + a
            total += a + float(f[j + 1])
            cum[j + 2] = total
            j += 2
        if j == j_last:
            cum[j + 1] = total + float(f[j])
        at_lo = _integral(cum, f, u_first, p)
        bad = False
        for k in range(m):
            u_hi = new_edges[k + 1] * inv - shift
            at_hi = _integral(cum, f, min(max(u_hi, 0.0), float(p)), p)
            # the mean density over the bin: integral (pixel units) / width (pixel units)
            value = (at_hi - at_lo) * inv_width[k] * pixel
            out[i, k] = value
            bad |= not math.isfinite(value)
            at_lo = at_hi
        nonfinite[i] = bad


@njit(nogil=True, cache=True, inline="always")
def _integral(cum, f, u, p):
    """The flux integral up to position ``u`` (in ``[0, p]``), in pixel units."""
    j = min(int(u), p - 1)
    t = u - j
    return cum[j] + (t * f[j] if t > 0 else 0.0)
