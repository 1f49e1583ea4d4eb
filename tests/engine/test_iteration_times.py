"""Data-loading time, iteration time and time left (ETA) of training, on a fake clock: each batch
arrives after a set number of seconds and each step takes a set number of seconds, so every
figure is known exactly (binary fractions, no rounding)."""

import logging
import math

import pytest
import torch

from fakes import PatternClips, TinyNet
from videotl.engine import log_hooks
from videotl.engine.hooks import HookBase, StepTimerHook
from videotl.engine.log_hooks import (
    JsonlWriterHook,
    MetricsHook,
    ProgressHook,
    RunningMean,
    format_eta,
    read_metrics,
    step_text,
)
from videotl.engine.losses import build_loss
from videotl.engine.precision import MixedPrecision
from videotl.engine.trainer import Trainer

CPU = torch.device("cpu")
BATCHES = 3  # per epoch
DATA = [0.5, 0.25, 0.125, 1.0, 0.25, 0.5]  # seconds each batch keeps the loop waiting
STEP = [2.0, 1.5, 1.0, 1.25, 0.75, 1.0]  # seconds of each step


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TimedLoader:
    """``BATCHES`` batches per epoch; the n-th batch of the run arrives ``DATA[n]`` seconds
    after it is asked for."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.batches = list(torch.utils.data.DataLoader(PatternClips(num_videos=4 * BATCHES),
                                                        batch_size=4))
        self.served = 0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            self.clock.now += DATA[self.served]
            self.served += 1
            yield batch


class Work(HookBase):
    """Makes the n-th step last ``STEP[n]`` seconds (it runs inside the step timer's window)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def before_step(self) -> None:
        self.clock.now += STEP[self.trainer.iteration]


class Records(HookBase):
    def __init__(self) -> None:
        self.steps: list[tuple[dict, float]] = []
        self.epochs: list[dict] = []

    def after_step(self) -> None:
        storage = self.trainer.storage
        self.steps.append((dict(storage["step_record"]), storage["eta_seconds"]))

    def after_epoch(self) -> None:
        self.epochs.append(dict(self.trainer.storage["epoch_record"]))


def train(epochs=2, max_iters=None, hooks=()):
    clock = FakeClock()
    records = Records()
    model = TinyNet()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), TimedLoader(clock),
                      build_loss(False), MixedPrecision("fp32", CPU), CPU, epochs, max_iters,
                      [StepTimerHook(1), Work(clock), MetricsHook(), *hooks, records],
                      clock=clock)
    trainer.train()
    return trainer, records


def expected_eta(n: int, total: int, window: int) -> float:
    times = [d + s for d, s in zip(DATA, STEP)][:n + 1][-window:]
    return math.fsum(times) / len(times) * (total - n - 1)


@pytest.mark.parametrize("window", [100, 2])
def test_data_time_iteration_time_and_eta_are_exact(window, monkeypatch, tmp_path):
    monkeypatch.setattr(log_hooks, "ETA_WINDOW", window)
    trainer, records = train(hooks=[JsonlWriterHook(tmp_path / "metrics.jsonl")])
    assert trainer.total_iterations() == 6
    assert [r["data_time"] for r, _ in records.steps] == DATA
    assert [r["time"] for r, _ in records.steps] == [d + s for d, s in zip(DATA, STEP)]
    assert [r["clips_per_second"] for r, _ in records.steps] == [4 / s for s in STEP]
    assert [eta for _, eta in records.steps] == [expected_eta(n, 6, window) for n in range(6)]
    assert records.steps[-1][1] == 0.0
    # metrics.jsonl holds both times of every iteration; epochs hold their means.
    steps, epochs = read_metrics(tmp_path / "metrics.jsonl")
    assert [(r["data_time"], r["time"]) for r in steps] == [
        (r["data_time"], r["time"]) for r, _ in records.steps]
    assert [(r["data_time"], r["time"]) for r in epochs] == [
        (sum(DATA[:3]) / 3, sum(DATA[:3] + STEP[:3]) / 3),
        (sum(DATA[3:]) / 3, sum(DATA[3:] + STEP[3:]) / 3)]
    assert [r["seconds"] for r in epochs] == [sum(DATA[:3] + STEP[:3]),
                                              sum(DATA[3:] + STEP[3:])]


def test_eta_counts_the_iterations_left_up_to_max_iters():
    trainer, records = train(epochs=5, max_iters=4)
    assert trainer.total_iterations() == 4 and len(records.steps) == 4
    assert [eta for _, eta in records.steps] == [expected_eta(n, 4, 100) for n in range(4)]


def test_progress_lines_show_means_since_the_last_line_and_the_eta(caplog):
    progress = ProgressHook(log_period=2, stream=_NotATerminal())
    with caplog.at_level(logging.INFO, logger=log_hooks.__name__):
        _, records = train(hooks=[progress])
    lines = [r.getMessage() for r in caplog.records if " iter " in r.getMessage()]
    expected = []
    for n, position in ((1, "epoch 1/2 iter 2/3"), (3, "epoch 2/2 iter 1/3"),
                        (5, "epoch 2/2 iter 3/3")):
        record, eta = records.steps[n]
        data = (DATA[n - 1] + DATA[n]) / 2
        time = (DATA[n - 1] + STEP[n - 1] + DATA[n] + STEP[n]) / 2
        speed = (4 / STEP[n - 1] + 4 / STEP[n]) / 2
        expected.append(f"{position} {step_text(record['loss'], None, data, time, speed, eta)}")
    assert lines == expected


def test_step_text_and_eta_format():
    assert step_text(1.234, 0.003, 0.012, 0.23, 26.06, 312.4) == (
        "loss 1.2340 lr 0.003 data 0.012s time 0.230s clips/s 26.1 eta 0:05:12")
    assert step_text(0.5, None, 0.0, 1.0, None, None) == "loss 0.5000 data 0.000s time 1.000s"
    assert [format_eta(s) for s in (0, 0.4, 59.6, 312.4, 3600, 90061, -3)] == [
        "0:00:00", "0:00:00", "0:01:00", "0:05:12", "1:00:00", "25:01:01", "0:00:00"]


def test_running_mean_keeps_the_last_window():
    mean = RunningMean(3)
    assert mean.mean == 0.0 and len(mean) == 0
    for value in (1.0, 2.0, 4.0, 8.0):
        mean.add(value)
    assert len(mean) == 3 and mean.mean == 14.0 / 3


class _NotATerminal:
    """A stream that is not a terminal: the progress hook writes log lines, not a bar."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None: ...

    def isatty(self) -> bool:
        return False
