"""The training loop, its hooks, the schedule and checkpoints, on in-memory data."""

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from fakes import PatternClips, TinyNet
from videotl.config import load_config
from videotl.engine.hooks import CheckpointHook, HookBase, LRScheduleHook
from videotl.engine.losses import build_loss
from videotl.engine.optim import build_optimizer, learning_rate, parameter_groups
from videotl.engine.precision import MixedPrecision
from videotl.engine.trainer import NonFiniteLossError, Trainer
from videotl.utils import checkpoint as ckpt

CPU = torch.device("cpu")


def make_trainer(epochs=3, hooks=(), max_iters=None, lr=0.2, dataset=None, seed=0):
    torch.manual_seed(seed)
    dataset = dataset or PatternClips(num_videos=24)
    loader = torch.utils.data.DataLoader(dataset, batch_size=6, shuffle=True)
    model = TinyNet(dataset.num_classes)
    cfg = load_config(None, [f"solver.base_lr={lr}", "solver.weight_decay=0"])
    optimizer = build_optimizer(model, cfg.solver)
    schedule = LRScheduleHook(lr, 2, epochs * len(loader), 0.1, 0.0)
    return Trainer(model, optimizer, loader, build_loss(dataset.multilabel), MixedPrecision(
        "fp32", CPU), CPU, epochs, max_iters, [schedule, *hooks])


class Recorder(HookBase):
    def __init__(self):
        self.calls = []
        self.losses = []

    def before_train(self):
        self.calls.append("before_train")

    def before_epoch(self):
        self.calls.append("before_epoch")

    def after_step(self):
        self.losses.append(self.trainer.storage["loss"])

    def after_epoch(self):
        self.calls.append("after_epoch")

    def after_train(self):
        self.calls.append("after_train")


def test_learning_rate_schedule():
    assert learning_rate(0, 100, 10, 1.0, 0.1) == pytest.approx(0.1)
    assert learning_rate(5, 100, 10, 1.0, 0.1) == pytest.approx(0.55)
    assert learning_rate(10, 100, 10, 1.0, 0.1) == pytest.approx(1.0)
    assert learning_rate(55, 100, 10, 1.0, 0.1) == pytest.approx(0.5)
    assert learning_rate(100, 100, 10, 1.0, 0.1, end_lr=0.01) == pytest.approx(0.01)
    middle = 10 + 90 / 3
    expected = 0.5 * (1 + math.cos(math.pi / 3))
    assert learning_rate(middle, 100, 10, 1.0) == pytest.approx(expected)


def test_no_weight_decay_on_norms_and_biases():
    model = TinyNet()
    decay, no_decay = parameter_groups(model, 0.1)
    assert {id(p) for p in decay["params"]} == {id(model.conv.weight), id(model.fc.weight)}
    assert no_decay["weight_decay"] == 0 and len(no_decay["params"]) == 4
    cfg = load_config(None, ["solver.optimizer=adamw", "solver.weight_decay=0.05"])
    optimizer = build_optimizer(model, cfg.solver)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.05, 0.0]


def test_training_learns_and_calls_hooks_in_order():
    recorder = Recorder()
    trainer = make_trainer(epochs=4, hooks=[recorder])
    trainer.train()
    assert recorder.calls == ["before_train"] + ["before_epoch", "after_epoch"] * 4 + [
        "after_train"]
    assert trainer.iteration == 16 and len(recorder.losses) == 16
    assert sum(recorder.losses[-4:]) < 0.5 * sum(recorder.losses[:4])
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(
        learning_rate(15, 16, 2, 0.2, 0.1))


def test_max_iters_stops_mid_epoch():
    trainer = make_trainer(epochs=5, max_iters=6)
    trainer.train()
    assert trainer.iteration == 6 and trainer.epoch == 1


def test_non_finite_loss_names_iteration_and_last_finite_loss():
    class Poison(HookBase):
        def before_step(self):
            if self.trainer.iteration == 3:
                with torch.no_grad():
                    self.trainer.model.fc.weight.fill_(float("nan"))

    trainer = make_trainer(hooks=[Poison()])
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at iteration 3 \(epoch 1\); "
                                                 r"the last finite loss was .* at iteration 2"):
        trainer.train()


def test_resumed_training_equals_uninterrupted_training(tmp_path):
    class StopAfterEpoch(HookBase):
        def after_epoch(self):
            if self.trainer.epoch + 1 == 2:
                raise KeyboardInterrupt

    def checkpointer(folder):
        return CheckpointHook(str(folder), period=1, keep=5, is_main=True)

    full = make_trainer(epochs=4, hooks=[checkpointer(tmp_path / "a")])
    full.train()

    interrupted = make_trainer(epochs=4, hooks=[checkpointer(tmp_path / "b"), StopAfterEpoch()])
    with pytest.raises(KeyboardInterrupt):
        interrupted.train()
    torch.manual_seed(123)  # a fresh process would start from another random state
    resumed = make_trainer(epochs=4, hooks=[checkpointer(tmp_path / "b")], seed=7)
    resumed.load_state_dict(ckpt.load_checkpoint(ckpt.last_checkpoint(tmp_path / "b")))
    assert (resumed.start_epoch, resumed.iteration) == (2, 8)
    resumed.train()
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert Path(ckpt.last_checkpoint(tmp_path / "b")).name == "epoch_0004.pth"


def test_multilabel_loss_and_label_smoothing():
    logits = torch.tensor([[2.0, -1.0]])
    targets = torch.tensor([[1.0, 0.0]])
    smoothed = build_loss(True, 0.2)(logits, targets)
    expected = nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([[0.9, 0.1]]))
    assert smoothed == pytest.approx(expected.item())
    single = build_loss(False, 0.2)(logits, torch.tensor([0]))
    assert single == pytest.approx(nn.functional.cross_entropy(
        logits, torch.tensor([0]), label_smoothing=0.2).item())


def test_precision_falls_back_to_fp32_on_cpu():
    precision = MixedPrecision("bf16", CPU)
    assert precision.precision == "fp32"
    with precision.autocast():
        assert torch.ones(2, 2).mm(torch.ones(2, 2)).dtype == torch.float32
