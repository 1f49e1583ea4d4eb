"""How tools end on errors: one line and an exit status for what a user can act on (also when a
DataLoader worker raised it, and for full or read-only disks), a traceback for bugs and with
--debug."""

import errno

import pytest
import torch

from videotl.config import ConfigError
from videotl.data.dataset import DataLoadingError
from videotl.data.video_reader import VideoDecodeError
from videotl.errors import InputError, RunError
from videotl.registry import RegistryError
from videotl.utils import tool_errors
from videotl.utils.checkpoint import CheckpointError
from videotl.utils.tool_errors import describe_error, run_tool


class Raises(torch.utils.data.Dataset):
    def __init__(self, error):
        self.error = error

    def __len__(self):
        return 2

    def __getitem__(self, index):
        raise self.error


def worker_error(error: Exception) -> BaseException:
    """What the main process receives when a loader worker raises ``error``."""
    loader = torch.utils.data.DataLoader(Raises(error), num_workers=1)
    with pytest.raises(Exception) as caught:
        next(iter(loader))
    return caught.value


def test_error_kinds_have_their_exit_status():
    assert all(issubclass(kind, InputError) for kind in (ConfigError, RegistryError,
                                                         CheckpointError))
    assert all(issubclass(kind, RunError) for kind in (DataLoadingError, VideoDecodeError))
    assert describe_error(ConfigError("model.name: bad")) == (2, "model.name: bad")
    assert describe_error(DataLoadingError("7 of 9 videos failed")) == (1, "7 of 9 videos failed")
    assert describe_error(ValueError("a bug")) is None and describe_error(KeyError("x")) is None


@pytest.mark.parametrize("error, expected", [
    (DataLoadingError("3 of 4 videos failed to load:\n  a.mp4: broken"),
     (1, "3 of 4 videos failed to load:\n  a.mp4: broken")),
    # Its constructor takes two arguments: PyTorch re-raises it as a RuntimeError.
    (VideoDecodeError("/data/x y.mp4", "no video stream"),
     (1, "cannot decode video /data/x y.mp4: no video stream")),
])
def test_errors_raised_in_a_loader_worker_keep_their_message_and_status(error, expected):
    received = worker_error(error)
    assert "Traceback" in str(received)  # what PyTorch hands over
    assert describe_error(received) == expected


def test_bugs_in_a_loader_worker_stay_bugs():
    assert describe_error(worker_error(ZeroDivisionError("division by zero"))) is None


@pytest.mark.parametrize("error, expected", [
    (OSError(errno.ENOSPC, "No space left on device", "/runs/a/config.yaml"),
     (1, "/runs/a/config.yaml: no space left on device")),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/out"),
     (1, "/mnt/ro/out: read-only file system")),
    (PermissionError(errno.EACCES, "Permission denied", "/root/x"),
     (1, "/root/x: permission denied")),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "lists/train.csv"),
     (2, "lists/train.csv: no such file or directory")),
    (FileNotFoundError("video folder not found: /data/in"),
     (2, "video folder not found: /data/in")),
    (FileExistsError("/data/s already holds train.csv; choose an empty folder"),
     (2, "/data/s already holds train.csv; choose an empty folder")),
])
def test_disk_errors_name_the_path_and_the_reason(error, expected):
    assert describe_error(error) == expected


def run(main, monkeypatch, argv=(), env=None):
    monkeypatch.setattr("sys.argv", ["tool", *argv])
    monkeypatch.delenv(tool_errors.DEBUG_ENV, raising=False)
    if env is not None:
        monkeypatch.setenv(tool_errors.DEBUG_ENV, env)
    with pytest.raises(SystemExit) as exited:
        run_tool(main)
    return exited.value.code


def fail(error):
    def main():
        raise error
    return main


def test_run_tool_prints_one_line_and_exits_with_the_status(monkeypatch, capsys):
    assert run(fail(ConfigError("data.root: not found")), monkeypatch) == 2
    assert capsys.readouterr().err == "error: data.root: not found\n"
    assert run(fail(OSError(errno.ENOSPC, "No space left", "out/log.txt")), monkeypatch) == 1
    assert capsys.readouterr().err == "error: out/log.txt: no space left on device\n"
    assert run(lambda: None, monkeypatch) == 0 and run(lambda: 3, monkeypatch) == 3


def test_run_tool_ends_an_interrupt_with_one_line(monkeypatch, capsys):
    assert run(fail(KeyboardInterrupt()), monkeypatch) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_bugs_and_debug_runs_keep_the_traceback(monkeypatch):
    with pytest.raises(ZeroDivisionError):
        run(fail(ZeroDivisionError()), monkeypatch)
    with pytest.raises(ConfigError):
        run(fail(ConfigError("x")), monkeypatch, argv=["--debug"])
    with pytest.raises(ConfigError):
        run(fail(ConfigError("x")), monkeypatch, env="1")
    assert run(fail(ConfigError("x")), monkeypatch, env="0") == 2
