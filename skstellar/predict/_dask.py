"""The chunks of :func:`~skstellar.predict.predict_survey` as tasks on a Dask cluster.

The fitted pipeline is scattered to every worker once (``client.scatter(...,
broadcast=True)``); each task gets only the description of its chunk (a store path and a
row range, or a list of files) and reads the spectra where it runs; rows come back in chunk
order, a bounded number of chunks ahead of the one being written. Dask's scheduler does the
rest (placement, retries of a lost worker's tasks): nothing here schedules by itself.

Imported only when a ``client`` is given: ``dask[distributed]`` is an optional extra.
"""

from __future__ import annotations

import threading
from collections import deque

from ._stream import _IterSource, predict_chunk, read_task

__all__ = ["dask_chunks"]

# One chunk at a time per worker process: tasks share the worker's copy of the pipeline,
# whose filter caches its last map, and each task already uses all the worker's threads
# (skstellar.utils.task_threads reads the worker's nthreads).
_WORKER_LOCK = threading.Lock()


def _run_chunk(pipeline, chunk, block):
    with _WORKER_LOCK:
        spectra = chunk if not isinstance(chunk, tuple) else read_task(chunk)
        return predict_chunk(pipeline, spectra, block)


def dask_chunks(client, pipeline, source, first, block, max_in_flight=None):
    """Yield ``(k, rows)`` for chunks ``first, first + 1, ...`` computed on the cluster, in order."""
    remote = client.scatter(pipeline, broadcast=True)
    window = max_in_flight or 2 * max(1, sum(client.nthreads().values()))
    if isinstance(source, _IterSource):  # chunks exist only here: they travel with their task
        payloads = ((k, client.scatter(spectra)) for k, spectra in source.chunks(first))
    else:
        payloads = ((k, source.task(k)) for k in range(first, source.n_chunks))
    pending = deque()

    def submit_next():
        item = next(payloads, None)
        if item is not None:
            k, payload = item
            pending.append((k, client.submit(_run_chunk, remote, payload, block, pure=False,
                                             key=f"skstellar-chunk-{k}-{id(pending)}")))

    for _ in range(window):
        submit_next()
    try:
        while pending:
            k, future = pending.popleft()
            rows = future.result()
            future.release()
            submit_next()
            yield k, rows
    finally:
        for _, future in pending:  # an interrupted run leaves no task behind
            future.cancel()
