"""Typed experiment configuration: one dataclass per component, composed in ``ExperimentConfig``.

YAML files and ``key=value`` overrides are validated against these classes: an unknown key, a
value of the wrong type, or one outside a field's ``metadata`` bounds (``min``, ``max``,
``choices``) is an error naming the key. Keys are lowercase and dotted (``model.name``,
``data.num_frames``, ``output_dir``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


def _field(default: Any, **bounds: Any) -> Any:
    """A dataclass field with validation bounds in its metadata."""
    return field(default=default, metadata=bounds)


@dataclass
class ModelConfig:
    """Which network to build and its hyper-parameters (see ``videotl.models.list_models()``)."""

    name: str = "x2plus1d_m"
    num_classes: int = _field(400, min=1)
    # X(2+1)D: the space-time module of the res5 blocks (see videotl.models.space_time).
    space_time_module: str = "conv2d+conv1d"
    # TokenLearner: tokens learned per frame.
    num_tokens: int = _field(8, min=1)
    dropout: float = _field(0.5, min=0.0, max=1.0)
    # ViT/ViViT (videotl.models.backbones.vivit): classify from the class token or from the
    # average of the final tokens ("gap").
    classifier: str = _field("token", choices=("token", "gap"))
    # ViT/ViViT with token reduction (*_tl* models): the reducer (videotl.models.token_reducers).
    token_reducer: str = "tokenlearner_v11"
    # ViT/ViViT: dropout on attention weights; stochastic depth rate of the last block.
    attention_dropout: float = _field(0.0, min=0.0, max=1.0)
    drop_path: float = _field(0.0, min=0.0, max=0.99)
    # ViT/ViViT: image-ViT weights (timm layout; .pth, .pt, .bin or .safetensors) to start from,
    # and how 2D patch filters become tubelet filters: central frame or average over frames.
    pretrained: Optional[str] = None
    pretrained_inflation: str = _field("central", choices=("central", "average"))


@dataclass
class DataConfig:
    """Input clips."""

    num_frames: int = _field(16, min=1)
    train_crop_size: int = _field(224, min=1)
    test_crop_size: int = _field(256, min=1)


@dataclass
class TrainConfig:
    """Training schedule and batches (``batch_size`` is per process)."""

    batch_size: int = _field(8, min=1)


@dataclass
class TestConfig:
    """Multi-view testing: ``num_temporal_views`` clips x ``num_spatial_crops`` crops per video."""

    num_temporal_views: int = _field(4, min=1)
    num_spatial_crops: int = _field(3, choices=(1, 3))
    batch_size: int = _field(8, min=1)


@dataclass
class ExperimentConfig:
    """The whole experiment; ``load_config`` returns one of these."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
    output_dir: str = "output"
    seed: int = _field(0, min=0)
