"""tools/train_net.py and tools/test_net.py end to end on a tiny synthetic Kinetics-like set."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from videotl.config import ConfigError, load_config
from videotl.engine.hooks import HookBase
from videotl.engine.log_hooks import read_metrics
from videotl.engine.run import evaluate_checkpoint, train
from videotl.utils import checkpoint as ckpt

from data_helpers import tiny_run


@pytest.fixture(autouse=True)
def _in_repo(repo, monkeypatch):
    monkeypatch.chdir(repo)


def test_train_writes_every_output_and_tests(synthetic_kinetics, tmp_path):
    cfg = tiny_run(synthetic_kinetics, tmp_path / "run")
    metrics = train(cfg)
    out = tmp_path / "run"
    assert load_config(out / "config.yaml") == cfg
    steps, epochs = read_metrics(out / "metrics.jsonl")
    assert [r["epoch"] for r in epochs] == [1, 2, 3] and len(steps) == 3 * 4  # 20 videos / 5
    assert "val_top1" in epochs[1] and "val_top1" in epochs[2] and "val_top1" not in epochs[0]
    assert all(np.isfinite(r["loss"]) and r["lr"] > 0 for r in steps)
    assert (out / "training_curves.png").stat().st_size > 1000
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["epoch_0002.pth", "epoch_0003.pth"]
    written = json.loads((out / "test_metrics.json").read_text())
    assert written["num_videos"] == 10 and written["failed_videos"] == []
    for key in ("top1", "top5", "mean_class_accuracy"):
        assert 0.0 <= written[key] <= 1.0 and written[key] == pytest.approx(metrics[key])
    scores = np.load(out / "test_scores.npz")
    assert scores["scores"].shape == (10, 10) and len(scores["video_ids"]) == 10
    np.testing.assert_allclose(scores["scores"].sum(axis=1), 1.0, rtol=1e-5)
    per_class = (out / "per_class.csv").read_text().splitlines()
    assert len(per_class) == 11 and per_class[0].startswith("index,class,support,accuracy,")
    assert (out / "confusion.csv").is_file() and (out / "confusion.png").is_file()


def test_interrupted_run_resumes_to_the_same_result(synthetic_kinetics, tmp_path):
    class Interrupt(HookBase):
        def after_step(self):
            if self.trainer.iteration + 1 == 6:  # second step of epoch 2, after checkpoint 1
                raise KeyboardInterrupt

    # Clips are drawn in loader processes: the run must not depend on their random state.
    workers = "data.num_workers=1"
    full = train(tiny_run(synthetic_kinetics, tmp_path / "full", workers))
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_run(synthetic_kinetics, cut, workers), extra_hooks=[Interrupt()])
    assert [p.name for p in ckpt.list_checkpoints(cut)] == ["epoch_0001.pth"]
    assert [r["iteration"] for r in read_metrics(cut / "metrics.jsonl")[0]] == [1, 2, 3, 4, 5, 6]
    # A process killed while writing leaves its temporary files (videotl.files.atomic_write).
    stale = [cut / "checkpoints" / ".epoch_0002.pth.4242.tmp", cut / ".config.yaml.4242.tmp"]
    for path in stale:
        path.write_bytes(b"partial")
    saved_config = (cut / "config.yaml").read_text()
    with pytest.raises(ConfigError, match=r"cannot resume from .*epoch_0001.pth: the config "
                                          r"differs from the one it was trained with in "
                                          r"seed: 0 -> 1; solver.base_lr: 0.003 -> 0.01\. To "
                                          r"start afresh, choose a new output_dir or set "
                                          r"train.auto_resume=false"):
        train(tiny_run(synthetic_kinetics, cut, workers, "solver.base_lr=0.01", "seed=1"))
    assert (cut / "config.yaml").read_text() == saved_config and all(p.exists() for p in stale)
    torch.manual_seed(1234)  # another process would not share this one's random state
    # Keys that do not change the weights may differ.
    resumed = train(tiny_run(synthetic_kinetics, cut, workers, "train.log_period=3"))
    assert resumed == full
    assert not any(p.exists() for p in stale)
    a = ckpt.load_checkpoint(tmp_path / "full" / "checkpoints" / "epoch_0003.pth")["model"]
    b = ckpt.load_checkpoint(cut / "checkpoints" / "epoch_0003.pth")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # metrics.jsonl: the records up to the checkpoint, then the resumed run's, no duplicates.
    (full_steps, full_epochs), (cut_steps, cut_epochs) = (
        read_metrics(tmp_path / "full" / "metrics.jsonl"), read_metrics(cut / "metrics.jsonl"))
    assert [r["iteration"] for r in cut_steps] == list(range(1, 13))
    assert [r["loss"] for r in cut_steps] == [r["loss"] for r in full_steps]
    assert [(r["epoch"], r["loss"]) for r in cut_epochs] == [
        (r["epoch"], r["loss"]) for r in full_epochs] and len(cut_epochs) == 3


@pytest.mark.parametrize("channels_last", ["false", "true"])
def test_test_net_reproduces_the_final_test(synthetic_kinetics, tmp_path, channels_last):
    layout = f"train.channels_last={channels_last}"
    cfg = tiny_run(synthetic_kinetics, tmp_path / "run", "train.epochs=1", "train.eval_period=0",
                   layout)
    metrics = train(cfg)
    weights = ckpt.last_checkpoint(tmp_path / "run")
    # The checkpoint replaces the starting weights: model.pretrained is not read.
    unread = f"model.pretrained={tmp_path / 'absent.pth'}"
    again = evaluate_checkpoint(
        tiny_run(synthetic_kinetics, tmp_path / "again", "train.epochs=1", layout, unread),
        weights)
    assert again == metrics
    first, second = (np.load(tmp_path / run / "test_scores.npz") for run in ("run", "again"))
    assert np.array_equal(first["scores"], second["scores"])


def test_mismatched_classes_and_checkpoints_are_reported(synthetic_kinetics, tmp_path, repo):
    cfg = tiny_run(synthetic_kinetics, tmp_path / "run", "train.epochs=1", "train.eval_period=0",
                   "train.final_test=false")
    train(cfg)
    weights = ckpt.last_checkpoint(tmp_path / "run")
    command = [sys.executable, "tools/test_net.py", "--config",
               "configs/demo/synthetic_kinetics.yaml", "--checkpoint", str(weights),
               f"data.root={synthetic_kinetics}", "data.synthetic=false",
               f"output_dir={tmp_path / 'tested'}",
               "data.num_workers=0", "model.num_classes=7"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=repo)
    assert result.returncode == 2
    assert "model.num_classes=7" in result.stderr and "10 classes" in result.stderr
    command[-1] = "model.space_time_module=conv2d+conv1d"
    result = subprocess.run(command, capture_output=True, text=True, cwd=repo)
    assert result.returncode == 2 and "does not fit model" in result.stderr
    assert "Traceback" not in result.stderr
    result = subprocess.run([*command, "--debug"], capture_output=True, text=True, cwd=repo)
    assert result.returncode == 1 and "Traceback" in result.stderr  # --debug: the whole story
    assert "CheckpointError: checkpoint" in result.stderr


def test_test_net_writes_to_a_folder_of_its_own(synthetic_kinetics, tmp_path, repo):
    cfg = tiny_run(synthetic_kinetics, tmp_path / "run", "train.epochs=1", "train.eval_period=0",
                   "test.num_temporal_views=1")
    train(cfg)
    run = tmp_path / "run"
    before = {name: (run / name).read_bytes()
              for name in ("test_metrics.json", "test_scores.npz", "log.txt", "config.yaml")}
    command = [sys.executable, "tools/test_net.py", "--config",
               "configs/demo/synthetic_kinetics.yaml", "--checkpoint",
               str(run / "checkpoints" / "epoch_0001.pth"), f"data.root={synthetic_kinetics}",
               "data.synthetic=false",
               f"output_dir={run}", "data.num_workers=0", "data.num_frames=4",
               "data.frame_stride=8", "data.test_crop_size=32", "test.num_temporal_views=3"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=repo)
    assert result.returncode == 0, result.stderr[-2000:]
    assert {name: (run / name).read_bytes() for name in before} == before
    own = run / "test" / "epoch_0001"
    assert sorted(p.name for p in own.iterdir()) == [
        "config.yaml", "confusion.csv", "confusion.png", "log.txt", "per_class.csv",
        "test_metrics.json", "test_scores.npz"]
    assert load_config(own / "config.yaml").test.num_temporal_views == 3
    assert json.loads((own / "test_metrics.json").read_text())["num_videos"] == 10


# Skipped only where processes cannot fork (Windows): torchrun starts its workers and the
# gloo rendezvous with POSIX process semantics; on Linux and macOS this test always runs.
@pytest.mark.skipif(not hasattr(os, "fork"), reason="torchrun needs POSIX processes")
def test_two_processes_give_the_same_test_metrics_as_one(synthetic_kinetics, tmp_path, repo):
    cfg = tiny_run(synthetic_kinetics, tmp_path / "run", "train.epochs=1", "train.eval_period=0")
    single = train(cfg)
    weights = ckpt.last_checkpoint(tmp_path / "run")
    # Overrides may come before the options; --out names the results folder.
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "tools/test_net.py", f"data.root={synthetic_kinetics}",
               "data.synthetic=false",
               "--config", "configs/demo/synthetic_kinetics.yaml", "--checkpoint", str(weights),
               "--out", str(tmp_path / "two"),
               "data.num_workers=0", "data.num_frames=4", "data.frame_stride=8",
               "data.test_crop_size=32", "data.train_crop_size=32", "test.num_temporal_views=2",
               "test.batch_size=3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=repo, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    two = json.loads((tmp_path / "two" / "test_metrics.json").read_text())
    assert two["num_videos"] == single["num_videos"] == 10
    for key in ("top1", "top5", "mean_class_accuracy"):
        assert two[key] == pytest.approx(single[key], abs=1e-6)
    one_scores = np.load(tmp_path / "run" / "test_scores.npz")["scores"]
    two_scores = np.load(tmp_path / "two" / "test_scores.npz")["scores"]
    np.testing.assert_allclose(two_scores, one_scores, atol=1e-6)
    assert result.stdout.count('"num_videos"') == 1  # only the first process prints


def test_training_clips_depend_on_seed_epoch_and_item_only(synthetic_kinetics, tmp_path):
    from videotl.data import build_loader

    def epoch_batches(workers, epoch):
        cfg = tiny_run(synthetic_kinetics, tmp_path, f"data.num_workers={workers}")
        loader = build_loader(cfg, "train")
        loader.sampler.set_epoch(epoch)
        loader.dataset.set_epoch(epoch)
        return [batch["video"] for batch in loader]

    in_process = epoch_batches(0, 1)
    for a, b in zip(in_process, epoch_batches(2, 1)):
        assert torch.equal(a, b)
    assert not torch.equal(in_process[0], epoch_batches(0, 2)[0])


def test_channels_last_training(synthetic_kinetics, tmp_path):
    cfg = tiny_run(synthetic_kinetics, tmp_path / "run", "train.epochs=1", "train.eval_period=0",
                   "train.channels_last=true")
    metrics = train(cfg)
    assert metrics["num_videos"] == 10
    weights = ckpt.load_checkpoint(ckpt.last_checkpoint(tmp_path / "run"))["model"]
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())


def test_num_threads_sets_the_threads_of_training_and_testing(synthetic_kinetics, tmp_path):
    default = torch.get_num_threads()
    run = ["train.epochs=1", "train.eval_period=0", "train.final_test=false"]
    train(tiny_run(synthetic_kinetics, tmp_path / "run", *run, "num_threads=0"))
    assert torch.get_num_threads() == default  # 0: left as it was
    other = default + 1  # differs from the current count on any machine
    # Not a key that changes the weights: the finished run resumes with it changed.
    train(tiny_run(synthetic_kinetics, tmp_path / "run", *run, f"num_threads={other}"))
    assert torch.get_num_threads() == other
    torch.set_num_threads(default)
    evaluate_checkpoint(tiny_run(synthetic_kinetics, tmp_path / "test", f"num_threads={other}",
                                 "test.num_temporal_views=1"),
                        ckpt.last_checkpoint(tmp_path / "run"))
    assert torch.get_num_threads() == other


@pytest.mark.slow  # compiling takes minutes on 2 CPU cores
def test_compiled_training(synthetic_kinetics, tmp_path):
    cfg = tiny_run(synthetic_kinetics, tmp_path / "run", "train.epochs=1", "train.eval_period=0",
                   "train.compile=true")
    assert train(cfg)["num_videos"] == 10
    state = ckpt.load_checkpoint(ckpt.last_checkpoint(tmp_path / "run"))["model"]
    assert not any(key.startswith("_orig_mod") for key in state)
