"""A small shared thread pool: the metric kernels are numpy/scipy calls that release the GIL, so two
threads use both cores (the issue's target machine has 2). ``MEDFUSION_METRICS_THREADS=1`` turns it off;
results are identical either way (every value is computed by the same code, only on another thread).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor


def _default_workers() -> int:
    try:
        return max(1, int(os.environ.get("MEDFUSION_METRICS_THREADS", "")))
    except ValueError:
        return max(1, min(2, os.cpu_count() or 1))


WORKERS = _default_workers()
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = -1


def get_pool() -> ThreadPoolExecutor | None:
    """The shared pool (WORKERS threads), or None when running single-threaded.

    A forked child process does not inherit the parent's threads, so it gets a pool of its own.
    """
    global _pool, _pool_pid
    if WORKERS < 2:
        return None
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="medfusion-metrics")
            _pool_pid = os.getpid()
        return _pool
