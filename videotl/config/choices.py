"""Allowed values of config keys that name something another module owns.

A key such as ``data.decoder`` or ``model.token_reducer`` names a decoder backend or a registered
reducer. The list of valid names lives with its owner (the reader's backends, the reducer
registry), never in a second copy here: the owner calls ``register_choices(key, names)`` when it
is imported, and ``load_config`` checks every registered key. The config package imports none of
the owners (dependencies point down); every tool imports them through the engine before it
loads a config, and each owner checks its value again when it builds, so a value is never used
unchecked.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Collection

# config key -> a function returning the names its owner accepts now (registries grow).
_CHOICES: dict[str, Callable[[], Collection[Any]]] = {}


def register_choices(key: str, names: Callable[[], Collection[Any]]) -> None:
    """Declares that ``key``'s value must be one of ``names()``; one owner per key."""
    owner = _CHOICES.get(key)
    if owner is not None and owner is not names:
        raise ValueError(f"config key {key!r} already has its allowed values registered")
    _CHOICES[key] = names


def registered_choices() -> dict[str, Collection[Any]]:
    """The allowed values of every registered key, as their owners list them now."""
    return {key: names() for key, names in sorted(_CHOICES.items())}


def choice_error(key: str, value: Any) -> str | None:
    """The error message for ``key=value`` (None when the value is allowed or no owner has
    registered the key yet): the allowed values and the closest ones."""
    names = _CHOICES.get(key)
    if names is None or value is None:
        return None
    allowed = names()
    if value in allowed:
        return None
    listed = ", ".join(repr(name) for name in allowed)
    close = difflib.get_close_matches(str(value), [str(name) for name in allowed], n=3,
                                      cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"config key {key!r} must be one of {listed}, got {value!r}{hint}"
