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
from typing import Any, Callable, Collection, Union

from videotl.registry import Registry

Owner = Union[Registry, Callable[[], Collection[Any]]]
# config key -> its owner: a registry (which grows), or a function returning the allowed values.
_CHOICES: dict[str, Owner] = {}


def register_choices(key: str, owner: Owner) -> None:
    """Declares that ``key``'s value must be a name of the registry ``owner`` or one of
    ``owner()``; one owner per key."""
    known = _CHOICES.get(key)
    if known is not None and known is not owner:
        raise ValueError(f"config key {key!r} already has its allowed values registered")
    _CHOICES[key] = owner


def registered_choices() -> dict[str, Collection[Any]]:
    """The allowed values of every registered key, as their owners list them now."""
    return {key: _names(owner) for key, owner in sorted(_CHOICES.items())}


def _names(owner: Owner) -> Collection[Any]:
    return owner.names() if isinstance(owner, Registry) else owner()


def choice_error(key: str, value: Any) -> str | None:
    """The error message for ``key=value`` (None when the value is allowed or no owner has
    registered the key yet). A registry's names get the registry's own message (close matches,
    every known name); other lists get the allowed values and the closest ones."""
    owner = _CHOICES.get(key)
    if owner is None or value is None:
        return None
    allowed = _names(owner)
    if value in allowed:
        return None
    if isinstance(owner, Registry):
        return f"{key}: {owner.unknown_message(value)}"
    listed = ", ".join(repr(name) for name in allowed)
    close = difflib.get_close_matches(str(value), [str(name) for name in allowed], n=3,
                                      cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"config key {key!r} must be one of {listed}, got {value!r}{hint}"
