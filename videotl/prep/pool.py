"""Running one function over many files in worker processes, each call with a time limit.

A decoder can hang (a damaged file, a library looping in native code) or crash the process
(a segmentation fault). ``run_tasks`` keeps either from stopping the run: every worker process
runs one task at a time; a task that passes its time limit has its worker killed (with the
worker's children, e.g. an ``ffmpeg`` it started) and is reported as timed out, a task whose
worker dies is reported with the exit signal, and a fresh worker takes over. Results come back
in completion order; a progress bar with an ETA follows them.

Workers are forked where the platform allows it (fast start, and functions defined at run time
work); each worker leads its own process group so that a kill reaches what it started, and
Ctrl-C in a terminal reaches only the parent, which then stops every worker. On Linux a worker
also dies with the parent (``PR_SET_PDEATHSIG``), so a killed run leaves no worker writing on.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterator, Sequence

from videotl.prep.progress import Progress


@dataclass(frozen=True)
class TaskResult:
    """The outcome of one task.

    Attributes:
        task: the task as given.
        value: what the function returned (None when it failed).
        error: why it failed (None on success): the exception, a time-out or a crash.
        seconds: wall time of the call.
    """

    task: Any
    value: Any
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.error is None


def default_jobs() -> int:
    """Processes to use by default: the CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_tasks(
    function: Callable[[Any], Any],
    tasks: Sequence[Any],
    jobs: int | None = None,
    timeout: float | None = None,
    description: str = "",
    progress: bool = True,
) -> Iterator[TaskResult]:
    """Yields ``TaskResult`` for ``function(task)`` over ``tasks``, ``jobs`` calls at a time.

    Args:
        function: called in a worker process; it and the tasks must be picklable where the
            workers are spawned rather than forked.
        jobs: worker processes (default: the CPU cores available; never more than tasks).
        timeout: seconds one call may take before its worker is killed (None: no limit).
        description: label of the progress bar.
        progress: show progress (a bar on a terminal, a line every 30 s otherwise).
    """
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be positive seconds, got {timeout}")
    workers = max(1, min(jobs or default_jobs(), len(tasks)))
    if not tasks:
        return
    with Progress(len(tasks), description, enabled=progress) as bar, \
            _Workers(function, workers) as pool:
        for result in pool.run(list(tasks), timeout):
            bar.update(failed=not result.ok)
            yield result


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


class _Workers:
    """Worker processes, each fed one task at a time over its own pipe."""

    def __init__(self, function: Callable[[Any], Any], count: int) -> None:
        self.function = function
        self.count = count
        self.idle: list[_Worker] = []
        self.busy: dict[Connection, tuple[_Worker, int, float]] = {}

    def __enter__(self) -> "_Workers":
        self.idle = [_Worker.start(self.function) for _ in range(self.count)]
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self.idle + [worker for worker, _, _ in self.busy.values()]:
            worker.stop(kill=exc[0] is not None)
        self.idle, self.busy = [], {}

    def run(self, tasks: list[Any], timeout: float | None) -> Iterator[TaskResult]:
        pending = list(reversed(range(len(tasks))))
        while pending or self.busy:
            while pending and self.idle:
                worker, index = self.idle.pop(), pending.pop()
                if not worker.send(tasks[index]):  # it died while idle: replace it
                    worker.stop(kill=True)
                    self.idle.append(_Worker.start(self.function))
                    pending.append(index)
                    continue
                self.busy[worker.connection] = (worker, index, time.monotonic())
            for connection in wait(list(self.busy), self._wait_seconds(timeout)):
                yield self._collect(connection, tasks)
            yield from self._expire(tasks, timeout)

    def _wait_seconds(self, timeout: float | None) -> float | None:
        if timeout is None:
            return None
        oldest = min(start for _, _, start in self.busy.values())
        return max(0.0, oldest + timeout - time.monotonic())

    def _collect(self, connection: Connection, tasks: list[Any]) -> TaskResult:
        worker, index, start = self.busy.pop(connection)
        seconds = time.monotonic() - start
        try:
            value, error = connection.recv()
        except (EOFError, OSError):
            code = worker.stop(kill=True)
            self.idle.append(_Worker.start(self.function))
            return TaskResult(tasks[index], None, _crash_reason(code), seconds)
        self.idle.append(worker)
        return TaskResult(tasks[index], value, error, seconds)

    def _expire(self, tasks: list[Any], timeout: float | None) -> Iterator[TaskResult]:
        if timeout is None:
            return
        now = time.monotonic()
        for connection, (worker, index, start) in list(self.busy.items()):
            if now - start >= timeout:
                del self.busy[connection]
                worker.stop(kill=True)
                self.idle.append(_Worker.start(self.function))
                yield TaskResult(tasks[index], None, f"timed out after {timeout:g} s",
                                 now - start)


def _crash_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the worker process crashed ({name})"
    return f"the worker process exited unexpectedly (exit code {code})"


@dataclass
class _Worker:
    process: Any
    connection: Connection

    @classmethod
    def start(cls, function: Callable[[Any], Any]) -> "_Worker":
        parent_end, child_end = _context().Pipe()
        process = _context().Process(target=_serve, args=(function, child_end, os.getpid()),
                                     daemon=True)
        process.start()
        child_end.close()
        return cls(process, parent_end)

    def send(self, task: Any) -> bool:
        """Hands ``task`` to the worker; False if the worker is gone."""
        try:
            self.connection.send(task)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            return False
        return True

    def stop(self, kill: bool) -> int | None:
        """Ends the worker (and, when killing, everything in its process group)."""
        if kill and self.process.is_alive():
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError, AttributeError):
                self.process.kill()
        else:
            try:
                self.connection.send(None)
            except (BrokenPipeError, OSError):
                pass
        self.process.join(timeout=None if kill else 10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()
        return self.process.exitcode


def _serve(function: Callable[[Any], Any], connection: Connection, parent: int) -> None:
    """Worker loop: run ``function`` on each task received until ``None`` or a closed pipe."""
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)  # its own process group: a kill reaches the programs it starts
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    _die_with_parent(parent)
    while True:
        try:
            task = connection.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if task is None:
            return
        try:
            reply = (function(task), None)
        except Exception as error:  # reported to the parent, never raised here
            reply = (None, _describe(error))
        try:
            connection.send(reply)
        except (BrokenPipeError, OSError):  # the parent is gone
            return
        except Exception as error:  # the result cannot be pickled
            connection.send((None, f"the result cannot be sent back: {_describe(error)}"))
        sys.stdout.flush()


def _die_with_parent(parent: int) -> None:
    """Asks Linux to kill this process when its parent dies (a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _describe(error: Exception) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, (OSError, ValueError, RuntimeError)) and text:
        return text
    where = traceback.extract_tb(error.__traceback__)[-1:]
    place = f" at {where[0].filename}:{where[0].lineno}" if where else ""
    return f"{type(error).__name__}: {text}{place}"
