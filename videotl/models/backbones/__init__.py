"""Backbone families; importing this package registers their models."""

from videotl.models.backbones import vivit, x2plus1d  # noqa: F401
