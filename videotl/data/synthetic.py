"""Synthetic datasets in the official formats, for demos and tests without downloads.

``make_synthetic_dataset(kind, root, seed=...)`` writes real H.264 MP4 videos and the
annotation files the real dataset has:

* ``"kinetics"``: 10 classes, 3 s videos at 15 fps; ``train.csv``, ``val.csv``, ``test.csv``
  (the validation videos, as commonly done for Kinetics) of ``path label`` rows,
  ``classes.txt``; videos ``<split>/<class>/<id>.mp4``. Default 200 train + 50 val videos.
* ``"avid"``: 12 classes, 2-4 s videos at 12, 15 or 24 fps, one in five portrait; same files.
  Default 240 train + 60 val videos.
* ``"charades"``: 8 action classes, 20-30 s videos at 15 fps, each with 2-4 timed actions that
  may overlap; ``Charades_v1_train.csv`` / ``Charades_v1_test.csv`` with the official columns,
  ``Charades_v1_classes.txt``; videos ``<id>.mp4``. Default 32 train + 12 test videos.

Classes differ only in motion (see ``synthetic_render``): moving up vs down, approaching vs
receding, appearing vs vanishing, spinning vs staying still, blinking, sliding sideways, ...
Everything is drawn from ``seed``: the same seed gives the same files. The videos of one
dataset are rendered by a pool of processes (one per CPU core, at most 8). ``synthetic.json``
records what a set was made with, so that ``ensure_synthetic_dataset`` refuses a folder made
with other sizes instead of training on it silently.
"""

from __future__ import annotations

import csv
import fcntl
import json
import logging
import os
import shutil
import string
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from videotl.data.avid import AVID
from videotl.data.charades import CHARADES, COLUMNS
from videotl.data.kinetics import KINETICS
from videotl.data.registry import DatasetSpec
from videotl.data.synthetic_render import make_actor, write_video
from videotl.errors import InputError

logger = logging.getLogger(__name__)

RECORD_FILE = "synthetic.json"
# The config key that sets each recorded option (``data.<key>``), named in mismatch errors.
_CONFIG_KEYS = {"seed": "synthetic_seed", "train_videos": "synthetic_train_videos",
                "eval_videos": "synthetic_eval_videos", "short_side": "synthetic_short_side",
                "video_dir": "video_dir"}


class SyntheticDataMismatch(InputError, ValueError):
    """A folder holds a synthetic set made with other options than those asked for."""


_MOTIONS_10 = ("moving up", "moving down", "sliding sideways", "approaching", "receding",
               "appearing", "vanishing", "spinning", "blinking", "staying still")


@dataclass(frozen=True)
class SyntheticSpec:
    """What a synthetic kind looks like; sizes are the demo defaults. ``dataset`` gives the file
    names, the video folder and the label kind: multi-label kinds get timed actions written in
    the Charades format, single-label kinds one motion per video in ``path label`` lists."""

    dataset: DatasetSpec
    classes: tuple[str, ...]
    train_videos: int
    eval_videos: int
    seconds: tuple[float, float]
    fps_choices: tuple[float, ...]
    portrait_fraction: float = 0.0
    actions_per_video: tuple[int, int] = (1, 1)
    action_seconds: tuple[float, float] = (0.0, 0.0)


# In this order: a kind's position seeds its videos, so reordering would change every file.
SPECS = {spec.dataset.name: spec for spec in (
    SyntheticSpec(KINETICS, _MOTIONS_10, 200, 50, (3.0, 3.0), (15.0,)),
    SyntheticSpec(
        CHARADES,
        ("moving up", "moving down", "sliding sideways", "approaching", "receding", "spinning",
         "blinking", "staying still"),
        32, 12, (20.0, 30.0), (15.0,), actions_per_video=(2, 4), action_seconds=(4.0, 12.0)),
    SyntheticSpec(AVID, _MOTIONS_10 + ("bouncing", "pulsing"), 240, 60, (2.0, 4.0),
                  (12.0, 15.0, 24.0), portrait_fraction=0.2),
)}
KINDS = tuple(SPECS)  # ("kinetics", "charades", "avid")


@dataclass(frozen=True)
class VideoPlan:
    """Everything needed to render one video; ``actions`` are ``(motion, start_s, end_s)``."""

    relative_path: str
    seed: tuple[int, ...]
    actions: tuple[tuple[str, float, float], ...]
    seconds: float
    fps: float
    width: int
    height: int


@dataclass(frozen=True)
class SyntheticSummary:
    """What ``make_synthetic_dataset`` wrote."""

    kind: str
    root: Path
    classes: tuple[str, ...]
    videos: dict[str, int]  # split -> number of videos
    frames: int


def make_synthetic_dataset(
    kind: str,
    root: str | os.PathLike,
    seed: int = 0,
    train_videos: int | None = None,
    eval_videos: int | None = None,
    short_side: int = 128,
    video_dir: str | None = None,
    processes: int | None = None,
) -> SyntheticSummary:
    """Writes a synthetic ``kind`` dataset (``"kinetics"``, ``"charades"``, ``"avid"``) into
    ``root``.

    Args:
        train_videos, eval_videos: videos in the training and evaluation (val / test) splits;
            None for the kind's defaults. Single-label kinds spread them evenly over classes.
        short_side: frame height (width for portrait videos) in pixels; 4:3 frames.
        video_dir: folder under ``root`` for the videos (default: ``Charades_v1_480`` for
            Charades, ``root`` itself otherwise), matching ``data.video_dir``.
        processes: rendering processes (default: CPU cores, at most 8; 1 renders in-process).

    Raises:
        ValueError: unknown kind or bad size.
        FileExistsError: ``root`` already holds the kind's annotation files.
    """
    if kind not in SPECS:
        raise ValueError(f"unknown synthetic dataset kind {kind!r}; expected one of {KINDS}")
    if short_side < 16:
        raise ValueError(f"short_side must be at least 16 pixels, got {short_side}")
    spec = SPECS[kind]
    root = Path(root)
    present = [name for name in spec.dataset.annotation_files if (root / name).exists()]
    if present:
        raise FileExistsError(f"{root} already holds {present}; choose an empty folder")
    record = synthetic_record(kind, seed, train_videos, eval_videos, short_side, video_dir)
    folder = record["video_dir"]
    plans = _plan(kind, spec, seed, record["train_videos"], record["eval_videos"], short_side)
    frames = _render(root / folder if folder else root, plans, short_side, processes)
    root.mkdir(parents=True, exist_ok=True)
    (root / RECORD_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    _write_annotations(spec, root, plans)
    return SyntheticSummary(kind, root, spec.classes,
                            {split: len(p) for split, p in plans.items()}, frames)


def synthetic_record(kind: str, seed: int = 0, train_videos: int | None = None,
                     eval_videos: int | None = None, short_side: int = 128,
                     video_dir: str | None = None) -> dict:
    """What a ``kind`` set made with these options is, defaults filled in (``synthetic.json``)."""
    spec = SPECS[kind]
    return {"kind": kind, "seed": seed, "train_videos": train_videos or spec.train_videos,
            "eval_videos": eval_videos or spec.eval_videos, "short_side": short_side,
            "video_dir": spec.dataset.video_dir if video_dir is None else video_dir}


def check_record(kind: str, root: str | os.PathLike, **options) -> None:
    """Raises ``SyntheticDataMismatch`` if ``root/synthetic.json`` says the set there was made
    with other options than ``options`` (those of ``make_synthetic_dataset``). A folder without
    the record (a set made before it existed, or real data) is not checked."""
    path = Path(root) / RECORD_FILE
    if not path.is_file():
        return
    try:
        made = json.loads(path.read_text(encoding="utf-8"))  # JSONDecodeError is a ValueError
        if not isinstance(made, dict):
            raise ValueError(f"a JSON {type(made).__name__}, not an object")
    except ValueError as error:  # UnicodeDecodeError is one too
        raise SyntheticDataMismatch(
            f"{path} is not a record of a synthetic set ({error}): delete it to use the set "
            f"without the check") from None
    options.pop("processes", None)
    asked = synthetic_record(kind, **options)
    for key, value in asked.items():
        if made.get(key) != value:
            where = f" (data.{_CONFIG_KEYS[key]})" if key in _CONFIG_KEYS else ""
            raise SyntheticDataMismatch(
                f"{root} holds a synthetic set made with {key}={made.get(key)!r}, not "
                f"{value!r} as asked{where}: delete that folder, choose another data.root, or "
                f"set data.synthetic=false to use it as it is")


def annotations_present(kind: str, root: str | os.PathLike) -> bool:
    """Whether ``root`` holds all the annotation files of dataset ``kind``."""
    return all((Path(root) / name).is_file() for name in SPECS[kind].dataset.annotation_files)


def ensure_synthetic_dataset(kind: str, root: str | os.PathLike, **options) -> bool:
    """Generates the dataset into ``root`` unless its annotation files are there already.

    Safe when several processes call it at once (e.g. one per GPU): a lock file next to
    ``root`` lets one generate, into a temporary folder moved into ``root`` when complete
    (annotation files last); the others wait and then find it. Returns True if it generated.

    Raises:
        SyntheticDataMismatch: ``root`` holds a set made with other options (``check_record``).
    """
    root = Path(root)
    if annotations_present(kind, root):
        check_record(kind, root, **options)
        return False
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.synthetic.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if annotations_present(kind, root):
            check_record(kind, root, **options)
            return False
        staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.staging-", dir=root.parent))
        try:
            logger.info("generating a synthetic %s dataset in %s", kind, root)
            summary = make_synthetic_dataset(kind, staging, **options)
            _move_into(staging, root, SPECS[kind].dataset.annotation_files)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("synthetic %s dataset ready in %s: %s videos", kind, root, summary.videos)
    return True


def _move_into(staging: Path, root: Path, annotation_files: Sequence[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    entries = sorted(staging.iterdir(), key=lambda p: (p.name in annotation_files, p.name))
    clashes = [str(root / p.name) for p in entries if (root / p.name).exists()]
    if clashes:
        raise FileExistsError(f"cannot generate synthetic data into {root}: {clashes} exist")
    for entry in entries:
        os.replace(entry, root / entry.name)


def _plan(kind: str, spec: SyntheticSpec, seed: int, train_videos: int, eval_videos: int,
          short_side: int) -> dict[str, list[VideoPlan]]:
    kind_code = KINDS.index(kind)
    ids = _video_ids(np.random.default_rng([seed, kind_code, 1 << 20]), train_videos + eval_videos)
    plans = {}
    for split_code, (split, count) in enumerate((("train", train_videos), ("val", eval_videos))):
        split_ids = ids[:count] if split == "train" else ids[train_videos:]
        plans[split] = [
            _plan_video(spec, split, i, split_ids[i], short_side,
                        (seed, kind_code, split_code, i))
            for i in range(count)
        ]
    return plans


def _plan_video(spec: SyntheticSpec, split: str, index: int, video_id: str,
                short_side: int, seed: tuple[int, ...]) -> VideoPlan:
    rng = np.random.default_rng(seed + (0,))
    seconds = round(float(rng.uniform(*spec.seconds)), 2)
    fps = float(rng.choice(spec.fps_choices))
    long_side = 2 * round(short_side * 4 / 3 / 2)
    width, height = (short_side, long_side) if rng.random() < spec.portrait_fraction else (
        long_side, short_side)
    if spec.dataset.multilabel:
        actions = _timed_actions(spec, seconds, rng)
        path = f"{video_id}.mp4"
    else:
        motion = spec.classes[index % len(spec.classes)]
        actions = ((motion, 0.0, seconds),)
        path = f"{split}/{motion.replace(' ', '_')}/{video_id}.mp4"
    return VideoPlan(path, seed, actions, seconds, fps, width, height)


def _timed_actions(spec: SyntheticSpec, seconds: float,
                   rng: np.random.Generator) -> tuple[tuple[str, float, float], ...]:
    count = int(rng.integers(spec.actions_per_video[0], spec.actions_per_video[1] + 1))
    actions = []
    for _ in range(count):
        length = float(rng.uniform(*spec.action_seconds))
        start = round(float(rng.uniform(0.0, seconds - length)), 2)
        actions.append((str(rng.choice(spec.classes)), start, round(start + length, 2)))
    return tuple(sorted(actions, key=lambda action: action[1]))


def _video_ids(rng: np.random.Generator, count: int) -> list[str]:
    alphabet = np.array(list(string.ascii_uppercase + string.digits))
    ids: dict[str, None] = {}
    while len(ids) < count:
        ids.setdefault("".join(rng.choice(alphabet, 5)))
    return list(ids)


def _render(folder: Path, plans: dict[str, list[VideoPlan]], short_side: int,
            processes: int | None) -> int:
    jobs = [(folder, plan, short_side) for split in plans for plan in plans[split]]
    workers = processes or min(os.cpu_count() or 1, 8)
    if workers <= 1 or len(jobs) < 4:
        return sum(_render_one(job) for job in jobs)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(_render_one, jobs, chunksize=4))


def _render_one(job: tuple[Path, VideoPlan, int]) -> int:
    folder, plan, short_side = job
    rng = np.random.default_rng(plan.seed + (1,))
    actors = [make_actor(motion, start, end, short_side, rng)
              for motion, start, end in plan.actions]
    return write_video(folder / plan.relative_path, actors, plan.seconds, plan.fps,
                       plan.width, plan.height, rng)


def _write_annotations(spec: SyntheticSpec, root: Path,
                       plans: dict[str, list[VideoPlan]]) -> None:
    """The class file and each split's file; the evaluation videos serve "val" and "test"
    (multi-label kinds: in the Charades format, single-label kinds: ``path label`` lists)."""
    codes = {name: f"c{i:03d}" for i, name in enumerate(spec.classes)}
    if spec.dataset.multilabel:
        class_lines = [f"{codes[name]} {name.capitalize()}" for name in spec.classes]
    else:
        class_lines = list(spec.classes)
    (root / spec.dataset.class_file).write_text("".join(f"{line}\n" for line in class_lines),
                                                encoding="utf-8")
    written: set[str] = set()
    for split in ("train", "val", "test"):
        filename = spec.dataset.split_file(split)
        if filename in written:  # e.g. Charades' val and test splits share one file
            continue
        written.add(filename)
        rows = plans["train" if split == "train" else "val"]
        if spec.dataset.multilabel:
            _write_charades_csv(root / filename, rows, codes)
        else:
            _write_list(root / filename, rows, spec.classes)


def _write_list(path: Path, plans: list[VideoPlan], classes: Sequence[str]) -> None:
    lines = [f"{plan.relative_path} {classes.index(plan.actions[0][0])}" for plan in plans]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_charades_csv(path: Path, plans: list[VideoPlan], codes: dict[str, str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(COLUMNS)
        for n, plan in enumerate(plans):
            motions = [motion for motion, _, _ in plan.actions]
            script = "A shape is " + ", then a shape is ".join(motions) + "."
            actions = ";".join(f"{codes[m]} {s:.2f} {e:.2f}" for m, s, e in plan.actions)
            writer.writerow([Path(plan.relative_path).stem, f"S{n % 20:02d}", "Synthetic room",
                             7, 7, "Yes", script, "shape", script, actions,
                             f"{plan.seconds:.2f}"])
