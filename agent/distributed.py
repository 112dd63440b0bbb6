"""Where the heavy jobs run (a study's training runs, expert plans, a sweep's plans): Ray tasks.

`Executor(jobs)` starts a local Ray in this process (`jobs` CPUs, no dashboard) and stops it
when done; `Executor(jobs, address)` uses the Ray cluster at `address` (`ray start --head` plus
`ray start --address ...` on other machines), whose CPUs decide how many tasks run at once.
With one job and no address nothing is distributed: the calls run here, one after another,
and Ray is not even imported.

A task whose worker process dies (killed, out of memory, its node lost) is retried by Ray
(`RETRIES` times); the jobs are written so that a retry continues from what the killed one
saved (a training run from its last checkpoint, expert data from its finished plans). A task
runs in the driver's working folder, so relative paths mean the same there; on a cluster of
several machines every input and `--out` must be on a filesystem all nodes see at the same path.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from agent.errors import UsageError

if TYPE_CHECKING:
    from ray import ObjectRef

R = TypeVar("R")

RETRIES = 3
"""Retries of a task whose worker died (Ray's default for tasks): a run resumes from its checkpoint."""
TASK = "linetwin_task"
"""The process title of a Ray worker running one of our tasks is `ray::linetwin_task`."""


def linetwin_task(
    cwd: str, setup: Callable[[], None] | None, fn: Callable[..., R], args: tuple[Any, ...]
) -> R:
    """One call in a Ray worker: in the driver's folder, after the job's per-process `setup`."""
    os.chdir(cwd)
    if setup is not None:
        setup()
    return fn(*args)


@dataclass
class Task(Generic[R]):
    """A submitted call: a Ray object reference, or the value of a call made here."""

    ref: ObjectRef[R] | None = None
    value: R | None = None
    done: bool = False


class Executor(Generic[R]):
    """Runs calls of one function as Ray tasks (or here, for one job and no cluster); a context
    manager that connects on entry and disconnects on exit."""

    def __init__(
        self,
        jobs: int,
        address: str | None = None,
        setup: Callable[[], None] | None = None,
        cpus: float = 1.0,
        inline: bool = True,
    ) -> None:
        """`jobs`: tasks at once on the local Ray (1 and no `address`: here); `address`: a Ray
        cluster (`HOST:PORT`, `auto`, `ray://HOST:PORT`); `setup`: called once per task in the
        worker (e.g. torch's threads); `cpus`: Ray CPUs each task asks for; `inline`: one job
        and no cluster run here (False: on a local Ray of one CPU all the same)."""
        if jobs < 1:
            raise UsageError("must be at least 1", "jobs", jobs)
        self.jobs = jobs
        self.address = address
        self.setup = setup
        self.cpus = cpus
        self.inline = inline
        self._started = False

    @property
    def here(self) -> bool:
        """The calls run in this process (one job, no cluster)."""
        return self.inline and self.jobs == 1 and self.address is None

    def where(self) -> str:
        """'here', 'a local Ray (2 CPUs)', 'the Ray cluster at HOST:PORT (4 CPUs)'."""
        if self.here:
            return "here"
        cpus = f"{self.slots()} task{'s' if self.slots() != 1 else ''} at once"
        return f"the Ray cluster at {self.address} ({cpus})" if self.address else f"a local Ray ({cpus})"

    def __enter__(self) -> Executor[R]:
        if not self.here:
            self._connect()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def _connect(self) -> None:
        import ray

        if ray.is_initialized():  # a caller's own Ray: use it, leave it running
            return
        quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
        if self.address is None:
            ray.init(address="local", num_cpus=self.jobs, include_dashboard=False, **quiet)
        else:
            _reachable(self.address)
            try:
                ray.init(address=self.address, **quiet)
            except (ConnectionError, RuntimeError, ValueError) as exc:  # ray.exceptions.* derive from these
                said = " ".join(str(exc).split())[:200] or type(exc).__name__
                raise UsageError(
                    f"no Ray cluster reached there ({said})", "ray_address", self.address
                ) from None
        self._started = True

    def slots(self) -> int:
        """How many tasks run at once: `jobs` here and on the local Ray, the cluster's CPUs over
        the CPUs a task asks for on a cluster."""
        if self.address is None or not self._started:
            return self.jobs
        import ray

        cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
        return max(1, int(cpus // self.cpus))

    def submit(self, fn: Callable[..., R], *args: Any) -> Task[R]:
        """`fn(*args)` as a task (here: called now); its result by `result`."""
        if self.here:
            return Task(value=fn(*args), done=True)
        import ray

        task: Any = ray.remote(linetwin_task).options(num_cpus=self.cpus, max_retries=RETRIES)
        return Task(ref=task.remote(os.getcwd(), self.setup, fn, args))

    def result(self, task: Task[R]) -> R:
        """A submitted task's result (waiting for it), or its own exception."""
        if task.done:
            return task.value  # type: ignore[return-value]
        assert task.ref is not None
        return _get(task.ref)

    def run(
        self, fn: Callable[..., R], calls: Sequence[tuple[Any, ...]], tick_s: float | None = None
    ) -> Iterator[tuple[int, R] | None]:
        """Every call `fn(*args)`; yields `(index, result)` as each finishes and, with `tick_s`,
        None after every `tick_s` seconds without one (for a progress line). An exception in a
        call is raised here as itself; the calls not finished yet are cancelled."""
        if self.here:
            for i, args in enumerate(calls):
                yield i, fn(*args)
            return
        import ray

        task: Any = ray.remote(linetwin_task).options(num_cpus=self.cpus, max_retries=RETRIES)
        cwd = os.getcwd()
        refs = {task.remote(cwd, self.setup, fn, args): i for i, args in enumerate(calls)}
        pending: list[ObjectRef[R]] = list(refs)
        next_tick = None if tick_s is None else time.monotonic() + tick_s
        try:
            while pending:
                timeout = None if next_tick is None else max(0.0, next_tick - time.monotonic())
                done, pending = ray.wait(pending, num_returns=1, timeout=timeout)
                for ref in done:
                    yield refs[ref], _get(ref)
                if next_tick is not None and time.monotonic() >= next_tick:
                    if pending:
                        yield None
                    next_tick = time.monotonic() + (tick_s or 0.0)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)


CONNECT_TIMEOUT_S = 5.0
"""Seconds to reach a cluster's HOST:PORT and hear it answer as Ray before saying it is not
there (Ray itself retries for minutes, or for ever when something else listens there)."""
ANSWER_TIMEOUT_S = 3.0
"""Of which seconds for a reached HOST:PORT to answer Ray's first request (a head: milliseconds)."""
TOKEN = "wants a token"
"""How a refusal for want of a token begins (Ray 2.60's `ray start` turns token authentication on)."""


def _reachable(address: str) -> None:
    """A `HOST:PORT`, `ray://HOST:PORT` or `auto` where a Ray head answers within
    CONNECT_TIMEOUT_S; UsageError naming `ray_address` otherwise. The head is asked over gRPC
    what Ray asks first (the GCS its cluster id, a Ray Client server a ping), on the address Ray
    will use (`auto` found as Ray finds it, 127.0.0.1 as this machine's address)."""
    from ray._private.services import canonicalize_bootstrap_address

    client = address.startswith("ray://")
    if address == "auto":
        try:
            target = canonicalize_bootstrap_address(address) or address
        except ConnectionError as exc:
            raise UsageError(f"no Ray cluster found ({exc})", "ray_address", address) from None
    else:
        target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise UsageError("give HOST:PORT of a Ray cluster's head (or auto)", "ray_address", address)
    if not client and address != "auto":
        try:
            target = canonicalize_bootstrap_address(target) or target
        except ValueError as exc:
            raise UsageError(f"no Ray cluster address ({exc})", "ray_address", address) from None
        host, _, port = target.rpartition(":")
    at = " there" if target == address.removeprefix("ray://") else f" at {target}"
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"no Ray cluster reached{at} ({reason})", "ray_address", address) from None
    reason = _not_ray(target, client, max(1.0, min(ANSWER_TIMEOUT_S, deadline - time.monotonic())))
    if reason.startswith(TOKEN):
        raise UsageError(f"the Ray cluster{at} {reason}", "ray_address", address)
    if reason:
        raise UsageError(f"no Ray cluster{at} ({reason})", "ray_address", address)


def _not_ray(target: str, client: bool, timeout_s: float) -> str:
    """Why the server at `target` is not a Ray head ('' when it answers as one): Ray's first
    request (GCS: GetClusterId, Ray Client: a ping) over Ray's own gRPC channel (TLS and token
    as Ray has them), with a deadline."""
    import grpc  # type: ignore[import-untyped]
    from ray._private.grpc_utils import init_grpc_channel
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc, ray_client_pb2, ray_client_pb2_grpc

    with init_grpc_channel(target) as channel:
        try:
            if client:
                kind: Any = ray_client_pb2.ClusterInfoType  # type: ignore[attr-defined]
                ping: Any = ray_client_pb2.ClusterInfoRequest(type=kind.PING)  # type: ignore[attr-defined]
                driver: Any = ray_client_pb2_grpc.RayletDriverStub(channel)  # type: ignore[no-untyped-call]
                driver.ClusterInfo(ping, timeout=timeout_s)
            else:
                ask: Any = gcs_service_pb2.GetClusterIdRequest  # type: ignore[attr-defined]
                gcs: Any = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)  # type: ignore[no-untyped-call]
                gcs.GetClusterId(ask(), timeout=timeout_s)
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return f"something listens but gives no gRPC answer within {timeout_s:g} s"
            if code == grpc.StatusCode.UNAVAILABLE:
                return "something listens but does not speak gRPC"
            if code == grpc.StatusCode.UNIMPLEMENTED:
                return "a server answers, but not as a Ray head"
            if code == grpc.StatusCode.UNAUTHENTICATED:  # Ray 2.60's `ray start` turns tokens on
                if os.environ.get("RAY_AUTH_MODE") != "token":
                    return f"{TOKEN}: set RAY_AUTH_MODE=token (docs/training.md, On Ray)"
                return f"{TOKEN} other than this machine's (RAY_AUTH_MODE=token)"
            # any other answer is Ray's: ray.init says what it wants
    return ""


def _get(ref: ObjectRef[R]) -> R:
    """A task's result, or its own exception (not Ray's wrapper with the worker's traceback)."""
    import ray
    from ray.exceptions import RayTaskError

    try:
        return ray.get(ref)
    except RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, BaseException):
            raise cause from None
        raise
