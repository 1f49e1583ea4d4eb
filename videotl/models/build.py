"""``build_model(cfg)``: the one adapter between the experiment config and model builders.

Builders take explicit keyword arguments, each named like the leaf of the config key that fills
it (``data.num_frames`` -> ``num_frames``): one name per concept from config key to class
argument. A ``model.*`` key whose value differs from its default but that the chosen model does
not take is an error, so a setting never goes silently unused. ``data.*`` keys describe the input
and are passed only to the models that need them.

Models never see the config, so their errors name their own arguments; a ``ValueError`` raised
while building gets the config keys of the arguments it names in front (``data.num_frames:
num_frames (5) must be a multiple of the tubelet size 2``).
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable, Collection

from torch import nn

from videotl.config import ConfigError, ExperimentConfig, register_choices
from videotl.config.choices import choice_error
from videotl.models import backbones  # noqa: F401  (registers the models)
from videotl.models.weights import FORMATS
from videotl.models.weights.timm import INFLATIONS
from videotl.models.backbones.vivit import CLASSIFIERS, GAP_NORMS
from videotl.models.layers import (
    TOKEN_FUSIONS,
    TOKEN_TRANSFORMERS,
    TOKENIZERS,
    TokenLearnerModule,
)
from videotl.models.layers.mlp import GELU_FORMS
from videotl.models.layers.token_learner import POOLINGS
from videotl.models.reducers import TOKEN_REDUCERS, GridTokenLearner
from videotl.models.registry import MODELS
from videotl.models.space_time import SPACE_TIME_MODULES
from videotl.registry import Registry, RegistryError
from videotl.utils.checkpoint import CheckpointError

# The config keys that builders may take; each fills the builder argument named like its leaf.
BUILDER_KEYS = (
    "model.num_classes",
    "data.num_frames",
    "model.space_time_module",
    "model.num_tokens",
    "model.dropout",
    "model.tokenizer",
    "model.token_transformer",
    "model.token_fusion",
    "data.train_crop_size",
    "model.classifier",
    "model.token_reducer",
    "model.reducer_layers",
    "model.reducer_tokens",
    "model.clustering_iterations",
    "model.attention_dropout",
    "model.drop_path",
    "model.pretrained",
    "model.pretrained_format",
    "model.pretrained_inflation",
    "model.gelu",
    "model.gap_norm",
    "model.tokenlearner_conv_layers",
    "model.tokenlearner_conv_bias",
    "model.tokenlearner_pooling",
)

# Config keys whose value names something the models own, with the owner's list; load_config
# checks them (videotl.config.choices) and so does model_arguments.
MODEL_CHOICES: dict[str, Registry | Callable[[], Collection[str]]] = {
    "model.name": MODELS,
    "model.space_time_module": SPACE_TIME_MODULES,
    "model.token_reducer": TOKEN_REDUCERS,
    "model.tokenizer": lambda: TOKENIZERS,
    "model.token_transformer": lambda: TOKEN_TRANSFORMERS,
    "model.token_fusion": lambda: TOKEN_FUSIONS,
    "model.classifier": lambda: CLASSIFIERS,
    "model.pretrained_format": lambda: FORMATS,
    "model.pretrained_inflation": lambda: INFLATIONS,
    "model.gelu": lambda: GELU_FORMS,
    "model.gap_norm": lambda: GAP_NORMS,
    "model.tokenlearner_pooling": lambda: POOLINGS,
}
for _key, _names in MODEL_CHOICES.items():
    register_choices(_key, _names)

# config keys that configure TokenLearnerModule: set to a non-default value, the built model must
# contain one.
TOKEN_LEARNER_KEYS = ("model.tokenizer", "model.token_transformer", "model.token_fusion")
# config keys that configure the tokenlearner_v1 reducer (GridTokenLearner): set to a non-default
# value, the built model must contain one.
GRID_TOKEN_LEARNER_KEYS = (
    "model.tokenlearner_conv_layers", "model.tokenlearner_conv_bias", "model.tokenlearner_pooling"
)


def list_models() -> list[str]:
    """Names accepted by ``model.name``."""
    return MODELS.names()


def build_model(cfg: ExperimentConfig) -> nn.Module:
    """Builds ``cfg.model.name`` with the config's values for the arguments its builder takes."""
    try:
        builder = MODELS.get(cfg.model.name)
    except RegistryError as error:
        raise ConfigError(f"model.name: {error}") from None
    arguments = model_arguments(cfg, builder)
    try:
        model = builder(**arguments)
    except CheckpointError as error:
        raise ConfigError(f"model.pretrained: {error}") from None
    except ValueError as error:
        keys = keys_named_in(str(error), arguments)
        if not keys:
            raise
        raise ConfigError(f"{', '.join(keys)}: {error}") from None
    check_token_learner_keys_are_used(cfg, model, arguments)
    check_grid_token_learner_keys_are_used(cfg, model)
    return model


def model_arguments(cfg: ExperimentConfig, builder: Any) -> dict[str, Any]:
    """The keyword arguments ``builder`` receives for ``cfg``."""
    accepted = inspect.signature(builder).parameters
    defaults = ExperimentConfig()
    key_of = {argument_name(key): key for key in BUILDER_KEYS}
    arguments = {}
    for key in BUILDER_KEYS:
        value = _get(cfg, key)
        if argument_name(key) in accepted:
            _check_choice(key, value)
            arguments[argument_name(key)] = value
        elif key.startswith("model.") and value != _get(defaults, key):
            taken = [key_of[a] for a in accepted if a in key_of]
            raise ConfigError(
                f"{key}={value!r} does not apply to model {cfg.model.name!r}, which takes: "
                f"{', '.join(taken)}"
            )
    return arguments


def argument_name(key: str) -> str:
    """The builder argument that config ``key`` fills: its leaf (``data.num_frames`` ->
    ``num_frames``)."""
    return key.rsplit(".", 1)[-1]


def keys_named_in(message: str, arguments: dict[str, Any]) -> list[str]:
    """The config keys of the builder ``arguments`` that ``message`` names as whole words."""
    return [
        key for key in BUILDER_KEYS
        if argument_name(key) in arguments
        and re.search(rf"\b{re.escape(argument_name(key))}\b", message)
    ]


def check_token_learner_keys_are_used(
    cfg: ExperimentConfig, model: nn.Module, arguments: dict[str, Any]
) -> None:
    """Raises if a TokenLearner key is set but ``model`` has no ``TokenLearnerModule``."""
    changed = _changed(cfg, TOKEN_LEARNER_KEYS)
    if not changed or any(isinstance(m, TokenLearnerModule) for m in model.modules()):
        return
    module = arguments.get("space_time_module")
    where = f" with model.space_time_module={module!r}" if module is not None else ""
    raise ConfigError(
        f"{', '.join(changed)} configures the TokenLearner module, but model "
        f"{cfg.model.name!r}{where} has none; choose a module with one (e.g. conv2d+tokenlearner)"
    )


def check_grid_token_learner_keys_are_used(cfg: ExperimentConfig, model: nn.Module) -> None:
    """Raises if a TokenLearner v1 reducer key is set but ``model`` has no ``GridTokenLearner``
    (``model.token_reducer=tokenlearner_v1`` with reducer layers)."""
    changed = _changed(cfg, GRID_TOKEN_LEARNER_KEYS)
    if not changed or any(isinstance(m, GridTokenLearner) for m in model.modules()):
        return
    raise ConfigError(
        f"{', '.join(changed)} configures the tokenlearner_v1 reducer, but model "
        f"{cfg.model.name!r} with model.token_reducer={cfg.model.token_reducer!r} has none"
    )


def _changed(cfg: ExperimentConfig, keys: tuple[str, ...]) -> list[str]:
    """``key=value`` for each of ``keys`` whose value differs from its default."""
    defaults = ExperimentConfig()
    return [f"{key}={_get(cfg, key)!r}" for key in keys if _get(cfg, key) != _get(defaults, key)]


def _check_choice(key: str, value: Any) -> None:
    error = choice_error(key, value)
    if error is not None:
        raise ConfigError(error)


def _get(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg
