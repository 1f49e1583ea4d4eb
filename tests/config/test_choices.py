"""Config keys that name something another module owns are checked at load time against that
module's own list (videotl.config.choices), and the schema keeps no second copy."""

import dataclasses

import pytest

import videotl.engine.run  # noqa: F401  (imports every owner, as every tool does)
from videotl.config import ConfigError, ExperimentConfig, load_config, registered_choices
from videotl.config import choices
from videotl.config.choices import register_choices
from videotl.data.registry import DATASETS
from videotl.data.shards import FORMATS as DATA_FORMATS
from videotl.data.video_reader import BACKENDS
from videotl.engine.optim import OPTIMIZERS
from videotl.engine.precision import PRECISIONS
from videotl.evaluation.ensemble import AGGREGATIONS
from videotl.models import MODELS
from videotl.models.weights import FORMATS
from videotl.models.weights.timm import INFLATIONS
from videotl.models.backbones.vivit import CLASSIFIERS, GAP_NORMS
from videotl.models.layers import TOKEN_FUSIONS, TOKEN_TRANSFORMERS, TOKENIZERS
from videotl.models.layers.mlp import GELU_FORMS
from videotl.models.layers.token_learner import POOLINGS
from videotl.models.reducers import TOKEN_REDUCERS
from videotl.models.space_time import SPACE_TIME_MODULES

OWNERS = {
    "data.dataset": DATASETS.names(),
    "data.decoder": BACKENDS,
    "data.format": DATA_FORMATS,
    "model.classifier": CLASSIFIERS,
    "model.gap_norm": GAP_NORMS,
    "model.gelu": GELU_FORMS,
    "model.name": MODELS.names(),
    "model.pretrained_format": FORMATS,
    "model.pretrained_inflation": INFLATIONS,
    "model.space_time_module": SPACE_TIME_MODULES.names(),
    "model.token_fusion": TOKEN_FUSIONS,
    "model.token_reducer": TOKEN_REDUCERS.names(),
    "model.token_transformer": TOKEN_TRANSFORMERS,
    "model.tokenizer": TOKENIZERS,
    "model.tokenlearner_pooling": POOLINGS,
    "solver.optimizer": OPTIMIZERS,
    "test.aggregation": AGGREGATIONS,
    "train.precision": PRECISIONS,
}


def test_every_named_key_is_checked_against_its_owners_list():
    assert {key: list(names) for key, names in registered_choices().items()} == {
        key: list(names) for key, names in OWNERS.items()}


def schema_fields(node=ExperimentConfig, prefix=""):
    for item in dataclasses.fields(node):
        if dataclasses.is_dataclass(item.default_factory if item.default_factory
                                    is not dataclasses.MISSING else None):
            yield from schema_fields(item.default_factory, f"{prefix}{item.name}.")
        else:
            yield f"{prefix}{item.name}", item


def test_the_schema_keeps_no_copy_of_an_owners_list():
    fields = dict(schema_fields())
    assert set(OWNERS) <= set(fields)
    assert [key for key in OWNERS if "choices" in fields[key].metadata] == []


@pytest.mark.parametrize("key, value, close", [
    ("data.decoder", "decrod", "decord"),
    ("data.format", "shard", "shards"),
    ("train.precision", "bf61", "bf16"),
    ("test.aggregation", "maximum", "max"),
    ("model.tokenizer", "fixed-grid", "fixed_grid"),
])
def test_unknown_values_are_refused_at_load_time_with_close_matches(key, value, close):
    allowed = ", ".join(repr(name) for name in OWNERS[key])
    expected = f"config key '{key}' must be one of {allowed}, got '{value}'; did you mean '{close}'"
    with pytest.raises(ConfigError) as error:
        load_config(None, [f"{key}={value}"])
    assert str(error.value).startswith(expected)


@pytest.mark.parametrize("key, registry, value, close", [
    ("data.dataset", DATASETS, "kinetic", "kinetics"),
    ("model.space_time_module", SPACE_TIME_MODULES, "conv2d+tokenlerner", "conv2d+tokenlearner"),
    ("model.name", MODELS, "x2plus1d_n", "x2plus1d_m"),
])
def test_registered_names_get_the_registrys_own_message_at_load_time(key, registry, value,
                                                                     close):
    with pytest.raises(ConfigError) as error:
        load_config(None, [f"{key}={value}"])
    assert str(error.value) == f"{key}: {registry.unknown_message(value)}"
    assert f"did you mean '{close}'" in str(error.value)


def test_a_name_an_owner_registers_later_becomes_valid(monkeypatch):
    monkeypatch.setattr(choices, "_CHOICES", dict(choices._CHOICES))
    names = ["first"]
    register_choices("output_dir", lambda: names)
    with pytest.raises(ConfigError, match="must be one of 'first', got 'second'"):
        load_config(None, ["output_dir=second"])
    names.append("second")
    assert load_config(None, ["output_dir=second"]).output_dir == "second"
    with pytest.raises(ValueError, match="'output_dir' already has its allowed values"):
        register_choices("output_dir", lambda: ["other"])
