"""The thread pool on which compiled kernels run over chunks of rows.

The kernels (numba, ``nogil``) and numpy's heavy calls release the GIL, so the chunks of
one step run on all cores. Each chunk writes its own rows of the output and nothing else,
so the result does not depend on the number of threads.
"""

import os
from concurrent.futures import ThreadPoolExecutor

__all__ = ["CORES", "MAX_THREADS", "for_each_chunk"]

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
# The default for the preprocessing steps, capped at 8: they are memory-bound beyond that.
# Compute-bound work (the CNN's forward pass) asks for all CORES.
MAX_THREADS = min(8, CORES)
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
