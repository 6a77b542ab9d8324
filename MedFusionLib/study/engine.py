"""Cohorts on Dask distributed: each manifest row is one task running :func:`run_recorded_case` on a worker.

Why Dask: when a cohort outgrows one machine the answer is an existing scheduler (``dask scheduler`` +
``dask worker``, dask-jobqueue on SLURM/PBS, Kubernetes), not a pool of our own. Dask also gives the fault
handling we need: a task whose worker dies is rescheduled on another worker (up to
``distributed.scheduler.allowed-failures`` times, then it fails with ``KilledWorker``, which becomes that row's
error). Tasks are idempotent (outputs and records are written atomically), so running a row twice is harmless.

Who writes OUTDIR: the **workers** write each fused image and its resume record, atomically (temporary file +
rename) on a file system the client and every worker see at the same path; the client only reads records (to
skip done rows) and writes ``metrics.csv`` from the returned records. Fused volumes never travel through the
scheduler or the client's memory.

Threads: each task limits torch's and SimpleITK's threads to ``$MEDFUSION_THREADS`` when set, else the worker's
``$OMP_NUM_THREADS`` (Dask's nanny sets 1 by default), else the CPUs divided by the worker's task threads, so N
workers on one machine do not each start a thread per core. The embedded cluster sets ``MEDFUSION_THREADS`` and
``MEDFUSION_METRICS_THREADS`` (the metrics' thread pool) to CPUs // workers.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import dask
from distributed import Client, LocalCluster, as_completed, get_worker
from distributed.scheduler import KilledWorker

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.core.options import FusionOptions
from MedFusionLib.study.manifest import Case
from MedFusionLib.study.runner import (
    BatchOutcome,
    CaseRecord,
    Plan,
    finish,
    internal_error,
    run_case,
    run_recorded_case,
)

CONNECT_TIMEOUT_S = 20


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_workers() -> int:
    """One single-threaded worker process per usable CPU, at most 16 and at most one per 2 GiB of memory (each
    worker holds torch and the networks)."""
    import psutil

    by_memory = int(psutil.virtual_memory().total // (2 << 30))
    return max(1, min(usable_cpus(), 16, by_memory))


def _task_threads() -> int:
    for variable in ("MEDFUSION_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(variable, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        nthreads = get_worker().state.nthreads
    except ValueError:  # not on a worker
        nthreads = 1
    return max(1, usable_cpus() // max(1, nthreads))


def _limit_threads() -> None:
    """Size torch's and SimpleITK's thread pools for this worker (see the module docstring)."""
    import SimpleITK as sitk
    import torch

    threads = _task_threads()
    os.environ["MEDFUSION_THREADS"] = str(threads)  # read by inference.runtime at each call
    if torch.get_num_threads() != threads:  # else runtime would resize torch's pool at every call (Dask's
        torch.set_num_threads(threads)  # nanny starts workers with OMP_NUM_THREADS=1) and restore it after
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def run_case_task(case: Case, out_dir: str, options: FusionOptions, key: str) -> CaseRecord:
    """The task of one batch row on a worker: limit threads, fuse, write the output then the resume record."""
    _limit_threads()
    return run_recorded_case(case, Path(out_dir), options, key)


def run_study_task(case: Case, out_dir: str, options: FusionOptions) -> CaseRecord:
    """The task of one (method, case) of a study on a worker: limit threads, then :func:`run_case`."""
    _limit_threads()
    return run_case(case, Path(out_dir), options)


def study_executor(scheduler: str | None = None, workers: int | None = None):
    """An executor for ``medfusion study`` (``study.cohort.Executor``): the (method, case) tasks run on the
    cluster at ``scheduler`` or on an embedded one of ``workers`` processes; records come back in task order
    (a task lost with its worker is rerun elsewhere by Dask; one that keeps failing becomes that row's error)."""

    def execute(tasks):
        tasks = list(tasks)
        if not tasks:
            return
        token = uuid.uuid4().hex[:8]
        with cohort_client(scheduler, workers) as client:
            futures = [
                client.submit(
                    run_study_task, case, str(Path(out).absolute()), options, key=f"medfusion-study-{i}-{token}"
                )
                for i, (case, out, options) in enumerate(tasks)
            ]
            for (case, _, _), future in zip(tasks, futures):
                try:
                    record = future.result()
                except Exception as err:  # a bug or a lost worker: this task fails, the others go on
                    record = _failure(case, err)
                future.release()
                yield record

    return execute


def _check_reachable(address: str) -> None:
    """Fail fast with one line when nothing listens at a tcp:// address (Dask itself would retry until timeout)."""
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if parsed.scheme not in ("tcp", "tls") or not parsed.hostname or not parsed.port:
        return  # other protocols (ucx, inproc, ws): leave it to Client
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=5):
            pass
    except OSError as err:
        raise MedFusionError(f"cannot reach scheduler {address}: {err.strerror or err}") from None


def _check_tls_settings(address: str) -> None:
    """A tls:// scheduler needs the client's certificate settings in Dask's configuration (else Dask fails
    deep inside with a TypeError); one line saying which."""
    if urlparse(address).scheme == "tls" and not dask.config.get("distributed.comm.tls.ca-file", None):
        raise MedFusionError(
            f"{address}: a tls:// scheduler needs Dask's TLS settings distributed.comm.tls.ca-file, "
            ".client.cert and .client.key (e.g. DASK_DISTRIBUTED__COMM__TLS__CA_FILE=...; see docs/cohorts.md)"
        )


@contextlib.contextmanager
def cohort_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Client]:
    """A client of the cluster at ``scheduler``, or of an embedded LocalCluster of ``workers`` processes (one task
    thread each; default :func:`default_workers`); closed (and the embedded cluster shut down) on exit."""
    if scheduler:
        _check_tls_settings(scheduler)
        _check_reachable(scheduler)
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as err:
            raise MedFusionError(f"cannot reach scheduler {scheduler}: {err}") from None
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or default_workers()
    per_worker = str(max(1, usable_cpus() // n))
    env = {name: os.environ.get(name) or per_worker for name in ("MEDFUSION_THREADS", "MEDFUSION_METRICS_THREADS")}
    # Dask's nanny also sets MALLOC_TRIM_THRESHOLD_=65536 (return freed memory to the OS at once): measured on
    # 2 cores, it made our metrics (many short-lived MB-sized numpy arrays) about twice as slow in a worker, so the
    # embedded cluster keeps only the nanny's single-threaded BLAS/OpenMP settings (we size torch ourselves).
    blas = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": blas}):
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
            silence_logs=logging.ERROR,
            env=env,
        )
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def dashboard_link(client: Client) -> str:
    """The Dask dashboard's address, or "" when the scheduler runs none (e.g. bokeh is not installed)."""
    try:
        if "dashboard" not in client.scheduler_info().get("services", {}):
            return ""
        return str(client.dashboard_link)
    except Exception:  # a link is a convenience, never a failure
        return ""


def _failure(case: Case, err: BaseException) -> CaseRecord:
    if isinstance(err, KilledWorker):
        reason = "the worker running it died repeatedly (it may need more memory); see the worker logs"
    elif isinstance(err, concurrent.futures.CancelledError):
        reason = "cancelled: the connection to the cluster was lost; rerun the same command to resume"
    else:
        reason = internal_error(err)
    return CaseRecord(case.row, case.name, error=reason, group=case.group)


def run_plan_on(
    client: Client,
    plan: Plan,
    out_dir: Path,
    options: FusionOptions,
    on_record: Callable[[CaseRecord, int], None] | None = None,
    task: Callable[[Case, str, FusionOptions, str], CaseRecord] | None = None,
) -> BatchOutcome:
    """Submit one task per row to run, gather them as they complete, write ``metrics.csv`` (successes only).

    ``task(case, out_dir, options, key)`` runs one row on a worker (default :func:`run_case_task`); another
    front-end (``study``) can pass its own, provided it is importable on the workers, idempotent and writes the
    row's resume record last."""
    out_dir = Path(out_dir).absolute()
    token = uuid.uuid4().hex[:8]  # keys unique to this run: a shared scheduler may hold another run's rows
    futures = {}
    for case, key in plan.todo:
        future = client.submit(
            task or run_case_task, case, str(out_dir), options, key, key=f"medfusion-{case.row}-{token}"
        )
        futures[future] = case
    records = []
    for future in as_completed(futures):
        case = futures[future]
        try:
            record = future.result()
        except Exception as err:  # a bug or a lost worker: this row fails, the others go on
            record = _failure(case, err)
        future.release()
        records.append(record)
        if on_record is not None:
            on_record(record, len(plan.cases))
    return finish(plan, records, out_dir)
