"""The execution policy (how many threads one task may use) and the thread pool on which
compiled kernels run over chunks of rows.

One place decides the threads of a task, :func:`task_threads`, read by this pool, the
similarity filter (openTSNE, neighbour searches) and the compiled CNN kernels:

1. a limit set with :func:`thread_limit` (a context manager), else
2. inside a Dask worker, the worker's thread count (``nthreads``): a worker with one
   thread runs one task on one core, not a whole machine's worth of threads per task, else
3. the environment variable ``SKSTELLAR_THREADS``, else
4. every core available to this process (:data:`CORES`).

``n_jobs`` means what it means in joblib, relative to that: -1 all of the task's threads,
``-k`` all but ``k - 1``, None one, a positive number that number.

The kernels (numba, ``nogil``) and numpy's heavy calls release the GIL, so the chunks of
one step run on all the task's threads. Each chunk writes its own rows of the output and
nothing else, so the result does not depend on the number of threads.
"""

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

__all__ = ["CORES", "MAX_THREADS", "for_each_chunk", "resolve_n_jobs", "task_threads", "thread_limit"]

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
# The cap of the preprocessing steps: they are memory-bound beyond 8 threads. Compute-bound
# work (the CNN's forward pass) asks for all of task_threads().
MAX_THREADS = min(8, CORES)
_ENV = "SKSTELLAR_THREADS"
_limit = None
_pool = None


def task_threads():
    """Threads one task may use, from the policy above (at least 1)."""
    if _limit is not None:
        return _limit
    if "distributed" in sys.modules:  # never import Dask just to ask
        from distributed import get_worker

        try:
            return max(1, int(get_worker().state.nthreads))
        except ValueError:  # not inside a worker
            pass
    value = os.environ.get(_ENV)
    if value:
        try:
            threads = int(value)
        except ValueError:
            raise ValueError(f"{_ENV}={value!r} is not a whole number of threads.") from None
        if threads < 1:
            raise ValueError(f"{_ENV}={value!r}: give at least 1 thread.")
        return threads
    return CORES


def resolve_n_jobs(n_jobs):
    """Threads for an ``n_jobs`` parameter: None 1, -1 :func:`task_threads`, -k all but k - 1."""
    if n_jobs is None:
        return 1
    n_jobs = int(n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning; give a positive number, -1 (all threads) or None.")
    if n_jobs < 0:
        return max(1, task_threads() + 1 + n_jobs)
    return n_jobs


@contextmanager
def thread_limit(n_threads):
    """Within the block, :func:`task_threads` is ``n_threads`` (None: back to the default policy)."""
    global _limit
    if n_threads is not None and int(n_threads) < 1:
        raise ValueError(f"thread_limit needs at least 1 thread; got {n_threads}.")
    previous, _limit = _limit, None if n_threads is None else int(n_threads)
    try:
        yield
    finally:
        _limit = previous


def for_each_chunk(func, chunks, n_threads=None):
    """Call ``func(chunk)`` for every chunk, on up to ``n_threads`` threads (default
    ``min(8, task_threads())``); exceptions propagate. The calls must touch disjoint outputs."""
    global _pool
    chunks = list(chunks)
    n_threads = min(MAX_THREADS, task_threads()) if n_threads is None else n_threads
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
