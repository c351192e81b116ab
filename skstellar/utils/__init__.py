"""Internal utilities shared by the estimators of skstellar, and the execution policy.

:func:`task_threads` is the one place that says how many threads a task may use (the
thread pools, the similarity filter and the compiled kernels read it); :func:`thread_limit`
sets it for a block of code.
"""

from ._threads import task_threads, thread_limit

__all__ = ["task_threads", "thread_limit"]
