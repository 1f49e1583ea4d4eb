"""``train(cfg)`` and ``evaluate_checkpoint(cfg, checkpoint)``: build everything from the config
and run it.

The tool scripts are thin wrappers around these two functions.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from videotl.config import ConfigError, ExperimentConfig, register_choices, save_config, to_yaml
from videotl.data import build_loader
from videotl.engine.hooks import CheckpointHook, EvalHook, HookBase, LRScheduleHook, StepTimerHook
from videotl.engine.log_hooks import (
    CurvesPlotHook,
    JsonlWriterHook,
    MetricsHook,
    ProgressHook,
    TensorBoardHook,
)
from videotl.engine.losses import build_loss
from videotl.engine.optim import build_optimizer
from videotl.engine.precision import MixedPrecision
from videotl.engine.resume import check_resumable
from videotl.engine.trainer import Trainer
from videotl.evaluation.ensemble import AGGREGATIONS
from videotl.evaluation.evaluator import TestResult, evaluate, write_test_outputs
from videotl.evaluation.reports import write_class_reports
from videotl.files import remove_stale_temporaries
from videotl.models import build_model, load_trained_model, set_memory_format
from videotl.utils import checkpoint as ckpt
from videotl.utils import distributed
from videotl.utils.logging import setup_logging

logger = logging.getLogger(__name__)

# The evaluation owns the aggregations but knows nothing of configs: the engine, where the config
# meets evaluate(), declares them for test.aggregation.
register_choices("test.aggregation", lambda: AGGREGATIONS)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _setup(cfg: ExperimentConfig) -> torch.device:
    device = distributed.select_device(cfg.device)
    distributed.init_distributed(device)
    setup_logging(cfg.output_dir, distributed.get_rank())
    if distributed.is_distributed():
        logger.info("process group of %d processes, %s backend", distributed.get_world_size(),
                    distributed.backend())
    seed_everything(cfg.seed + distributed.get_rank())
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return device


def _check_classes(cfg: ExperimentConfig, dataset: Any) -> None:
    if dataset.num_classes != cfg.model.num_classes:
        raise ConfigError(
            f"model.num_classes={cfg.model.num_classes} but the {cfg.data.dataset} data under "
            f"{cfg.data.root!r} has {dataset.num_classes} classes; set "
            f"model.num_classes={dataset.num_classes}"
        )


def train(cfg: ExperimentConfig, extra_hooks: Iterable[HookBase] = ()) -> dict[str, Any]:
    """Trains ``cfg`` (resuming from ``output_dir`` when it holds a checkpoint and
    ``train.auto_resume``), then runs the multi-view test if ``train.final_test``.

    Returns the final test metrics (or the last validation metrics, or {})."""
    device = _setup(cfg)
    output = Path(cfg.output_dir)
    resume = ckpt.last_checkpoint(output) if cfg.train.auto_resume else None
    state = ckpt.load_checkpoint(resume) if resume is not None else None
    if state is not None:
        check_resumable(cfg, state, resume)
    if distributed.is_main_process():
        _remove_stale_temporaries(output)
        save_config(cfg, output / "config.yaml")
    train_loader = build_loader(cfg, "train")
    dataset = train_loader.dataset
    _check_classes(cfg, dataset)
    model = build_model(cfg).to(device)
    if cfg.train.checkpoint_file:
        ckpt.load_model_weights(model, cfg.train.checkpoint_file)
    set_memory_format(model, cfg)
    precision = MixedPrecision(cfg.train.precision, device, cfg.solver.clip_grad_norm)
    iters_per_epoch = len(train_loader)
    epochs = cfg.train.epochs
    if cfg.train.max_iters:
        epochs = -(-cfg.train.max_iters // iters_per_epoch)
    trainable = distributed.wrap_model(model, device)
    if cfg.train.compile:
        trainable = torch.compile(trainable)
    trainer = Trainer(
        trainable, build_optimizer(model, cfg.solver), train_loader,
        build_loss(dataset.multilabel, cfg.solver.label_smoothing), precision, device,
        epochs, cfg.train.max_iters,
        [*_training_hooks(cfg, model, device, precision, iters_per_epoch, epochs),
         *extra_hooks],
        distributed.get_world_size(),
    )
    if state is not None:
        trainer.load_state_dict(state)
        logger.info("resumed from %s (epoch %d, iteration %d)", resume, trainer.start_epoch,
                    trainer.iteration)
    logger.info("training %s on %d %s videos (%d classes), %d iterations per epoch",
                cfg.model.name, dataset.num_videos, cfg.data.dataset, dataset.num_classes,
                len(train_loader))
    trainer.train()
    metrics = trainer.storage.get("eval", {})
    if cfg.train.final_test:
        metrics = _test_and_write(cfg, model, device, precision).metrics
    distributed.barrier()
    return metrics


def _remove_stale_temporaries(output: Path) -> None:
    """Temporary files of atomic writes that a killed run left (``videotl.files``)."""
    for folder in (output, output / ckpt.CHECKPOINT_DIR):
        for path in remove_stale_temporaries(folder):
            logger.info("removed %s, left by an interrupted write", path)


def test_output_dir(output_dir: str | Path, checkpoint: str | Path) -> Path:
    """Where testing ``checkpoint`` on its own writes: ``<output_dir>/test/<checkpoint name>``,
    apart from the training run's own test results and log."""
    return Path(output_dir) / "test" / Path(checkpoint).stem


def scaled_learning_rate(cfg: ExperimentConfig, world_size: int) -> float:
    """``solver.base_lr``, scaled linearly to the global batch if ``solver.base_batch_size``."""
    if not cfg.solver.base_batch_size:
        return cfg.solver.base_lr
    global_batch = cfg.train.batch_size * world_size
    return cfg.solver.base_lr * global_batch / cfg.solver.base_batch_size


def _training_hooks(cfg: ExperimentConfig, model: nn.Module, device: torch.device,
                    precision: MixedPrecision, iters_per_epoch: int,
                    epochs: int) -> list[HookBase]:
    total_iters = cfg.train.max_iters or epochs * iters_per_epoch
    base_lr = scaled_learning_rate(cfg, distributed.get_world_size())
    logger.info("learning rate %.4g for a global batch of %d clips, %d iterations",
                base_lr, cfg.train.batch_size * distributed.get_world_size(), total_iters)
    hooks: list[HookBase] = [
        LRScheduleHook(base_lr, round(cfg.solver.warmup_epochs * iters_per_epoch),
                       total_iters, cfg.solver.warmup_start_factor, cfg.solver.cosine_end_lr),
        StepTimerHook(distributed.get_world_size()),
    ]
    if cfg.train.eval_period:
        val_loader = build_loader(cfg, "val")
        hooks.append(EvalHook(cfg.train.eval_period, lambda: evaluate(
            model, val_loader, device, precision.autocast_dtype, cfg.test.aggregation,
            cfg.test.map_missing_classes_as_zero, "val").metrics))
    output = Path(cfg.output_dir)
    hooks += [
        MetricsHook(),
        CheckpointHook(str(output), cfg.train.checkpoint_period, cfg.train.keep_checkpoints,
                       distributed.is_main_process(), extra={"config": to_yaml(cfg)}),
    ]
    if distributed.is_main_process():
        hooks += [
            JsonlWriterHook(output / "metrics.jsonl"),
            ProgressHook(cfg.train.log_period),
            TensorBoardHook(output / "tensorboard"),
            CurvesPlotHook(output / "metrics.jsonl", output / "training_curves.png"),
        ]
    return hooks


def evaluate_checkpoint(cfg: ExperimentConfig, checkpoint: str | Path) -> dict[str, Any]:
    """Multi-view test of the weights in ``checkpoint``; writes ``config.yaml``,
    ``test_metrics.json``, ``test_scores.npz`` and the per-class reports
    (``evaluation.reports``) to ``output_dir`` and returns the metrics."""
    device = _setup(cfg)
    if distributed.is_main_process():
        save_config(cfg, Path(cfg.output_dir) / "config.yaml")
    loader = build_loader(cfg, "test")
    _check_classes(cfg, loader.dataset)
    model = load_trained_model(cfg, checkpoint, device)
    precision = MixedPrecision(cfg.train.precision, device)
    return _test_and_write(cfg, model, device, precision, loader).metrics


def _test_and_write(cfg: ExperimentConfig, model: nn.Module, device: torch.device,
                    precision: MixedPrecision, loader: Any = None) -> TestResult:
    if loader is None:
        loader = build_loader(cfg, "test")
        _check_classes(cfg, loader.dataset)
    views = f"{cfg.test.num_temporal_views}x{cfg.test.num_spatial_crops}"
    logger.info("testing %d videos with %s views each", loader.dataset.num_videos, views)
    result = evaluate(model, loader, device, precision.autocast_dtype, cfg.test.aggregation,
                      cfg.test.map_missing_classes_as_zero)
    if distributed.is_main_process():
        metrics_path, scores_path = write_test_outputs(result, cfg.output_dir)
        shown = {k: v for k, v in result.metrics.items() if not isinstance(v, list)}
        logger.info("test metrics: %s", shown)
        logger.info("wrote %s and %s", metrics_path, scores_path)
        reports = write_class_reports(result.scores, result.targets,
                                      getattr(loader.dataset, "class_names", None),
                                      cfg.output_dir)
        logger.info("wrote %s", ", ".join(str(path) for path in reports))
    return result
