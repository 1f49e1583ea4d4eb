import inspect

import pytest

from videotl.config import config_keys
from videotl.models import MODELS, list_models
from videotl.models.backbones.vivit import VisionTransformer
from videotl.models.build import BUILDER_KEYS, argument_name
from videotl.registry import Registry, RegistryError


def test_register_and_get():
    registry: Registry = Registry("thing")

    @registry.register("a")
    def build_a():
        return 1

    assert registry.get("a") is build_a
    assert "a" in registry and registry.names() == ["a"] and len(registry) == 1


def test_duplicate_names_are_refused():
    registry: Registry = Registry("thing")
    registry.add("a", 1)
    with pytest.raises(RegistryError, match="thing 'a' is already registered"):
        registry.add("a", 2)
    assert registry.get("a") == 1


def test_unknown_name_suggests_close_matches():
    registry: Registry = Registry("model")
    registry.add("vivit_b16", 1)
    registry.add("vivit_l16", 2)
    with pytest.raises(RegistryError, match=r"unknown model 'vivit_b61'; did you mean 'vivit_b16'"):
        registry.get("vivit_b61")


def test_every_model_builder_argument_is_named_like_the_leaf_of_its_config_key():
    leaves = [argument_name(key) for key in BUILDER_KEYS]
    assert len(set(leaves)) == len(leaves)  # one config key per argument name
    assert set(BUILDER_KEYS) <= set(config_keys())
    for name in list_models():
        arguments = set(inspect.signature(MODELS.get(name)).parameters)
        assert arguments <= set(leaves), (name, arguments - set(leaves))


def test_the_vision_transformer_takes_the_config_names_too():
    arguments = set(inspect.signature(VisionTransformer).parameters)
    assert {"train_crop_size", "reducer_tokens", "clustering_iterations", "token_reducer",
            "reducer_layers", "num_frames", "classifier"} <= arguments
    assert not {"image_size", "num_tokens", "token_pooling_iterations"} & arguments
