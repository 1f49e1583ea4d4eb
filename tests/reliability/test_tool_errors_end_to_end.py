"""Every tool, given bad input, ends with one line naming what is wrong and an exit status (2:
bad input, 1: the run failed), never a traceback (docs/RELIABILITY.md)."""

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tool_helpers import run_script_here

from videotl.config import load_config
from videotl.engine.run import train
from videotl.utils import checkpoint as ckpt
from videotl.utils.logging import LogFileHandler

DEMO = "configs/demo/synthetic_kinetics.yaml"


def tool(repo: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "VIDEOTL_DEBUG"}
    return subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                          cwd=repo, env=env, timeout=300)


def one_line(result: subprocess.CompletedProcess, status: int, start: str) -> None:
    """stderr is one line ``error: <start>...``, followed only by indented details (e.g. the
    videos that failed); no traceback."""
    lines = result.stderr.rstrip("\n").splitlines()
    assert result.returncode == status, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert lines[0].startswith(f"error: {start}"), lines
    assert all(line.startswith("  ") for line in lines[1:]), lines


@pytest.mark.parametrize("script, args, start", [
    ("tools/train_net.py", ["--config", DEMO, "model.name=x2plus1d_n"],
     "model.name: unknown model 'x2plus1d_n'; did you mean 'x2plus1d_m'"),
    ("tools/train_net.py", ["data.dataset=kinetic", "--config", DEMO],
     "data.dataset: unknown dataset 'kinetic'; did you mean 'kinetics'"),
    ("tools/train_net.py", ["--config", "configs/none.yaml"], "config file not found"),
    ("tools/test_net.py", ["--config", DEMO, "--checkpoint", "missing.pth"],
     "checkpoint file not found: missing.pth"),
    ("tools/model_stats.py", ["--config", DEMO, "--variant", "fixed_grid_tokenz"],
     "--variant: unknown ablation variant 'fixed_grid_tokenz'"),
    ("tools/run_ablation.py", ["--config", DEMO, "--variants", "nope"],
     "unknown ablation variant 'nope'"),
    ("tools/visualize_attention.py", ["--config", DEMO, "--checkpoint", "w.pth", "--video",
                                      "v.mp4", "--out", "o", "--tokens", "a,b"],
     "--tokens expects comma-separated token numbers, got 'a,b'"),
    ("tools/train_net.py", ["--config", "configs/kinetics400/base.yaml",
                            "data.root=/nonexistent/kinetics"],
     "video list not found: /nonexistent/kinetics/train.csv"),
    ("data_prep/resize_videos.py", ["/nonexistent/in", "/tmp/out"], "video folder not found"),
    ("data_prep/prepare_kinetics.py", ["--train", "/nonexistent/train.csv", "--val",
                                       "/nonexistent/val.csv", "--videos", "/nonexistent",
                                       "--out", "/tmp/k"],
     "Kinetics annotation file not found: /nonexistent/train.csv"),
    ("data_prep/verify_videos.py", ["--config", DEMO, "--out", "/tmp/x.txt",
                                    "data.decoder=decrod"],
     "config key 'data.decoder' must be one of 'decord', 'pyav', 'torchcodec', got 'decrod'"),
    ("data_prep/make_synthetic.py", ["kinetics", "/tmp/s", "--short-side", "1"],
     "short_side must be at least 16 pixels, got 1"),
])
def test_bad_input_is_one_line_with_status_2(repo, tmp_path, script, args, start):
    if script.endswith("_net.py"):  # nothing written inside the repository
        args = [*args, f"output_dir={tmp_path}"]
    one_line(tool(repo, script, *args), 2, start)


# The error under test is CUDA's absence; on a machine with a GPU, device=cuda is valid.
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu(repo, tmp_path):
    result = tool(repo, "tools/train_net.py", "--config", DEMO, "device=cuda",
                  f"output_dir={tmp_path}")
    one_line(result, 2, "device='cuda': CUDA is not available on this machine")


def test_a_synthetic_set_of_other_sizes_is_refused_not_trained_on(repo, tmp_path,
                                                                  synthetic_kinetics):
    result = tool(repo, "tools/train_net.py", "--config", DEMO, f"data.root={synthetic_kinetics}",
                  f"output_dir={tmp_path}")
    one_line(result, 2, f"{synthetic_kinetics} holds a synthetic set made with train_videos=20, "
                        f"not 300 as asked (data.synthetic_train_videos): delete that folder")
    assert not (tmp_path / "checkpoints").exists()


def test_a_corrupt_checkpoint(repo, tmp_path):
    (tmp_path / "w.pth").write_bytes(b"PK\x03\x04 not a zip")
    result = tool(repo, "tools/test_net.py", "--config", DEMO, "--checkpoint",
                  str(tmp_path / "w.pth"), f"output_dir={tmp_path}")
    one_line(result, 2, f"cannot read checkpoint {tmp_path / 'w.pth'}")


def test_videos_failing_in_loader_workers_end_the_run_with_one_line(repo, tmp_path,
                                                                    synthetic_kinetics):
    root = tmp_path / "data"
    shutil.copytree(synthetic_kinetics, root)
    for video in (root / "train").rglob("*.mp4"):
        video.write_bytes(b"\x00" * 100)  # every training video broken
    result = tool(repo, "tools/train_net.py", "--config", DEMO, f"data.root={root}",
                  "data.synthetic=false",
                  f"output_dir={tmp_path / 'run'}", "data.num_workers=1", "data.num_frames=4",
                  "data.train_crop_size=32", "data.train_jitter_scales=[32,40]",
                  "train.batch_size=2", "data.video_retries=1", "data.clip_retries=0")
    one_line(result, 1, "kinetics train: 1 of 20 videos failed to load, more than "
                        "data.max_failure_fraction=0.01")
    assert f"  {root / 'train'}" in result.stderr


def test_a_full_disk_names_the_file_and_keeps_the_previous_one(repo, tmp_path, monkeypatch,
                                                               capsys, synthetic_kinetics):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("previous\n")

    def full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    monkeypatch.chdir(repo)
    status = run_script_here(repo / "tools/train_net.py", [
        "--config", DEMO, f"data.root={synthetic_kinetics}", "data.synthetic=false",
        f"output_dir={run}"], monkeypatch)
    assert status == 1
    assert capsys.readouterr().err == f"error: {run / 'config.yaml'}: no space left on device\n"
    assert (run / "config.yaml").read_text() == "previous\n"
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "log.txt"]


def test_a_read_only_output_folder_is_named(repo, tmp_path, monkeypatch, capsys,
                                            synthetic_kinetics):
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    monkeypatch.chdir(repo)
    status = run_script_here(repo / "tools/train_net.py", [
        "--config", DEMO, f"data.root={synthetic_kinetics}", "data.synthetic=false",
        "output_dir=/mnt/ro/run"],
        monkeypatch)
    assert status == 1
    assert capsys.readouterr().err == "error: /mnt/ro/run: read-only file system\n"


def test_a_log_file_that_cannot_be_written_says_so_once(tmp_path, monkeypatch, capsys,
                                                        synthetic_kinetics, repo):
    monkeypatch.chdir(repo)
    cfg = load_config(DEMO, [f"data.root={synthetic_kinetics}", "data.synthetic=false",
                             f"output_dir={tmp_path}",
                             "train.max_iters=1", "train.final_test=false", "data.num_workers=0",
                             "train.eval_period=0", "data.num_frames=4",
                             "data.train_crop_size=32", "data.train_jitter_scales=[32,40]",
                             "train.batch_size=2"])
    calls = []

    def full(self, record):  # what FileHandler.emit does when the disk is full
        calls.append(record)
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            self.handleError(record)

    monkeypatch.setattr(LogFileHandler, "emit", full)
    train(cfg)
    err = capsys.readouterr().err
    assert err.count("warning: cannot write the log") == 1 and "Traceback" not in err
    assert f"{tmp_path / 'log.txt'} (No space left on device)" in err
    assert len(calls) == 1 and ckpt.last_checkpoint(tmp_path) is not None
