"""Tar shards in the WebDataset layout: their names, their manifest, and reading a shard's
videos. ``videotl.data.shards`` reads a split's clips from them (``data.format=shards``).

Opening many small files is slow on network file systems and object stores; reading a few large
tar files front to back is not. ``data_prep/make_shards.py`` (``videotl.prep.shards``) packs the
videos of each split, in an order shuffled once with a fixed seed, into a folder holding

* ``<split>-000000.tar``, ``<split>-000001.tar``, ...: two members per video sharing its *key*
  (its position in the split's list, 8 digits): ``<key>.json``, its annotation (labels or timed
  actions, the original relative path, duration), and ``<key>.<ext>``, the video file's bytes
  under its original extension (lowercased, as WebDataset reads suffixes);
* ``<split>.json``: the manifest (``ShardManifest``): dataset, class names, every video's
  annotation in list order, each shard's name, size and keys in order, and the videos that
  could not be packed, with their annotations and the reason.

Reading never writes a file: a video's bytes go from the tar stream to the decoder in memory
(``VideoReader(..., data=bytes)``). The shards are opened with WebDataset's ``gopen`` (a local
path, ``file:``, ``pipe:<command>`` whose output is the tar, or the URL schemes WebDataset
knows) and read with its tar iterators; ``data.shard_urls`` may name them by a brace pattern
(``shards/{split}-{000000..000009}.tar``) or a command (``pipe:cat shards/{split}-...``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from webdataset.gopen import Pipe, gopen, set_options
from webdataset.shardlists import expand_urls
from webdataset.tariterators import base_plus_ext, group_by_keys, tar_file_expander

from videotl.config import ConfigError
from videotl.data.lists import AnnotationError, VideoEntry, parse_json, read_text
from videotl.errors import RunError

MANIFEST_FORMAT = "videotl-shards"
MANIFEST_VERSION = 2  # 2: failed videos carry their key and annotation
ANNOTATION_SUFFIX = "json"
KEY_DIGITS = 8


class ShardReadError(RunError, RuntimeError):
    """A shard cannot be opened or read, or differs from its manifest; the message names it."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot read shard {url}: {reason}")
        self.url, self.reason = url, reason


def shard_name(prefix: str, number: int) -> str:
    """``"train-000003.tar"``: the name of shard ``number`` of a split."""
    return f"{prefix}-{number:06d}.tar"


def manifest_path(folder: str | os.PathLike, split: str) -> Path:
    """``<folder>/<split>.json``."""
    return Path(folder) / f"{split}.json"


def shard_folder(root: str, shard_dir: str) -> Path:
    """The folder of the manifests (``data.shard_dir``, relative to ``data.root``)."""
    return Path(shard_dir) if os.path.isabs(shard_dir) else Path(root) / shard_dir


def video_key(position: int) -> str:
    """The key of the video at ``position`` in its split's list (no dot: WebDataset splits
    member names at the first dot)."""
    return f"{position:0{KEY_DIGITS}d}"


@dataclass(frozen=True)
class ShardVideo:
    """One packed video, as the manifest and its ``<key>.json`` member describe it.

    Attributes:
        key: the members' common name (``video_key``).
        video_id: how the dataset names it (``VideoEntry.video_id``).
        path: its file when packed, relative to the video folder (absolute when outside it).
        member: the tar member holding its bytes, ``<key>.<ext>``.
        label: class index (single-label datasets).
        actions: ``(class, start_s, end_s)`` (datasets with timed actions).
        duration: seconds of video (frames that decode / frame rate) when packed.
    """

    key: str
    video_id: str
    path: str
    member: str
    label: int | None = None
    actions: tuple[tuple[int, float, float], ...] = ()
    duration: float | None = None

    def annotation(self) -> dict[str, Any]:
        """The ``<key>.json`` member's content."""
        value: dict[str, Any] = {"key": self.key, "video_id": self.video_id, "path": self.path,
                                 "member": self.member}
        if self.label is not None:
            value["label"] = self.label
        if self.actions:
            value["actions"] = [list(action) for action in self.actions]
        if self.duration is not None:
            value["duration"] = self.duration
        return value

    @classmethod
    def from_annotation(cls, value: Any, where: str) -> "ShardVideo":
        if not isinstance(value, dict) or not all(
                isinstance(value.get(name), str) for name in ("key", "video_id", "path", "member")):
            raise AnnotationError(f"{where}: a video needs the strings key, video_id, path and "
                                  f"member, got {value!r}")
        try:
            actions = tuple((int(c), float(s), float(e)) for c, s, e in value.get("actions", ()))
            label = None if value.get("label") is None else int(value["label"])
            duration = None if value.get("duration") is None else float(value["duration"])
        except (TypeError, ValueError):
            raise AnnotationError(f"{where}: bad label, actions or duration in {value!r}") from None
        return cls(value["key"], value["video_id"], value["path"], value["member"], label,
                   actions, duration)


@dataclass(frozen=True)
class ShardFile:
    """One shard: its file name, bytes, and the keys of its videos in member order."""

    name: str
    bytes: int
    keys: tuple[str, ...]


@dataclass(frozen=True)
class ShardManifest:
    """A split's shards (the ``<split>.json`` file; module docstring).

    Attributes:
        dataset, split: ``data.dataset`` and the split.
        class_names: in index order.
        multilabel: targets are timed actions (``VideoEntry.actions``).
        prefix: the shards' name prefix: the split whose packing they are (a split listing the
            same videos as an earlier one, as Charades' test and val, shares its shards).
        shards: in stream order.
        videos: every packed video, in the split's list order.
        failed: ``(video, reason)`` of the listed videos not packed, in list order: the
            video's key, id, path and annotation (its ``member`` empty).
        excluded: video ids the config's ``data.exclude_file`` left out when packing.
        listed: videos the split listed (after exclusions): ``len(videos) + len(failed)``.
        seed: the seed of the order of videos into shards.
    """

    dataset: str
    split: str
    class_names: tuple[str, ...]
    multilabel: bool
    prefix: str
    shards: tuple[ShardFile, ...]
    videos: tuple[ShardVideo, ...]
    failed: tuple[tuple[ShardVideo, str], ...] = ()
    excluded: tuple[str, ...] = ()
    listed: int = 0
    seed: int = 0

    def to_json(self) -> str:
        value = {
            "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION,
            "dataset": self.dataset, "split": self.split, "multilabel": self.multilabel,
            "prefix": self.prefix, "seed": self.seed,
            "counts": {"listed": self.listed, "packed": len(self.videos),
                       "failed": len(self.failed), "excluded": len(self.excluded),
                       "shards": len(self.shards),
                       "bytes": sum(shard.bytes for shard in self.shards)},
            "class_names": list(self.class_names),
            "shards": [{"name": s.name, "bytes": s.bytes, "keys": list(s.keys)}
                       for s in self.shards],
            "videos": [video.annotation() for video in self.videos],
            "failed": [{**_without_member(video.annotation()), "reason": reason}
                       for video, reason in self.failed],
            "excluded": list(self.excluded),
        }
        return _json_lines(value)

    def entry_path(self, video: ShardVideo, shard: ShardFile) -> str:
        """How messages name a packed video: ``train-000003.tar:00000012.mp4 (a/b.mp4)``."""
        return f"{shard.name}:{video.member} ({video.path})"

    def entries(self) -> tuple[list[VideoEntry], dict[str, str]]:
        """The listed videos as ``VideoEntry`` in list order, packed (``path``: ``entry_path``)
        and not packed (``path``: the file's, as the manifest gives it), and each entry path's
        key."""
        shard_of = {key: shard for shard in self.shards for key in shard.keys}
        listed = [(video, self.entry_path(video, shard_of[video.key])) for video in self.videos]
        listed += [(video, video.path) for video, _ in self.failed]
        entries, keys = [], {}
        for video, path in sorted(listed, key=lambda pair: pair[0].key):  # keys: list positions
            entries.append(VideoEntry(path, video.video_id, video.label, video.actions))
            keys[path] = video.key
        return entries, keys


def _without_member(annotation: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in annotation.items() if name != "member"}


def _json_lines(value: dict[str, Any]) -> str:
    """``value`` as JSON with one line per key, and per item of a list of objects (a manifest
    of 10^5 videos stays readable and compact)."""
    parts = []
    for key, item in value.items():
        if isinstance(item, list) and item and isinstance(item[0], dict):
            rows = ",\n".join(f"  {json.dumps(row, ensure_ascii=False)}" for row in item)
            parts.append(f" {json.dumps(key)}: [\n{rows}\n ]")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(item, ensure_ascii=False)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def read_manifest(path: str | os.PathLike) -> ShardManifest:
    """The manifest at ``path``.

    Raises:
        AnnotationError: no such file, not a manifest, or videos and shards that disagree
            (naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"shard manifest not found: {path} (write the shards with "
                              "data_prep/make_shards.py, or check data.shard_dir)")
    value = parse_json(read_text(path, "shard manifest"), path)
    if not isinstance(value, dict) or value.get("format") != MANIFEST_FORMAT:
        raise AnnotationError(f"{path}: not a videotl shard manifest")
    if value.get("version") != MANIFEST_VERSION:
        raise AnnotationError(f"{path}: manifest version {value.get('version')!r}; this videotl "
                              f"reads version {MANIFEST_VERSION} (write the shards again)")
    try:
        shards = tuple(ShardFile(str(s["name"]), int(s["bytes"]), tuple(map(str, s["keys"])))
                       for s in value["shards"])
        videos = tuple(ShardVideo.from_annotation(v, str(path)) for v in value["videos"])
        manifest = ShardManifest(
            dataset=str(value["dataset"]), split=str(value["split"]),
            class_names=tuple(map(str, value["class_names"])),
            multilabel=bool(value["multilabel"]), prefix=str(value["prefix"]), shards=shards,
            videos=videos,
            failed=tuple((ShardVideo.from_annotation({**f, "member": ""}, str(path)),
                          str(f["reason"])) for f in value.get("failed", ())),
            excluded=tuple(map(str, value.get("excluded", ()))),
            listed=int(value["counts"]["listed"]), seed=int(value.get("seed", 0)))
    except (KeyError, TypeError, ValueError) as error:
        raise AnnotationError(f"{path}: malformed shard manifest ({type(error).__name__}: "
                              f"{error})") from None
    in_shards = [key for shard in shards for key in shard.keys]
    listed = [video.key for video in videos]
    if sorted(in_shards) != sorted(listed) or len(set(listed)) != len(listed):
        raise AnnotationError(f"{path}: the shards' keys and the videos' keys differ")
    if set(listed) & {video.key for video, _ in manifest.failed}:
        raise AnnotationError(f"{path}: a video is listed both as packed and as failed")
    return manifest


def shard_urls(pattern: str, folder: Path, manifest: ShardManifest) -> list[str]:
    """Where each of the manifest's shards is read from: ``folder/<name>`` when ``pattern`` is
    empty, else the URLs of ``pattern`` (``data.shard_urls``: ``{split}`` stands for the
    shards' prefix, braces expand as in WebDataset), one per shard in order, each naming its
    shard's file.

    Raises:
        ConfigError: the pattern gives another number of URLs, or a URL that does not name its
            shard.
    """
    if not pattern:
        return [str(folder / shard.name) for shard in manifest.shards]
    urls = expand_urls(pattern.replace("{split}", manifest.prefix))
    if len(urls) != len(manifest.shards):
        raise ConfigError(f"data.shard_urls={pattern!r} gives {len(urls)} URLs for the "
                          f"{len(manifest.shards)} shards of the {manifest.split} split")
    for url, shard in zip(urls, manifest.shards):
        if shard.name not in url:
            raise ConfigError(f"data.shard_urls={pattern!r}: URL {url!r} does not name shard "
                              f"{shard.name} (the URLs must follow the manifest's shards)")
    return urls


# -- reading ------------------------------------------------------------------------------
def read_shard(url: str, keys: Sequence[str]) -> Iterator[tuple[str, bytes, dict[str, Any]]]:
    """``(key, video bytes, annotation)`` of the videos ``keys`` of the shard at ``url``, in
    the shard's member order, which ``keys`` must follow. Members of other videos are skipped
    without reading their bytes into memory; reading stops after the last key.

    Raises:
        ShardReadError: the shard cannot be opened or read (a missing file, a failing
            command, a truncated tar), or lacks a key or a member (naming the shard).
    """
    expected = list(keys)
    if not expected:
        return
    wanted = set(expected)
    try:
        stream = gopen(url)
    except Exception as error:  # noqa: BLE001 - any scheme's failure to open, named below
        raise ShardReadError(url, _reason(error)) from None
    position = 0
    try:
        members = tar_file_expander([{"url": url, "stream": stream}], eof_value=None,
                                    select_files=lambda name: base_plus_ext(name)[0] in wanted)
        for sample in group_by_keys(members):
            key = sample["__key__"]
            if key != expected[position]:
                raise ShardReadError(url, f"holds video {key!r} where {expected[position]!r} "
                                          "was expected (the shard and its manifest differ)")
            data, annotation = _split_sample(sample, url)
            yield key, data, annotation
            position += 1
            if position == len(expected):
                return
        raise ShardReadError(url, f"ends before video {expected[position]!r} ({position} of "
                                  f"the {len(expected)} videos read){_exit_status(stream)}")
    except ShardReadError:
        raise
    except Exception as error:  # noqa: BLE001 - tarfile's, the pipe's and WebDataset's errors
        raise ShardReadError(url, f"{_reason(error)}{_exit_status(stream)}") from None
    finally:
        _close(stream)


def _split_sample(sample: dict[str, Any], url: str) -> tuple[bytes, dict[str, Any]]:
    key = sample["__key__"]
    videos = [name for name in sample if not name.startswith("__") and name != ANNOTATION_SUFFIX]
    if ANNOTATION_SUFFIX not in sample or len(videos) != 1:
        raise ShardReadError(url, f"video {key!r} needs one {key}.json and one video member, "
                                  f"found {sorted(n for n in sample if not n.startswith('__'))}")
    try:
        annotation = json.loads(sample[ANNOTATION_SUFFIX])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ShardReadError(url, f"{key}.json is not JSON ({error})") from None
    return sample[videos[0]], annotation


def _reason(error: BaseException) -> str:
    # WebDataset appends the stream and URL to an exception's arguments: keep the message.
    text = str(error.args[0]) if error.args else type(error).__name__
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
    return " ".join(text.split(" @ ")[0].split()) or type(error).__name__


def _close(stream: Any) -> None:
    # A command still writing when reading stops early dies of SIGPIPE: not an error here.
    set_options(stream, ignore_errors=True)
    try:
        stream.close()
    except OSError:
        pass


def _exit_status(stream: Any) -> str:
    """``" (command exit status 1)"`` for a ``pipe:`` whose command failed, else ``""``."""
    if not isinstance(stream, Pipe):
        return ""
    _close(stream)
    status = stream.proc.poll()
    return f" (command exit status {status})" if status not in (None, 0) else ""
