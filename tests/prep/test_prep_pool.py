"""The worker pool of data_prep: per-task time limits, crashes, errors, progress lines."""

import io
import os
import signal
import subprocess
import time

import pytest

from videotl.prep.pool import run_tasks
from videotl.prep.progress import Progress


def work(task):
    kind, value = task
    if kind == "hang":
        child = subprocess.Popen(["sleep", "60"])  # a program the task started
        with open(value, "w") as stream:
            stream.write(str(child.pid))
        time.sleep(60)
    if kind == "crash":
        os.kill(os.getpid(), signal.SIGKILL)  # as a decoder crash or the OOM killer would
    if kind == "fail":
        raise ValueError(f"bad input {value}")
    return value * 2


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stream:  # a zombie is dead too
        return stream.read().split(") ")[1][0] != "Z"


def test_time_limit_crash_and_error_cost_one_task_each(tmp_path):
    pid_file = tmp_path / "child.pid"
    tasks = [("ok", 1), ("hang", str(pid_file)), ("ok", 2), ("crash", 0), ("fail", 7),
             ("ok", 3), ("ok", 4)]
    start = time.monotonic()
    results = list(run_tasks(work, tasks, jobs=2, timeout=3.0, progress=False))
    assert time.monotonic() - start < 30
    by_task = {result.task: result for result in results}
    assert len(results) == len(tasks) == len(by_task)
    assert [by_task[("ok", n)].value for n in (1, 2, 3, 4)] == [2, 4, 6, 8]
    assert by_task[("hang", str(pid_file))].error == "timed out after 3 s"
    assert by_task[("crash", 0)].error == "the worker process crashed (SIGKILL)"
    assert by_task[("fail", 7)].error == "bad input 7"
    assert not any(by_task[("ok", n)].error for n in (1, 2, 3, 4))
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child), "the program started by the timed-out task survived"


def test_no_tasks_and_bad_timeout():
    assert list(run_tasks(work, [], jobs=2)) == []
    with pytest.raises(ValueError, match="timeout must be positive"):
        list(run_tasks(work, [("ok", 1)], timeout=0))


def test_progress_lines_when_not_a_terminal():
    stream = io.StringIO()
    with Progress(4, "re-encoding", stream=stream, interval=0.0) as progress:
        progress.update()
        progress.update(failed=True)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("re-encoding: 1/4 (25.0 %), 0 failed,")
    assert lines[1].startswith("re-encoding: 2/4 (50.0 %), 1 failed,") and "ETA" in lines[1]
