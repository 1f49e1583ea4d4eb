"""Hooks that record and show training progress: per-step and per-epoch records, a JSON-lines
file, a progress bar (plain lines when not on a terminal), TensorBoard scalars and a PNG of the
training curves.

Times per iteration, in seconds, as detectron2, PySlowFast and MMAction2 log them: ``data_time``
is the wait for the batch (the loader's ``next``; large when decoding cannot keep up),
``time`` the whole iteration (that wait, then forward, backward and step). The time left
(``eta``) is the mean ``time`` of the last ``ETA_WINDOW`` iterations times the iterations left
in all epochs; validation and checkpoints between epochs are not in it.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections import deque
from pathlib import Path
from typing import Any

from tqdm import tqdm

from videotl.engine.hooks import HookBase
from videotl.files import atomic_write, write_text_atomic

logger = logging.getLogger(__name__)

# Iterations whose mean time, times the iterations left, is the time left: long enough to smooth
# single slow batches, short enough to forget the slow first iterations (workers starting,
# cuDNN choosing its algorithms).
ETA_WINDOW = 100


class RunningMean:
    """The mean of the last ``window`` values added (0.0 before the first)."""

    def __init__(self, window: int) -> None:
        self._values: deque[float] = deque(maxlen=window)

    def add(self, value: float) -> None:
        self._values.append(value)

    @property
    def mean(self) -> float:
        return math.fsum(self._values) / len(self._values) if self._values else 0.0

    def __len__(self) -> int:
        return len(self._values)


def format_eta(seconds: float) -> str:
    """``h:mm:ss`` rounded to the second, hours past 24 included: ``312.4`` -> ``0:05:12``."""
    whole = max(0, round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class MetricsHook(HookBase):
    """Builds ``storage["step_record"]`` after every step (loss, LR, clips/s, ``data_time`` and
    ``time`` of the iteration, as the module docstring says) with ``storage["eta_seconds"]``
    beside it, and ``storage["epoch_record"]`` after every epoch (mean loss, clips/s, mean
    ``data_time`` and ``time``, seconds, and the validation metrics as ``val_<name>``)."""

    def before_train(self) -> None:
        self._recent = RunningMean(ETA_WINDOW)

    def before_epoch(self) -> None:
        self._losses: list[float] = []
        self._clips = 0
        self._step_seconds = 0.0
        self._data_seconds = 0.0
        self._iteration_seconds = 0.0
        self._start = self.trainer.clock()
        self.trainer.storage.pop("eval", None)

    def after_step(self) -> None:
        storage = self.trainer.storage
        self._losses.append(storage["loss"])
        self._clips += storage["batch_size"]
        self._step_seconds += storage.get("step_seconds", 0.0)
        data_time = storage.get("data_seconds", 0.0)
        iteration_time = storage.get("iteration_seconds", data_time)
        self._data_seconds += data_time
        self._iteration_seconds += iteration_time
        self._recent.add(iteration_time)
        total = self.trainer.total_iterations()
        storage["eta_seconds"] = (None if total is None else
                                  self._recent.mean * max(total - self.trainer.iteration - 1, 0))
        storage["step_record"] = {
            "iteration": self.trainer.iteration + 1,
            "epoch": self.trainer.epoch + 1,
            "loss": storage["loss"],
            "lr": storage.get("lr"),
            "clips_per_second": storage.get("clips_per_second"),
            "data_time": data_time,
            "time": iteration_time,
        }

    def after_epoch(self) -> None:
        storage = self.trainer.storage
        record: dict[str, Any] = {
            "epoch": self.trainer.epoch + 1,
            "iteration": self.trainer.iteration,
            "loss": sum(self._losses) / max(len(self._losses), 1),
            "lr": storage.get("lr"),
            "data_time": self._data_seconds / max(len(self._losses), 1),
            "time": self._iteration_seconds / max(len(self._losses), 1),
            "seconds": self.trainer.clock() - self._start,
            "clips_per_second": (
                self._clips * self.trainer.world_size / self._step_seconds
                if self._step_seconds else None
            ),
        }
        for key, value in storage.get("eval", {}).items():
            if isinstance(value, (int, float)):
                record[f"val_{key}"] = value
        storage["epoch_record"] = record


class JsonlWriterHook(HookBase):
    """Appends every step and epoch record to ``path`` (one JSON object per line, with "type").

    The file holds the records of this run's iterations only: when training starts it keeps the
    records up to the iteration the trainer resumed from (none for a new run) and drops the rest,
    which a killed run wrote after its last checkpoint and the resumed run writes again.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def before_train(self) -> None:
        write_text_atomic(self.path, "".join(self._records_up_to(self.trainer.iteration)))
        self._file = open(self.path, "a", encoding="utf-8")

    def _records_up_to(self, iteration: int) -> list[str]:
        if iteration == 0 or not self.path.is_file():
            return []
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines(keepends=True):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # the last line of a run killed mid-write
                continue
            if isinstance(record, dict) and record.get("iteration", 0) <= iteration:
                kept.append(line if line.endswith("\n") else line + "\n")
        return kept

    def _write(self, kind: str, record: dict[str, Any]) -> None:
        self._file.write(json.dumps({"type": kind, **record}) + "\n")
        self._file.flush()

    def after_step(self) -> None:
        self._write("iteration", self.trainer.storage["step_record"])

    def after_epoch(self) -> None:
        self._write("epoch", self.trainer.storage["epoch_record"])

    def after_train(self) -> None:
        self._file.close()


class ProgressHook(HookBase):
    """A tqdm bar on a terminal; otherwise a plain line every ``log_period`` iterations:
    ``epoch 3/20 iter 40/300 loss 1.2340 lr 0.003 data 0.012s time 0.230s clips/s 26.1 eta
    0:05:12`` (``step_text``; ``data``, ``time`` and ``clips/s`` are means over the last
    ``log_period`` iterations, ``eta`` the whole training's, see the module docstring). One
    summary line per epoch either way."""

    def __init__(self, log_period: int, stream: Any = None) -> None:
        self.log_period = log_period
        self.stream = stream or sys.stderr
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()

    def before_train(self) -> None:
        self._data_time = RunningMean(self.log_period)
        self._time = RunningMean(self.log_period)
        self._speed = RunningMean(self.log_period)

    def before_epoch(self) -> None:
        self._steps = self.trainer.iterations_in_epoch()
        self._step = 0
        self._bar = tqdm(
            total=self._steps, desc=f"epoch {self.trainer.epoch + 1}",
            file=self.stream, disable=not self.interactive, dynamic_ncols=True, leave=False,
        )

    def after_step(self) -> None:
        record = self.trainer.storage["step_record"]
        self._step += 1
        self._data_time.add(record["data_time"])
        self._time.add(record["time"])
        if record.get("clips_per_second") is not None:
            self._speed.add(record["clips_per_second"])
        speed = self._speed.mean if record.get("clips_per_second") is not None else None
        text = step_text(record["loss"], record.get("lr"), self._data_time.mean, self._time.mean,
                         speed, self.trainer.storage.get("eta_seconds"))
        if self.interactive:
            self._bar.update(1)
            self._bar.set_postfix_str(text, refresh=False)
        elif record["iteration"] % self.log_period == 0:
            logger.info("epoch %d/%d iter %d/%d %s", record["epoch"], self.trainer.epochs,
                        self._step, self._steps, text)

    def after_epoch(self) -> None:
        self._bar.close()
        record = self.trainer.storage["epoch_record"]
        logger.info("epoch %d done: %s", record["epoch"],
                    _format(record, [k for k in record if k not in ("epoch", "iteration")]))

    def after_train(self) -> None:
        if hasattr(self, "_bar"):
            self._bar.close()


class TensorBoardHook(HookBase):
    """Scalars for TensorBoard in ``log_dir`` when the ``tensorboard`` package is installed."""

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = str(log_dir)
        self._writer = None

    def before_train(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            logger.info("tensorboard is not installed; skipping TensorBoard logging")
            return
        self._writer = SummaryWriter(self.log_dir)

    def after_step(self) -> None:
        if self._writer is not None:
            record = self.trainer.storage["step_record"]
            for key in ("loss", "lr", "clips_per_second", "data_time", "time"):
                if record.get(key) is not None:
                    self._writer.add_scalar(f"train/{key}", record[key], record["iteration"])

    def after_epoch(self) -> None:
        if self._writer is not None:
            record = self.trainer.storage["epoch_record"]
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("epoch", "iteration"):
                    self._writer.add_scalar(f"epoch/{key}", value, record["epoch"])
            self._writer.flush()

    def after_train(self) -> None:
        if self._writer is not None:
            self._writer.close()


class CurvesPlotHook(HookBase):
    """Draws loss, LR and the validation metrics that are fractions (top-1, top-5, mean class
    accuracy, mAP; not counts such as ``num_videos``) from ``metrics.jsonl`` into a PNG when
    training ends (the whole history, resumed runs included)."""

    def __init__(self, metrics_path: str | Path, png_path: str | Path) -> None:
        self.metrics_path = Path(metrics_path)
        self.png_path = Path(png_path)

    def after_train(self) -> None:
        plot_training_curves(self.metrics_path, self.png_path)


# Validation metrics that are fractions in [0, 1], drawn on one axis from 0 to 1. Counts
# (num_videos, num_failed_views, ...) are not drawn: on the same axis they flatten the metrics.
FRACTION_METRICS = ("top1", "top5", "mean_class_accuracy", "map")


def validation_series(epochs: list[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """The validation curves of the figure: ``{metric: (epochs, values)}`` for each of
    ``FRACTION_METRICS`` that some epoch record holds (as ``val_<metric>``), in that order."""
    series = {}
    for name in FRACTION_METRICS:
        points = [(r["epoch"], float(r[f"val_{name}"])) for r in epochs if f"val_{name}" in r]
        if points:
            series[name] = ([e for e, _ in points], [v for _, v in points])
    return series


def plot_training_curves(metrics_path: str | Path, png_path: str | Path) -> None:
    """Draws ``metrics.jsonl`` (``read_metrics``) into ``png_path`` (``training_figure``)."""
    steps, epochs = read_metrics(metrics_path)
    figure = training_figure(steps, epochs)
    with atomic_write(png_path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)


def training_figure(steps: list[dict], epochs: list[dict]) -> Any:
    """A matplotlib ``Figure`` (Agg canvas, no window): training loss per iteration and per
    epoch, learning rate, and when validated, ``validation_series`` on an axis from 0 to 1."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # heavy: only when drawing
    from matplotlib.figure import Figure

    validation = validation_series(epochs)
    figure = Figure(figsize=(15 if validation else 10, 4))
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 3 if validation else 2)
    axes[0].plot([r["iteration"] for r in steps], [r["loss"] for r in steps], lw=0.6,
                 label="iteration")
    axes[0].plot([r["iteration"] for r in epochs], [r["loss"] for r in epochs], "o-",
                 label="epoch mean")
    axes[0].set(xlabel="iteration", ylabel="training loss", title="loss")
    axes[0].legend()
    axes[1].plot([r["iteration"] for r in steps], [r["lr"] for r in steps])
    axes[1].set(xlabel="iteration", ylabel="learning rate", title="learning rate")
    for name, (x, y) in validation.items():
        axes[2].plot(x, y, "o-", label=name)
    if validation:
        axes[2].set(xlabel="epoch", ylabel="fraction (0-1)", title="validation", ylim=(0, 1))
        axes[2].legend()
    figure.tight_layout()
    return figure


def read_metrics(path: str | Path) -> tuple[list[dict], list[dict]]:
    """(iteration records, epoch records) from a metrics.jsonl file. A resumed run re-trains from
    its last checkpoint, so later records replace earlier ones with the same iteration/epoch."""
    steps: dict[int, dict] = {}
    epochs: dict[int, dict] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("type") == "iteration":
                steps[record["iteration"]] = record
            elif record.get("type") == "epoch":
                epochs[record["epoch"]] = record
    return [steps[k] for k in sorted(steps)], [epochs[k] for k in sorted(epochs)]


def step_text(loss: float, lr: float | None, data_time: float, iteration_time: float,
              clips_per_second: float | None, eta_seconds: float | None) -> str:
    """``loss 1.2340 lr 0.003 data 0.012s time 0.230s clips/s 26.1 eta 0:05:12``: what a
    progress line says of an iteration (values that are None are left out)."""
    parts = [f"loss {loss:.4f}"]
    if lr is not None:
        parts.append(f"lr {lr:.3g}")
    parts += [f"data {data_time:.3f}s", f"time {iteration_time:.3f}s"]
    if clips_per_second is not None:
        parts.append(f"clips/s {clips_per_second:.1f}")
    if eta_seconds is not None:
        parts.append(f"eta {format_eta(eta_seconds)}")
    return " ".join(parts)


def _format(record: dict[str, Any], keys: Any) -> str:
    parts = []
    for key in keys:
        value = record.get(key)
        if value is None:
            continue
        if isinstance(value, float):
            text = f"{value:.3g}" if key == "lr" else f"{value:.4f}"
            if key in ("clips_per_second", "seconds"):
                text = f"{value:.1f}"
            if math.isnan(value):
                text = "nan"
        else:
            text = str(value)
        parts.append(f"{key}={text}")
    return " ".join(parts)
