"""The two kinds of failure a user can act on, and the exit status a tool gives each.

Every anticipated error of videotl derives from one of them:

- ``InputError``: what the user gave is wrong or missing (a config key, a model or dataset name,
  a list file, a checkpoint, the device): exit status 2;
- ``RunError``: the run could not go on (too many videos failed to decode, a loss became
  non-finite, an encoder failed): exit status 1.

The tools print them as one line (``videotl.utils.cli.run_tool``), as they do for a full or
read-only disk; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class VideotlError(Exception):
    """Base of the anticipated errors; ``exit_status`` is what a tool exits with."""

    exit_status = 1


class InputError(VideotlError):
    """A config, name, file or setting the user gave is wrong; the message names it."""

    exit_status = 2


class RunError(VideotlError):
    """The run cannot go on; the message says why and names the file or step."""

    exit_status = 1
