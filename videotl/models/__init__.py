"""Models: ``build_model(cfg)``, ``list_models()``, ``register_model(name)``, and
``load_trained_model(cfg, checkpoint, device)`` for a trained one."""

from videotl.models.build import build_model, list_models, model_arguments
from videotl.models.registry import MODELS, register_model
from videotl.models.trained import load_trained_model, set_memory_format

__all__ = [
    "MODELS", "build_model", "list_models", "load_trained_model", "model_arguments",
    "register_model", "set_memory_format",
]
