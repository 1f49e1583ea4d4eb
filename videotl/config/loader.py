"""Loading, validating and saving experiment configs (YAML + ``key=value`` overrides)."""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import typing
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from videotl.config import yaml_unique
from videotl.config.checks import bounds_error, consistency_error, list_item_type, type_words
from videotl.config.schema import ExperimentConfig
from videotl.errors import InputError
from videotl.files import write_text_atomic

BASE_KEY = "_base_"
# Config keys that were renamed: old key -> new key. An old key is refused with its new name.
RENAMED_KEYS = {
    "model.token_pooling_iterations": "model.clustering_iterations",
}
_KEY_PATTERN = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")


class ConfigError(InputError, ValueError):
    """A config file or override is invalid; the message names the key and the source."""


def load_config(
    path: str | os.PathLike | None = None, overrides: Sequence[str] = ()
) -> ExperimentConfig:
    """Reads ``path`` (following ``_base_`` files), applies ``key=value`` overrides, validates.

    Args:
        path: a YAML file, or None for the defaults.
        overrides: dotted ``key=value`` strings; values are parsed as YAML (``16``, ``0.1``,
            ``true``, ``null``, ``[1, 2]``).

    Returns:
        The validated ``ExperimentConfig``.

    Raises:
        ConfigError: unknown key (with close matches), wrong type, bad syntax, missing file, a
            key defined twice in a file, a bad ``_base_``, a value outside its key's range, keys
            inconsistent with each other (``videotl.config.checks``).
    """
    merged = OmegaConf.structured(ExperimentConfig)
    if path is not None:
        for source, values in _read_with_bases(Path(path), ()):
            merged = _merge(merged, values, source)
    for item in overrides:
        key, value = parse_override(item)
        merged = _merge(merged, _nest(key, value), f"override {item!r}")
    config = OmegaConf.to_object(merged)
    assert isinstance(config, ExperimentConfig)
    check_bounds(config)
    check_consistency(config)
    return config


def parse_override(item: str) -> tuple[str, Any]:
    """``"data.num_frames=16"`` -> ``("data.num_frames", 16)``."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not _KEY_PATTERN.match(key):
        raise ConfigError(
            f"bad override {item!r}: expected key=value with a lowercase dotted key, "
            "e.g. data.num_frames=16"
        )
    try:
        value = yaml_unique.safe_load(raw, root=key) if raw.strip() else ""
    except yaml_unique.DuplicateKeyError as error:
        raise ConfigError(f"bad override {item!r}: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"bad override {item!r}: cannot parse the value ({error})") from None
    return key, value


def save_config(config: ExperimentConfig, path: str | os.PathLike) -> None:
    """Writes the resolved config as YAML (loadable again with ``load_config``), atomically: a
    full disk leaves the previous file intact."""
    write_text_atomic(path, to_yaml(config))


def to_yaml(config: ExperimentConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(config))


def config_keys(node: Any = ExperimentConfig, prefix: str = "") -> list[str]:
    """All dotted leaf keys of the schema (or of one of its sections)."""
    keys = []
    for item in dataclasses.fields(node):
        full = f"{prefix}{item.name}"
        field_type = _resolve_type(node, item.name)
        if dataclasses.is_dataclass(field_type):
            keys.extend(config_keys(field_type, full + "."))
        else:
            keys.append(full)
    return keys


def check_bounds(config: ExperimentConfig) -> None:
    """Checks every key against its field's metadata bounds (``min``, ``max``, ``choices``,
    ``length``, ``order``, finiteness, ...; see ``videotl.config.checks``) and the keys that name
    something against their owners' lists (``videotl.config.choices``)."""
    error = bounds_error(config)
    if error is not None:
        raise ConfigError(error)


def check_consistency(config: ExperimentConfig) -> None:
    """Checks across keys (``data.train_crop_size`` against ``data.train_jitter_scales``, the
    shard keys against ``data.format``); run after ``check_bounds``, so every key is valid on
    its own."""
    error = consistency_error(config)
    if error is not None:
        raise ConfigError(error)


def _read_with_bases(path: Path, seen: tuple[Path, ...]) -> Iterable[tuple[str, dict]]:
    """Yields (source, mapping) for the base files of ``path`` (recursively), then ``path``."""
    resolved = path.resolve()
    if resolved in seen:
        chain = " -> ".join(str(p) for p in (*seen, resolved))
        raise ConfigError(f"config files include each other in a cycle: {chain}")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        values = yaml_unique.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml_unique.DuplicateKeyError as error:
        raise ConfigError(f"config file {path}: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"cannot parse config file {path}: {error}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(values)}")
    for base in _base_files(values, path):
        yield from _read_with_bases(path.parent / base, (*seen, resolved))
    yield str(path), values


def _base_files(values: dict, path: Path) -> list[str]:
    """Pops the ``_base_`` entry of ``path``'s mapping ``values``: one file or a list of files."""
    bases = values.pop(BASE_KEY, [])
    files = [bases] if isinstance(bases, str) else bases
    if not isinstance(files, list) or not all(isinstance(f, str) and f.strip() for f in files):
        raise ConfigError(
            f"config key {BASE_KEY!r} in {path} must be a file name or a list of file names "
            f"(non-empty strings, relative to {path.parent}), got {bases!r}"
        )
    return files


def _nest(key: str, value: Any) -> dict:
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def _merge(merged: DictConfig, values: dict, source: str) -> DictConfig:
    try:
        return OmegaConf.merge(merged, OmegaConf.create(values))
    except ConfigKeyError as error:
        raise ConfigError(_unknown_key_message(str(error.full_key), source)) from None
    except ValidationError as error:
        raise ConfigError(_type_message(error, values, source)) from None
    except OmegaConfBaseException as error:
        raise ConfigError(f"invalid config in {source}: {error}") from None


def _unknown_key_message(key: str, source: str) -> str:
    if key in RENAMED_KEYS:
        return f"unknown config key {key!r} in {source}: {key} was renamed to {RENAMED_KEYS[key]}"
    known = config_keys()
    if "." not in key:  # a top-level key may be a misspelt section
        known += sorted({k.split(".", 1)[0] for k in known if "." in k})
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    leaf = key.rsplit(".", 1)[-1]
    close += [k for k in known if k.endswith("." + leaf) and k not in close]
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown config key {key!r} in {source}{hint}"


def _type_message(error: ValidationError, values: dict, source: str) -> str:
    key = error.full_key
    if not key:
        section = next(iter(values))
        return (
            f"config key {section!r} in {source} is a section; set its keys instead, "
            f"e.g. {section}.<key>=value"
        )
    expected = _expected_type(str(key))
    got = _lookup(values, str(key))
    return (
        f"config key {key!r} in {source} expects {expected}, got {got!r} "
        f"({type(got).__name__})"
    )


def _expected_type(key: str) -> str:
    """What ``key``'s value must be, in words: ``data.mean`` -> "a list of numbers",
    ``data.mean[0]`` -> "a number", ``model.reducer_layers`` -> "a list of integers or null"."""
    node: Any = ExperimentConfig
    for part in re.findall(r"\[\d+\]|[^.\[\]]+", key):
        if part.startswith("["):
            node = list_item_type(node)
        elif dataclasses.is_dataclass(node):
            node = _resolve_type(node, part)
    return type_words(node)


def _resolve_type(cls: Any, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def _lookup(values: Any, key: str) -> Any:
    for part in re.split(r"\.|\[|\]", key):
        if part == "":
            continue
        if isinstance(values, dict) and part in values:
            values = values[part]
        elif isinstance(values, list) and part.isdigit() and int(part) < len(values):
            values = values[int(part)]
        else:
            return None
    return values
