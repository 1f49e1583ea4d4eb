"""Typed experiment configuration: one dataclass per component, composed in ``ExperimentConfig``.

YAML files and ``key=value`` overrides are validated against these classes: an unknown key, a
value of the wrong type, or one outside a field's ``metadata`` bounds (``min``, ``max``,
``choices``; for lists also ``length`` and ``order``; every float finite: see
``videotl.config.checks``) is an error naming the key. Keys whose value names something another
module owns (a decoder backend, a registered model, reducer or dataset, an aggregation, a
precision) are checked against that module's own list (``videotl.config.choices``), never a copy
here. Checks across keys (the training crop within the scale jitter) follow
(``videotl.config.checks.consistency_error``). Keys are lowercase and dotted (``model.name``,
``data.num_frames``, ``output_dir``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional


def _field(default: Any, **bounds: Any) -> Any:
    """A dataclass field with validation bounds in its metadata."""
    return field(default=default, metadata=bounds)


def _list_field(default: List[Any], **bounds: Any) -> Any:
    """A list field (a fresh copy of ``default`` per instance) with bounds on its values."""
    return field(default_factory=lambda: list(default), metadata=bounds)


@dataclass
class ModelConfig:
    """Which network to build and its hyper-parameters (see ``videotl.models.list_models()``)."""

    name: str = "x2plus1d_m"
    num_classes: int = _field(400, min=1)
    # X(2+1)D: the space-time module of the res5 blocks (see videotl.models.space_time).
    space_time_module: str = "conv2d+conv1d"
    # TokenLearner: tokens learned per frame.
    num_tokens: int = _field(8, min=1)
    # TokenLearner module parts (the paper's Table 6 and Section 5.3 ablations, docs/ABLATIONS.md):
    # how frames become tokens, how the tokens are related, how they return to the input.
    tokenizer: str = "tokenlearner"
    token_transformer: str = "vector"
    token_fusion: str = "tokenfuser"
    dropout: float = _field(0.5, min=0.0, max=1.0)
    # ViT/ViViT (videotl.models.backbones.vivit): classify from the class token or from the
    # average of the final tokens ("gap").
    classifier: str = "token"
    # ViT/ViViT with token reduction (*_tl* models): the reducer (videotl.models.reducers).
    token_reducer: str = "tokenlearner_v11"
    # ... the blocks (from 0, increasing) at which reducers act (null: the model's own, e.g. [6]
    # for *_tl8at6; []: none), and the tokens per temporal index each leaves (ATS: its maximum
    # K), one value for all layers or one per layer (null: the model's own).
    # Whether an index is below the model's depth is checked when the model is built.
    reducer_layers: Optional[List[int]] = _field(None, min=0, order="increasing")
    reducer_tokens: Optional[List[int]] = _field(None, min=1)
    # ... Token Pooling (token_pooling*): clustering iterations after the top-K initialisation.
    clustering_iterations: int = _field(5, min=0)
    # ViT/ViViT: dropout on attention weights; stochastic depth rate of the last block.
    attention_dropout: float = _field(0.0, min=0.0, max=1.0)
    drop_path: float = _field(0.0, min=0.0, max=0.99)
    # ViT/ViViT: image-ViT weights (timm layout; .pth, .pt, .bin or .safetensors) to start from,
    # and how 2D patch filters become tubelet filters: central frame or average over frames.
    pretrained: Optional[str] = None
    pretrained_inflation: str = "central"
    # ... the file's format (videotl.models.weights, docs/PRETRAINED.md): auto (told by the file's
    # suffix and tensor names), videotl, timm (image ViT), hf (transformers ViViT), scenic (Flax).
    pretrained_format: str = "auto"
    # Reference numerics (docs/TOKEN_REDUCERS.md#reference-numerics). ViT/ViViT: the GELU form
    # of every block, TokenLearner and TokenFuser: "exact" (erf, as timm) or "tanh" (the Flax
    # reference code: Scenic, transformers' ViViT).
    gelu: str = "exact"
    # ... with classifier "gap": LayerNorm after the average ("pool_then_norm", timm's fc_norm)
    # or on every token before it ("norm_then_pool", Scenic).
    gap_norm: str = "pool_then_norm"
    # ... TokenLearner v1 (token_reducer tokenlearner_v1): the 3x3 convolutions computing its
    # maps (GELU between them; the paper's text: 3, the authors' release: 4), their biases
    # (release: false) and the pooling over positions, "mean" (eq. 1) or "sum" (release).
    tokenlearner_conv_layers: int = _field(3, min=1)
    tokenlearner_conv_bias: bool = True
    tokenlearner_pooling: str = "mean"


@dataclass
class DataConfig:
    """Input clips and the dataset they come from (see docs/DATASETS.md)."""

    num_frames: int = _field(16, min=1)
    # Training crop side, at most the smaller of train_jitter_scales; ViT/ViViT lay out their
    # position embeddings for it (other input sizes get interpolated ones). Testing resizes the
    # short side to test_crop_size and takes square crops of that side: any positive size.
    train_crop_size: int = _field(224, min=1)
    test_crop_size: int = _field(256, min=1)
    # Dataset (videotl.data.DATASETS): "kinetics", "charades" or "avid", read under `root`.
    dataset: str = "kinetics"
    root: str = "data/kinetics400"
    # Folder of the videos, relative to `root` ("" = `root` itself).
    video_dir: str = ""
    # Class-name list, relative to `root` ("" = the dataset's own default file name).
    class_names_file: str = ""
    # Clip sampling: `sampling_fps` frames per second when set, otherwise every
    # `frame_stride`-th native frame.
    sampling_fps: Optional[float] = _field(None, min=0.01)
    frame_stride: int = _field(4, min=1)
    # Training augmentation: short side drawn in [min, max], random crop, horizontal flip.
    train_jitter_scales: List[int] = _list_field(
        [256, 320], length=2, items="min, max", min=1, order="non-decreasing")
    random_flip: bool = True
    # Normalisation of [0, 1] pixel values, per RGB channel.
    mean: List[float] = _list_field([0.45, 0.45, 0.45], length=3, items="R, G, B")
    std: List[float] = _list_field([0.225, 0.225, 0.225], length=3, items="R, G, B", above=0.0)
    # Decoding: backend, its threads per loader process, and resizing inside the decoder.
    decoder: str = "pyav"
    decoder_threads: int = _field(1, min=0)
    resize_at_decode: bool = True
    # DataLoader processes (0 = load in the main process) and pinned host memory.
    num_workers: int = _field(4, min=0)
    pin_memory: bool = True
    # Where the videos come from (docs/DATASETS.md#tar-shards): "files" (the lists' files) or
    # "shards" (tar shards written by data_prep/make_shards.py). Shards: the folder of the split
    # manifests (<split>.json) and, unless shard_urls is set, of the shards (relative to `root`);
    # shard_urls reads them from elsewhere: a brace pattern or "pipe:<command>", "{split}"
    # standing for the split's shard prefix; in training, videos held per loader process to
    # shuffle the stream (0: the epoch's shard order only). These three are read only with
    # shards: set with files, they are an error (videotl.config.checks).
    format: str = "files"
    shard_dir: str = "shards"
    shard_urls: str = ""
    shuffle_buffer: int = _field(64, min=0)
    # Robustness: a file listing videos to skip (one per line, relative to `root`); the
    # fraction of training videos that may fail before training stops; retries per item.
    exclude_file: str = ""
    max_failure_fraction: float = _field(0.01, min=0.0, max=1.0)
    clip_retries: int = _field(2, min=0)
    video_retries: int = _field(10, min=0)
    # Synthetic data (videotl.data.synthetic): generated into `root` when its annotation
    # files are missing. Sizes default to the kind's demo size when null.
    synthetic: bool = False
    synthetic_train_videos: Optional[int] = _field(None, min=1)
    synthetic_eval_videos: Optional[int] = _field(None, min=1)
    synthetic_short_side: int = _field(128, min=16)
    synthetic_seed: int = _field(0, min=0)


@dataclass
class SolverConfig:
    """Optimiser, learning-rate schedule and loss.

    ``base_lr`` is the learning rate of the whole (global) batch; the schedule is a linear warm-up
    from ``base_lr * warmup_start_factor`` over ``warmup_epochs``, then a cosine decay to
    ``cosine_end_lr``, updated every iteration. Norm layers and biases get no weight decay.
    """

    optimizer: str = "sgd"
    base_lr: float = _field(0.1, min=0.0)
    # Linear scaling rule: when > 0, base_lr is the rate for a global batch of this size and the
    # run uses base_lr * (train.batch_size * processes) / base_batch_size.
    base_batch_size: int = _field(0, min=0)
    momentum: float = _field(0.9, min=0.0, max=1.0)
    nesterov: bool = False
    # AdamW's decay rates of the gradient's first and second moments.
    betas: List[float] = _list_field([0.9, 0.999], length=2, items="beta1, beta2", min=0.0,
                                     below=1.0)
    weight_decay: float = _field(5e-5, min=0.0)
    warmup_epochs: float = _field(0.0, min=0.0)
    warmup_start_factor: float = _field(0.01, min=0.0, max=1.0)
    cosine_end_lr: float = _field(0.0, min=0.0)
    # Cross-entropy (single-label) or targets of the BCE (multi-label) are smoothed by this.
    label_smoothing: float = _field(0.0, min=0.0, max=1.0)
    # Clip the global gradient norm to this value (null: no clipping).
    clip_grad_norm: Optional[float] = _field(None, min=0.0)


@dataclass
class TrainConfig:
    """Training length, precision, validation, checkpoints and logging.

    ``batch_size`` is per process. Training runs ``epochs`` epochs; when ``max_iters`` is set it
    replaces ``epochs``: the run (and the LR schedule) spans that many iterations.
    """

    batch_size: int = _field(8, min=1)
    epochs: int = _field(10, min=1)
    max_iters: Optional[int] = _field(None, min=1)
    # fp32, or autocast to bf16 / fp16 (fp16 with a gradient scaler); CUDA only, fp32 on CPU.
    precision: str = "fp32"
    # Channels-last (NDHWC) weights and activations, in training and testing: faster
    # convolutions on recent GPUs (on this CPU's oneDNN, about 3 % per demo step).
    channels_last: bool = False
    # Compile the model with torch.compile (the first iterations are slow while it compiles).
    compile: bool = False
    # Validate every eval_period epochs (0: never) and checkpoint every checkpoint_period epochs.
    eval_period: int = _field(1, min=0)
    checkpoint_period: int = _field(1, min=1)
    keep_checkpoints: int = _field(2, min=1)
    # Resume from the last checkpoint in output_dir when there is one.
    auto_resume: bool = True
    # Initialise the model from these weights (head mismatches are reported and skipped).
    checkpoint_file: str = ""
    # Run the multi-view test when training ends.
    final_test: bool = True
    log_period: int = _field(10, min=1)


@dataclass
class TestConfig:
    """Multi-view testing: ``num_temporal_views`` clips x ``num_spatial_crops`` crops per video."""

    num_temporal_views: int = _field(4, min=1)
    num_spatial_crops: int = _field(3, choices=(1, 3))
    batch_size: int = _field(8, min=1)
    # How the views of a video are merged: mean or max of their softmax (single-label) or
    # sigmoid (multi-label) scores; null: max for multi-label datasets, mean otherwise.
    aggregation: Optional[str] = None
    # mAP: classes without a positive are excluded (and counted); true counts them as AP 0.
    map_missing_classes_as_zero: bool = False


@dataclass
class ExperimentConfig:
    """The whole experiment; ``load_config`` returns one of these."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
    output_dir: str = _field("output", nonempty=True)
    seed: int = _field(0, min=0)
    # "auto": CUDA when available (the local rank's GPU under torchrun), else CPU.
    device: str = "auto"
    # Threads per process for the model's CPU operators (torch.set_num_threads) in
    # tools/train_net.py and tools/test_net.py; 0: PyTorch's default (OMP_NUM_THREADS when set,
    # else one per core); it changes the rounding, not the recipe. Next to loader workers on
    # few cores fewer can be faster: the demos use 1 (on 2 cores, 0.26-0.28 s per demo step
    # against 0.32-0.37 s with 2; docs/TRAINING.md).
    num_threads: int = _field(0, min=0)
