"""Synthetic datasets: official formats, determinism, motions that need time, safe generation."""

import csv
import hashlib
import math
import subprocess
import sys
import threading

import numpy as np
import pytest
from data_helpers import small_data_config

from videotl.data import VideoReader, build_dataset, make_synthetic_dataset
from videotl.data.synthetic import SPECS, SyntheticDataMismatch, ensure_synthetic_dataset
from videotl.data.synthetic_render import MOTIONS, Canvas, make_actor


def digest(root):
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    options = dict(train_videos=4, eval_videos=2, short_side=32, processes=2)
    make_synthetic_dataset("kinetics", tmp_path / "a", seed=7, **options)
    make_synthetic_dataset("kinetics", tmp_path / "b", seed=7, **options)
    make_synthetic_dataset("kinetics", tmp_path / "c", seed=8, processes=1, **{
        k: v for k, v in options.items() if k != "processes"})
    first = digest(tmp_path / "a")
    assert len(first) == 6 + 5  # 6 videos; classes, train, val and test lists; the record
    assert first == digest(tmp_path / "b")
    assert first != digest(tmp_path / "c")


def test_kinetics_like_format(synthetic_kinetics):
    root = synthetic_kinetics
    classes = (root / "classes.txt").read_text().splitlines()
    assert classes == list(SPECS["kinetics"].classes) and len(classes) == 10
    rows = [line.split(" ") for line in (root / "train.csv").read_text().splitlines()]
    assert len(rows) == 20 and all(len(row) == 2 for row in rows)
    labels = [int(label) for _, label in rows]
    assert sorted(labels) == sorted(list(range(10)) * 2)  # balanced
    assert (root / "test.csv").read_text() == (root / "val.csv").read_text()
    path, label = rows[3]
    assert path.startswith(f"train/{classes[int(label)].replace(' ', '_')}/")
    reader = VideoReader(root / path)
    assert (reader.num_frames, reader.fps, reader.size) == (45, 15.0, (42, 32))


def test_avid_like_format(synthetic_avid):
    rows = [line.split(" ") for line in (synthetic_avid / "train.csv").read_text().splitlines()]
    assert len((synthetic_avid / "classes.txt").read_text().splitlines()) == 12
    durations, rates, shapes = set(), set(), set()
    for path, _ in rows:
        reader = VideoReader(synthetic_avid / path)
        durations.add(reader.duration)
        rates.add(reader.fps)
        shapes.add(reader.width > reader.height)
    assert all(2.0 <= d <= 4.05 for d in durations) and len(durations) > 5
    assert rates <= {12.0, 15.0, 24.0} and len(rates) >= 2
    assert shapes == {True, False}  # landscape and portrait videos


def test_charades_like_format(synthetic_charades):
    root = synthetic_charades
    classes = (root / "Charades_v1_classes.txt").read_text().splitlines()
    assert classes[0] == "c000 Moving up" and len(classes) == 8
    with (root / "Charades_v1_train.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == ["id", "subject", "scene", "quality", "relevance", "verified",
                             "script", "objects", "descriptions", "actions", "length"]
    for row in rows:
        actions = [part.split() for part in row["actions"].split(";")]
        assert 2 <= len(actions) <= 4
        length = float(row["length"])
        assert 20.0 <= length <= 30.0
        for code, start, end in actions:
            assert code in {line.split()[0] for line in classes}
            assert 0 <= float(start) < float(end) <= length and float(end) - float(start) >= 3.9
        reader = VideoReader(root / "Charades_v1_480" / f"{row['id']}.mp4")
        assert reader.duration == pytest.approx(length, abs=0.1)
    ids = [row["id"] for row in rows]
    with (root / "Charades_v1_test.csv").open(newline="") as stream:
        ids += [row["id"] for row in csv.DictReader(stream)]
    assert len(set(ids)) == len(ids)


def trajectory(motion, seconds=3.0, seed=0):
    actor = make_actor(motion, 0.0, seconds, 128, np.random.default_rng(seed))
    return [actor.pose(t) for t in np.linspace(0.0, seconds, 31)]


def strictly(values, increasing):
    steps = np.diff(values)
    return bool((steps > 0).all()) if increasing else bool((steps < 0).all())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_motions_are_told_apart_only_over_time(seed):
    poses = {motion: trajectory(motion, seed=seed) for motion in MOTIONS}
    assert strictly([p.y for p in poses["moving up"]], increasing=False)
    assert strictly([p.y for p in poses["moving down"]], increasing=True)
    sideways = [p.x for p in poses["sliding sideways"]]
    assert strictly(sideways, sideways[-1] > sideways[0])
    assert len({p.y for p in poses["sliding sideways"]}) == 1
    assert strictly([p.scale for p in poses["approaching"]], increasing=True)
    assert strictly([p.scale for p in poses["receding"]], increasing=False)
    assert strictly([p.alpha for p in poses["appearing"]], increasing=True)
    assert strictly([p.alpha for p in poses["vanishing"]], increasing=False)
    angles = [p.angle for p in poses["spinning"]]
    assert strictly(angles, angles[-1] > angles[0])
    assert abs(angles[-1] - angles[0]) >= 0.25 * 2 * math.pi * 3.0 - 1e-6
    assert len({(p.x, p.y, p.scale, p.angle, p.alpha) for p in poses["staying still"]}) == 1
    blinks = [p.alpha for p in poses["blinking"]]
    assert set(blinks) == {0.0, 1.0} and np.count_nonzero(np.diff(blinks)) >= 4
    assert np.count_nonzero(np.diff(np.sign(np.diff([p.y for p in poses["bouncing"]])))) >= 2
    assert np.count_nonzero(np.diff(np.sign(np.diff([p.scale for p in poses["pulsing"]])))) >= 2


def test_rendered_motion_moves_the_object_up():
    rng = np.random.default_rng(3)
    actor = make_actor("moving up", 0.0, 2.0, 96, rng)
    canvas = Canvas(128, 96, rng)
    rows = []
    for time in (0.0, 1.0, 2.0):
        changed = np.abs(canvas.frame([actor], time).astype(float) - canvas.background).sum(-1)
        ys, _ = np.nonzero(changed > 30)
        rows.append(ys.mean())
    assert rows[0] > rows[1] > rows[2]


def test_actor_is_invisible_outside_its_interval():
    actor = make_actor("spinning", 2.0, 5.0, 64, np.random.default_rng(0))
    assert actor.pose(1.9) is None and actor.pose(5.1) is None and actor.pose(3.0) is not None


def test_ensure_generates_once_even_when_called_concurrently(tmp_path):
    root = tmp_path / "shared" / "kinetics"
    results = []
    options = dict(seed=0, train_videos=3, eval_videos=2, short_side=32, processes=1)

    def call():
        results.append(ensure_synthetic_dataset("kinetics", root, **options))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, True]
    names = sorted(p.name for p in root.iterdir())
    assert names == ["classes.txt", "synthetic.json", "test.csv", "train", "train.csv", "val",
                     "val.csv"]
    assert not [p for p in root.parent.iterdir() if "staging" in p.name]  # nothing left over
    assert not ensure_synthetic_dataset("kinetics", root, **options)


def test_ensure_refuses_a_set_made_with_other_sizes(tmp_path):
    root = tmp_path / "kinetics"
    options = dict(seed=0, train_videos=3, eval_videos=2, short_side=32, processes=1)
    assert ensure_synthetic_dataset("kinetics", root, **options)
    before = digest(root)
    for key, value, config_key in (("train_videos", 4, "synthetic_train_videos"),
                                   ("short_side", 48, "synthetic_short_side"),
                                   ("seed", 1, "synthetic_seed")):
        with pytest.raises(SyntheticDataMismatch) as error:
            ensure_synthetic_dataset("kinetics", root, **{**options, key: value})
        assert str(error.value) == (
            f"{root} holds a synthetic set made with {key}={options[key]!r}, not {value!r} as "
            f"asked (data.{config_key}): delete that folder, choose another data.root, or set "
            f"data.synthetic=false to use it as it is")
    assert digest(root) == before  # nothing rewritten
    (root / "synthetic.json").write_text('{"seed": 0,')
    with pytest.raises(SyntheticDataMismatch, match=r"synthetic.json is not a record of a "
                       r"synthetic set \(Expecting"):
        ensure_synthetic_dataset("kinetics", root, **options)
    (root / "synthetic.json").write_text("[0, 3]")
    with pytest.raises(SyntheticDataMismatch) as error:
        ensure_synthetic_dataset("kinetics", root, **options)
    assert str(error.value) == (f"{root / 'synthetic.json'} is not a record of a synthetic set (a "
                                f"JSON list, not an object): delete it to use the set without the "
                                f"check")
    (root / "synthetic.json").unlink()  # a set made before the record existed: not checked
    assert not ensure_synthetic_dataset("kinetics", root, **{**options, "train_videos": 4})


def test_build_dataset_generates_synthetic_data_on_request(tmp_path):
    root = tmp_path / "charades"
    cfg = small_data_config("charades", root, "data.synthetic=true",
                            "data.synthetic_train_videos=2", "data.synthetic_eval_videos=1",
                            "data.synthetic_short_side=32")
    dataset = build_dataset(cfg, "test")
    assert dataset.num_videos == 1 and dataset.multilabel
    assert (root / "Charades_v1_480" / f"{dataset.video_ids[0]}.mp4").is_file()
    assert dataset[0]["ok"]


def test_make_synthetic_refuses_existing_annotations_and_bad_kind(tmp_path):
    (tmp_path / "train.csv").write_text("x 0\n")
    with pytest.raises(FileExistsError, match="already holds"):
        make_synthetic_dataset("kinetics", tmp_path, train_videos=1, eval_videos=1)
    with pytest.raises(ValueError, match="unknown synthetic dataset kind 'ucf101'"):
        make_synthetic_dataset("ucf101", tmp_path / "x")


def load_script(repo):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_synthetic",
                                                  repo / "data_prep" / "make_synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli(repo, tmp_path, capsys):
    shown = subprocess.run([sys.executable, str(repo / "data_prep" / "make_synthetic.py"),
                            "--help"], capture_output=True, text=True, check=True)
    assert "kinetics" in shown.stdout and "--seed" in shown.stdout
    script = load_script(repo)
    root = tmp_path / "avid"
    script.main(["avid", str(root), "--train-videos", "2", "--eval-videos", "1",
                 "--short-side", "32", "--jobs", "1"])
    assert "2 train, 1 val videos, 12 classes" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        script.main(["avid", str(root)])
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err
