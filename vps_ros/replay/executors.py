"""Where a fleet's drives run: in this process, in N processes of this machine, or as
Ray tasks on a cluster (this module is the only one that imports Ray, and only when
asked for).

Every executor runs one plain function (a drive job -> a small dict of its
sufficient statistics) and yields ``(job, result, failure)`` as drives finish, in
whatever order they finish: ``failure`` is None, or a line saying why the worker
gave no result (an exception, a killed process, a lost node); the other drives go
on. At most a bounded number of drives is in flight, so the caller's memory does
not grow with the number of drives.
"""
from __future__ import annotations

import os
import socket
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator, Protocol
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..processes import process_pool

Outcome = tuple[Any, "dict[str, Any] | None", "str | None"]
DriveFunction = Callable[[Any], "dict[str, Any]"]

WORKER_DIED = ("its worker process died (killed, or out of memory) while it ran, twice")
CONNECT_TIMEOUT_S = 10.0
# The HTTP/2 client preface and an empty SETTINGS frame: a Ray cluster's GCS and client
# server speak gRPC and answer with a SETTINGS frame (byte 3 of a frame is its type, 4).
GRPC_PROBE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


class Executor(Protocol):
    description: str

    def run(self, function: DriveFunction, jobs: Iterable[Any]) -> Iterator[Outcome]: ...

    def close(self) -> None: ...


def describe(exc: BaseException) -> str:
    """One line naming an exception a worker raised."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class InProcess:
    """One drive after the other, in this process."""

    description = "this process"

    def run(self, function: DriveFunction, jobs: Iterable[Any]) -> Iterator[Outcome]:
        for job in jobs:
            try:
                result = function(job)
            except Exception as exc:      # a worker's bug fails its drive, not the fleet
                yield job, None, describe(exc)
            else:
                yield job, result, None

    def close(self) -> None:
        return None


class Processes:
    """``workers`` processes of this machine (``processes.py``: spawned, nothing of the
    driver's state is inherited). A killed worker breaks Python's pool: the drives then
    in flight are reported failed and a new pool takes the rest."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.description = f"{workers} processes"
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        self.close()
        self._pool = process_pool(self.workers)
        return self._pool

    def run(self, function: DriveFunction, jobs: Iterable[Any]) -> Iterator[Outcome]:
        """Outcomes as the drives finish. When a worker dies, the pool breaks and every
        drive running in it fails with it: each such drive runs once more, alone in a
        new pool (it may only have run beside the one that died), and fails for good if
        its worker dies again. A drive the broken pool refuses waits for the new one."""
        queue = enumerate(jobs)
        retry: list[tuple[int, Any]] = []
        died: set[int] = set()                      # positions of drives whose pool broke
        pool = self._new_pool()
        running: dict[Future, tuple[int, Any]] = {}
        broken = False
        while True:
            if broken and not running:
                pool, broken = self._new_pool(), False
            while not broken and len(running) < self.workers:
                if any(position in died for position, _ in running.values()):
                    break                       # a drive run once more runs alone
                if retry and running:
                    break
                entry = retry.pop(0) if retry else next(queue, None)
                if entry is None:
                    break
                try:
                    running[pool.submit(function, entry[1])] = entry
                except BrokenProcessPool:       # marked broken before its futures fail
                    retry.insert(0, entry)
                    broken = True
            if not running:
                if broken:
                    continue                    # no drive of ours was in the dead worker
                return
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                position, job = running.pop(future)
                exc = future.exception()
                if isinstance(exc, BrokenProcessPool):
                    broken = True
                    if position in died:
                        yield job, None, WORKER_DIED
                    else:
                        died.add(position)
                        retry.append((position, job))
                elif exc is not None:
                    yield job, None, describe(exc)
                else:
                    yield job, future.result(), None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class RayTasks:
    """Each drive one Ray task with ``cpus``/``gpus`` resources (a GPU cluster runs one
    segmenter per GPU with ``gpus=1``). ``address`` None starts a local cluster of
    ``num_cpus`` CPUs on 127.0.0.1; ``auto`` joins the cluster started on this machine
    (``ray start``), ``HOST:PORT`` or ``ray://HOST:PORT`` a remote one."""

    def __init__(self, address: str | None, num_cpus: float | None, cpus: float, gpus: float,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        ray = import_ray(local=address is None)
        self._ray = ray
        self.cpus, self.gpus = cpus, gpus
        if address is None:
            ray.init(address="local", num_cpus=None if num_cpus is None else max(1, round(num_cpus)),
                     include_dashboard=False, _node_ip_address="127.0.0.1",
                     logging_level="warning", log_to_driver=False)
            self.description = f"Ray, local cluster of {self._capacity('CPU'):g} CPUs"
        else:
            check_reachable(address, connect_timeout_s)
            try:
                ray.init(address=address, logging_level="warning", log_to_driver=False)
            except Exception as exc:       # Ray raises ConnectionError, RuntimeError, ...
                raise ConfigError(f"--ray {address}: cannot join the Ray cluster "
                                  f"({describe(exc)})") from None
            self.description = f"Ray cluster {address}"
        try:
            self._check_fits(address is None)
        except ConfigError:
            self.close()
            raise

    def _capacity(self, resource: str) -> float:
        return float(self._ray.cluster_resources().get(resource, 0.0))

    def _check_fits(self, local: bool) -> None:
        """A local cluster never grows: a drive that cannot fit would wait for ever."""
        for name, need in (("CPU", self.cpus), ("GPU", self.gpus)):
            if local and need > self._capacity(name):
                raise ConfigError(f"a drive asks for {need:g} {name}s (--{name.lower()}s-per-"
                                  f"drive) but the local Ray cluster has "
                                  f"{self._capacity(name):g}")

    def _window(self) -> int:
        """Tasks in flight: twice what the cluster runs at once (at least 2)."""
        slots = [self._capacity(n) / need for n, need in (("CPU", self.cpus), ("GPU", self.gpus))
                 if need > 0]
        return max(2, min(1024, 2 * int(min(slots, default=1))))

    def run(self, function: DriveFunction, jobs: Iterable[Any]) -> Iterator[Outcome]:
        ray = self._ray
        remote = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)(function)
        queue, window = iter(jobs), self._window()
        running: dict[Any, Any] = {}
        while True:
            while len(running) < window:
                job = next(queue, None)
                if job is None:
                    break
                running[remote.remote(job)] = job
            if not running:
                return
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                job = running.pop(ref)
                try:
                    result, failure = ray.get(ref), None
                except ray.exceptions.RayTaskError as exc:
                    result, failure = None, describe(exc.cause or exc)
                except ray.exceptions.RayError as exc:
                    result, failure = None, f"its Ray task failed ({describe(exc)})"
                yield job, result, failure

    def close(self) -> None:
        if self._ray.is_initialized():
            self._ray.shutdown()


def import_ray(local: bool = False) -> ModuleType:
    """Ray, or a ConfigError saying how to install it. ``local``: for a cluster of this
    machine alone, on 127.0.0.1; Ray on Linux otherwise looks for the machine's own IP
    first by reaching for a public DNS server (this switch, read when Ray is imported,
    makes it take the loopback address, as it does on macOS and Windows). Ray's usage
    statistics, which a cluster started here would send to Ray's servers, are off."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if local:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray, which is not installed: pip install "
                          "'vps_ros[ray]' (or give --workers N to use this machine's "
                          "processes)") from None
    return ray


def check_reachable(address: str, timeout_s: float) -> None:
    """A TCP connection to a ``HOST:PORT`` / ``ray://HOST:PORT`` address that answers
    as gRPC within ``timeout_s``: a clear error instead of Ray's long retries. ``auto``
    is left to Ray, which answers at once when no cluster runs on this machine."""
    if address == "auto":
        return
    if os.path.exists(address):
        raise ConfigError(f"--ray took {address!r} as the cluster address, but it is a "
                          "path; put --ray after the bags, or write --ray=ADDRESS")
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or port is None:
        raise ConfigError(f"--ray {address}: give auto, HOST:PORT or ray://HOST:PORT")
    try:
        connection = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        raise ConfigError(f"--ray {address}: cannot reach the Ray cluster within "
                          f"{timeout_s:g} s ({exc.strerror or exc})") from None
    with connection:       # accepting is not answering: Ray would wait on it for minutes
        try:
            connection.sendall(GRPC_PROBE)
            answer = connection.recv(9)
        except OSError:
            answer = b""
    if len(answer) < 4 or answer[3] != 4:
        raise ConfigError(f"--ray {address}: something listens there but did not answer as a "
                          f"Ray cluster (gRPC) within {timeout_s:g} s")


def open_executor(workers: int | None = None, ray: str | None = None,
                  cpus_per_drive: float = 1.0, gpus_per_drive: float = 0.0) -> Executor:
    """The executor the options name. ``ray``: ``"local"`` for a cluster of this
    process's own (``workers`` drives at once; default: every core), else the address
    of one to join. Without ``ray``: ``workers`` processes (default: this process)."""
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if cpus_per_drive <= 0 or gpus_per_drive < 0:
        raise ConfigError("--cpus-per-drive must be positive and --gpus-per-drive not "
                          f"negative, got {cpus_per_drive:g} and {gpus_per_drive:g}")
    if ray is not None:
        if ray == "local":
            return RayTasks(None, None if workers is None else workers * cpus_per_drive,
                            cpus_per_drive, gpus_per_drive)
        if workers is not None:
            raise ConfigError(f"--workers sizes a local Ray cluster; the cluster at {ray} "
                              "has its own resources (leave --workers out)")
        return RayTasks(ray, None, cpus_per_drive, gpus_per_drive)
    if cpus_per_drive != 1.0 or gpus_per_drive:
        raise ConfigError("--cpus-per-drive and --gpus-per-drive are Ray resources: give "
                          "--ray as well (the processes of --workers each use the "
                          "parameters file's threads and device)")
    return InProcess() if (workers or 1) == 1 else Processes(workers)
