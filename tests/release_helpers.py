"""Synthetic "raw releases" in the official formats (Kinetics CSV/JSON, AViD JSON, Charades v1),
made from the tiny synthetic datasets of conftest.py, and helpers for the data_prep tests."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import struct
from pathlib import Path

from videotl.data.lists import read_class_names

REPO = Path(__file__).resolve().parent.parent
# Names a shell would misread; the last one would create a file if a shell ever ran it.
HOSTILE_NAMES = ("-starts with dash", "it's \"quoted\"", "semi;colon & amp", "vidéo 日本",
                 "$(touch PWNED)", "back`tick` $HOME")


def load_script(name: str):
    """Imports ``data_prep/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(name, REPO / "data_prep" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_rows(root: Path, split: str) -> list[tuple[str, str]]:
    """``(relative video path, class name)`` of a synthetic Kinetics-like list."""
    classes = read_class_names(root / "classes.txt")
    rows = [line.rsplit(None, 1) for line in (root / f"{split}.csv").read_text().splitlines()]
    return [(path, classes[int(label)]) for path, label in rows]


def youtube_id(n: int) -> str:
    """An 11-character YouTube-like id; some start with '-' as real ones do."""
    return f"-{n:04d}_Ab-xy" if n % 2 else f"Q{n:04d}zZ_9-w"


def kinetics_release(synthetic: Path, target: Path, count: int = 6) -> dict:
    """Official-format Kinetics annotations and a raw video folder from a synthetic set.

    Train: CSV with the Kinetics-400 columns (plus ``is_cc``); val: the JSON form; test: a CSV
    without labels (as Kinetics-600/700 test files). Videos go to
    ``raw/<split>/<class name with spaces>/<youtube_id>_<start:06d>_<end:06d>.mp4``; the first
    validation video is named ``<youtube_id>.mp4`` (the other naming downloaders use).
    Returns ``{"train": [(key, label)], "val": [...], "raw": Path, "files": {...}}``.
    """
    raw = target / "raw"
    release = {"raw": raw, "annotations": target / "annotations"}
    release["annotations"].mkdir(parents=True)
    number = 0
    for split in ("train", "val"):
        entries = []
        for n, (path, label) in enumerate(synthetic_rows(synthetic, split)[:count]):
            number += 1
            ytid, start = youtube_id(number), 10 * number
            stem = ytid if (split, n) == ("val", 0) else f"{ytid}_{start:06d}_{start + 3:06d}"
            destination = raw / split / label / f"{stem}.mp4"
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(synthetic / path, destination)
            entries.append((ytid, start, start + 3, label, f"{ytid}_{start:06d}_{start + 3:06d}"))
        release[split] = entries
    files = release["annotations"]
    with (files / "train.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["label", "youtube_id", "time_start", "time_end", "split", "is_cc"])
        for ytid, start, end, label, _ in release["train"]:
            writer.writerow([label, ytid, start, end, "train", 0])
    (files / "validate.json").write_text(json.dumps({
        ytid: {"annotations": {"label": label, "segment": [float(start), float(end)]},
               "duration": 10.0, "subset": "validate",
               "url": f"https://www.youtube.com/watch?v={ytid}"}
        for ytid, start, end, label, _ in release["val"]}))
    (files / "test.csv").write_text("youtube_id,time_start,time_end,split\n"
                                    "zzzzzzzzzzz,0,10,test\n")
    return release


def with_rotation_90(source: Path, target: Path) -> Path:
    """A copy of an MP4 whose track header says "display rotated by 90 degrees" (the display
    matrix phones write), patched in the ``tkhd`` box."""
    data = bytearray(source.read_bytes())
    box = data.find(b"tkhd")
    version = data[box + 4]
    offset = box + 8 + (32 if version == 1 else 20) + 16  # after the times, ids, layer, volume
    data[offset:offset + 36] = struct.pack(">9i", 0, -65536, 0, 65536, 0, 0, 0, 0, 1 << 30)
    target.write_bytes(bytes(data))
    return target
