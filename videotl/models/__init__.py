"""Models: ``build_model(cfg)``, ``list_models()``, ``register_model(name)``."""

from videotl.models.build import build_model, list_models, model_arguments
from videotl.models.registry import MODELS, register_model

__all__ = ["MODELS", "build_model", "list_models", "model_arguments", "register_model"]
