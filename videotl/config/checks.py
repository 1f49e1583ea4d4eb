"""What a valid config is: each key's bounds (from the schema's field metadata), then the checks
that span several keys. Each function returns the error message (None when the config passes);
``videotl.config.loader`` raises it as a ``ConfigError``. Messages are one line naming the key
and the allowed range.

Field metadata (``videotl.config.schema``); on a list, the bounds hold for every value:

- ``min`` / ``max``: inclusive bounds; ``above`` / ``below``: exclusive ones;
- ``choices``: the allowed values;
- ``length``: a list's exact number of values, ``items`` what they are ("R, G, B");
- ``order``: a list's values are ``"increasing"`` or ``"non-decreasing"``;
- ``nonempty``: a string that may not be empty (or blank);
- ``finite``: every float value must be finite (no NaN or infinity), unless a field sets
  ``finite=False``: no float in this toolkit means anything when it is NaN or infinite.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import typing
from typing import Any, Optional, Union

from videotl.config.choices import choice_error

# metadata key -> (test the value must pass, the bound in words)
_BOUNDS = {
    "min": (operator.ge, ">="),
    "above": (operator.gt, ">"),
    "max": (operator.le, "<="),
    "below": (operator.lt, "<"),
}
_ORDERS = {"increasing": operator.lt, "non-decreasing": operator.le}
_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
_PLURAL_WORDS = {int: "integers", float: "numbers", bool: "true/false values", str: "strings"}


def type_words(hint: Any) -> str:
    """A schema type in words: ``Optional[List[int]]`` -> "a list of integers or null"."""
    inner = _optional_inner(hint)
    if inner is not None:
        return f"{type_words(inner)} or null"
    if typing.get_origin(hint) is list:
        return f"a list of {_PLURAL_WORDS.get(list_item_type(hint), 'values')}"
    if dataclasses.is_dataclass(hint):
        return "a section of keys"
    return _TYPE_WORDS.get(hint, getattr(hint, "__name__", str(hint)))


def list_item_type(hint: Any) -> Any:
    """``List[int]`` or ``Optional[List[int]]`` -> ``int`` (``Any`` when unknown)."""
    hint = _optional_inner(hint) or hint
    args = typing.get_args(hint) if typing.get_origin(hint) is list else ()
    return args[0] if args else Any


def bounds_error(config: Any, prefix: str = "") -> Optional[str]:
    """The first key of ``config`` (a schema dataclass) outside its metadata bounds or its
    owner's list of names (``videotl.config.choices``), as a message; None when all pass."""
    hints = typing.get_type_hints(type(config))
    for item in dataclasses.fields(config):
        value, key = getattr(config, item.name), f"{prefix}{item.name}"
        if dataclasses.is_dataclass(value):
            error = bounds_error(value, key + ".")
        elif isinstance(value, list):
            error = _list_error(key, value, item.metadata, hints[item.name])
        else:
            error = _value_error(key, value, item.metadata)
        error = error or choice_error(key, value)
        if error is not None:
            return error
    return None


# data.* keys read only with data.format=shards (videotl.data.build.shard_dataset).
SHARD_KEYS = ("shard_dir", "shard_urls", "shuffle_buffer")


def consistency_error(config: Any) -> Optional[str]:
    """Checks across keys, run once every key passed ``bounds_error`` on its own.

    ``data.train_crop_size`` <= the smaller of ``data.train_jitter_scales``: the random crop is
    cut from a clip whose short side was resized into that range. ``data.test_crop_size`` needs
    no other key: test clips are resized to it before they are cropped, and every model takes
    any input side (ViT/ViViT interpolate their position embeddings).

    ``SHARD_KEYS`` keep their defaults unless ``data.format=shards``: other formats never read
    them, and a setting never goes silently unused (as a ``model.*`` key the chosen model does
    not take, ``videotl.models.build``). No key is refused the other way round: the keys of
    the files (``data.video_dir``, ``data.synthetic``, ...) also describe the dataset that
    ``data_prep/make_shards.py`` packs from the same config.
    """
    data = config.data
    smallest = data.train_jitter_scales[0]
    if data.train_crop_size > smallest:
        return (
            f"config key 'data.train_crop_size' must be <= the smaller training scale "
            f"data.train_jitter_scales[0] ({smallest}), got {data.train_crop_size}: raise "
            f"data.train_jitter_scales or lower the crop"
        )
    return _format_error(data)


def _format_error(data: Any) -> Optional[str]:
    """The first ``SHARD_KEYS`` key set (not its default) when ``data.format`` is not shards."""
    if data.format == "shards":
        return None
    defaults = type(data)()
    for name in SHARD_KEYS:
        value = getattr(data, name)
        if value != getattr(defaults, name):
            return (f"config key 'data.{name}' is read only with data.format=shards, got "
                    f"{value!r} with data.format={data.format!r}: remove it or set "
                    "data.format=shards")
    return None


def _value_error(key: str, value: Any, bounds: dict) -> Optional[str]:
    """The message for a single (non-list) value outside its bounds."""
    if value is None:
        return None
    if _non_finite(value, bounds):
        allowed = " ".join(filter(None, ["a finite number", _range_words(bounds)]))
        return f"config key {key!r} must be {allowed}, got {value!r}"
    if bounds.get("nonempty") and not str(value).strip():
        return f"config key {key!r} must be a non-empty string, got {value!r}"
    broken = _broken_bound(value, bounds)
    if broken is not None:
        return f"config key {key!r} must be {broken}, got {value!r}"
    if "choices" in bounds and value not in bounds["choices"]:
        choices = ", ".join(repr(c) for c in bounds["choices"])
        return f"config key {key!r} must be one of {choices}, got {value!r}"
    return None


def _list_error(key: str, values: list, bounds: dict, hint: Any) -> Optional[str]:
    """The message for a list with the wrong length, a value out of bounds or out of order."""
    order = _ORDERS.get(bounds.get("order"))
    wrong = (
        ("length" in bounds and len(values) != bounds["length"])
        or any(_non_finite(v, bounds) or _broken_bound(v, bounds) for v in values)
        or (order is not None and not all(map(order, values, values[1:])))
    )
    if not wrong:
        return None
    return f"config key {key!r} must hold {_list_rule(bounds, hint)}, got {values!r}"


def _list_rule(bounds: dict, hint: Any) -> str:
    """``"2 finite numbers (beta1, beta2), each in [0.0, 1.0)"``."""
    item = list_item_type(hint)
    noun = _PLURAL_WORDS.get(item, "values")
    if item is float and bounds.get("finite", True):
        noun = "finite " + noun
    words = f"{bounds['length']} {noun}" if "length" in bounds else noun
    if "items" in bounds:
        words += f" ({bounds['items']})"
    if _range_words(bounds):
        words += f", each {_range_words(bounds)}"
    if "order" in bounds:
        words += f", {bounds['order']}"
    return words


def _non_finite(value: Any, bounds: dict) -> bool:
    return isinstance(value, float) and bounds.get("finite", True) and not math.isfinite(value)


def _broken_bound(value: Any, bounds: dict) -> Optional[str]:
    """The first bound ``value`` breaks, in words (``">= 1"``); None when it keeps them all."""
    for name, (holds, sign) in _BOUNDS.items():
        if name in bounds and not holds(value, bounds[name]):
            return f"{sign} {bounds[name]}"
    return None


def _range_words(bounds: dict) -> str:
    """``{"min": 0, "below": 1}`` -> ``"in [0, 1)"``; one bound -> ``">= 0"``; none -> ``""``."""
    low = [(name, bounds[name]) for name in ("min", "above") if name in bounds]
    high = [(name, bounds[name]) for name in ("max", "below") if name in bounds]
    if low and high:
        opening = "[" if low[0][0] == "min" else "("
        closing = "]" if high[0][0] == "max" else ")"
        return f"in {opening}{low[0][1]}, {high[0][1]}{closing}"
    return " ".join(f"{_BOUNDS[name][1]} {bound}" for name, bound in low + high)


def _optional_inner(hint: Any) -> Any:
    """``Optional[X]`` -> ``X``; None for any other type."""
    if typing.get_origin(hint) is not Union:
        return None
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return args[0] if len(args) == 1 else None
