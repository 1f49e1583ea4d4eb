"""data_prep list scripts: official Kinetics / AViD / Charades annotations + a raw video folder ->
the files the loaders read, with missing and unlisted videos reported."""

import csv
import json
import logging
import shutil

import pytest
from data_helpers import small_data_config
from release_helpers import kinetics_release, load_script, synthetic_rows

from videotl.data import build_dataset
from videotl.data.charades import read_charades_classes, read_charades_csv
from videotl.data.kinetics import KINETICS
from videotl.data.lists import AnnotationError, apply_exclusions, read_exclusions, read_video_list
from videotl.prep.avid import read_avid_annotations
from videotl.prep.charades import prepare_charades
from videotl.prep.kinetics import read_kinetics_annotations
from videotl.prep.single_label import Annotation, write_single_label_lists


def test_kinetics_lists_from_official_csv_and_json(synthetic_kinetics, tmp_path, capsys):
    release = kinetics_release(synthetic_kinetics, tmp_path)
    raw, files = release["raw"], release["annotations"]
    gone = release["train"][2]  # a clip that failed to download
    next(raw.rglob(f"{gone[4]}.mp4")).unlink()
    (raw / "train" / "stray file.mkv").write_bytes(b"not annotated")
    output = tmp_path / "k400"
    load_script("prepare_kinetics").main([
        "--train", str(files / "train.csv"), "--val", str(files / "validate.json"),
        "--test", str(files / "test.csv"), "--videos", str(raw), "--out", str(output)])
    printed = capsys.readouterr().out

    classes = (output / "classes.txt").read_text().splitlines()
    assert classes == sorted({label for *_, label, _ in release["train"] + release["val"]})
    train = [line.rsplit(",", 1) for line in (output / "train.csv").read_text().splitlines()]
    expected = [(f"train/{label}/{key}.mp4", str(classes.index(label)))
                for *_, label, key in release["train"] if key != gone[4]]
    assert [tuple(row) for row in train] == expected
    first = release["val"][0]
    assert f"val/{first[3]}/{first[0]}.mp4" in (output / "val.csv").read_text()  # <ytid>.mp4
    assert len((output / "val.csv").read_text().splitlines()) == len(release["val"])
    assert (output / "test.csv").read_text() == (output / "val.csv").read_text()
    assert (output / "missing_videos.txt").read_text() == f"# train\n{gone[4]}\n"
    assert (output / "unlisted_videos.txt").read_text() == "train/stray file.mkv\n"
    assert "1 without a label" in printed and f"model.num_classes={len(classes)}" in printed

    # The loaders read what was written, with the overrides the script printed.
    overrides = printed.split("train with: ")[1].split()
    cfg = small_data_config("kinetics", output, *overrides)
    dataset = build_dataset(cfg, "train")
    assert dataset.class_names == classes and dataset.num_videos == len(expected)
    item = dataset[0]
    assert item["video"].shape == (3, 4, 32, 32)
    assert int(item["target"]) == int(expected[0][1])


def test_kinetics_annotation_errors_name_the_file(tmp_path):
    bad = tmp_path / "train.csv"
    bad.write_text("label,youtube,start,end\nx,abc,0,10\n")
    with pytest.raises(AnnotationError, match=r"train\.csv: missing columns \['youtube_id'"):
        read_kinetics_annotations(bad)
    bad.write_text("label,youtube_id,time_start,time_end,split\nx,abc,ten,20,train\n")
    with pytest.raises(AnnotationError, match=r"train\.csv:2: bad times 'ten', '20'"):
        read_kinetics_annotations(bad)
    bad.write_text("label,youtube_id,time_start,time_end,split\nx,abc,30,20,train\n")
    with pytest.raises(AnnotationError, match=r"train\.csv:2: bad segment"):
        read_kinetics_annotations(bad)
    broken = tmp_path / "val.json"
    broken.write_text(json.dumps({"abc": {"annotations": {"label": "x"}}}))
    with pytest.raises(AnnotationError, match=r"val\.json \(entry 'abc'\).*segment"):
        read_kinetics_annotations(broken)
    unlabelled = tmp_path / "test.json"
    unlabelled.write_text(json.dumps({"abc": {"annotations": {}, "subset": "testing"}}))
    [entry] = read_kinetics_annotations(unlabelled)
    assert (entry.key, entry.label, entry.stems) == ("abc", None, ("abc",))
    with pytest.raises(AnnotationError, match="Kinetics annotation file not found"):
        read_kinetics_annotations(tmp_path / "nope.csv")


def test_label_outside_the_given_class_list(tmp_path):
    annotations = tmp_path / "train.csv"
    annotations.write_text("label,youtube_id,time_start,time_end,split\n"
                           "juggling,abc,0,10,train\n")
    (tmp_path / "classes.txt").write_text("abseiling\n")
    (tmp_path / "videos").mkdir()
    with pytest.raises(AnnotationError, match=r"train\.csv:2: label 'juggling' is not in the "):
        write_single_label_lists(KINETICS, {"train": read_kinetics_annotations(annotations)},
                                 tmp_path / "videos", tmp_path / "out", tmp_path / "classes.txt")


def test_avid_lists_from_official_json(synthetic_avid, tmp_path, capsys):
    raw = tmp_path / "AViD_small"
    raw.mkdir()
    splits = {}
    for split in ("train", "val"):
        entries = {}
        for n, (path, label) in enumerate(synthetic_rows(synthetic_avid, split)[:6]):
            name = f"{split}{n:04d}xyz"
            shutil.copyfile(synthetic_avid / path, raw / f"{name}.mp4")
            entries[f"{name}.mp4"] = label
        splits[split] = entries
    splits["train"]["nolabel0.mp4"] = "none"  # the release labels some videos "none"
    shutil.copyfile(raw / "train0000xyz.mp4", raw / "nolabel0.mp4")
    for split, entries in splits.items():
        (tmp_path / f"avid_{split}.json").write_text(json.dumps(entries))
    (raw / "val0001xyz.mp4").rename(raw / "val0001xyz.webm")  # matched by name, any container
    output = tmp_path / "avid"
    load_script("prepare_avid").main([
        "--train", str(tmp_path / "avid_train.json"), "--val", str(tmp_path / "avid_val.json"),
        "--videos", str(raw), "--out", str(output), "--drop-label", "none"])
    printed = capsys.readouterr().out
    classes = (output / "classes.txt").read_text().splitlines()
    assert "none" not in classes
    labels = set(splits["train"].values()) | set(splits["val"].values())
    assert classes == sorted(labels - {"none"})
    assert "the AViD paper reports 887" in printed
    val = (output / "val.csv").read_text().splitlines()
    assert f"val0001xyz.webm,{classes.index(splits['val']['val0001xyz.mp4'])}" in val
    assert (output / "unlisted_videos.txt").read_text() == "nolabel0.mp4\n"
    dataset = build_dataset(small_data_config("avid", output), "val")
    assert dataset.num_videos == 6 and dataset.num_classes == len(classes)


def test_avid_csv_form_and_errors(tmp_path):
    table = tmp_path / "train.csv"
    with table.open("w", newline="") as stream:
        csv.writer(stream).writerows([["video", "label"], ["a b.mp4", "tying knot (not on a tie)"],
                                      ["c.mp4", "none"]])
    annotations = read_avid_annotations(table)
    assert [(a.key, a.label, a.stems) for a in annotations] == [
        ("a b.mp4", "tying knot (not on a tie)", ("a b",)), ("c.mp4", "none", ("c",))]
    (tmp_path / "bad.json").write_text(json.dumps({"a.mp4": ["x"]}))
    with pytest.raises(AnnotationError, match=r"bad\.json: expected an object"):
        read_avid_annotations(tmp_path / "bad.json")
    table.write_text("a.mp4,x,extra\n")
    with pytest.raises(AnnotationError, match=r"train\.csv:1: expected 'video,label'"):
        read_avid_annotations(table)


def test_charades_release_checked_copied_and_missing_excluded(synthetic_charades, tmp_path,
                                                              capsys):
    release = tmp_path / "Charades"
    release.mkdir()
    for name in ("Charades_v1_classes.txt", "Charades_v1_train.csv", "Charades_v1_test.csv"):
        shutil.copyfile(synthetic_charades / name, release / name)
    videos = tmp_path / "videos"
    shutil.copytree(synthetic_charades / "Charades_v1_480", videos)
    ids = sorted(p.stem for p in videos.glob("*.mp4"))
    (videos / f"{ids[1]}.mp4").unlink()
    (videos / "UNKNOWN.mp4").write_bytes(b"x")
    output = tmp_path / "charades"
    load_script("prepare_charades").main(["--annotations", str(release), "--videos", str(videos),
                                          "--out", str(output)])
    printed = capsys.readouterr().out
    for name in ("Charades_v1_classes.txt", "Charades_v1_train.csv", "Charades_v1_test.csv"):
        assert (output / name).read_bytes() == (release / name).read_bytes()
    missing = (output / "missing_videos.txt").read_text().splitlines()
    assert ids[1] in missing and len([m for m in missing if not m.startswith("#")]) == 1
    assert (output / "unlisted_videos.txt").read_text() == "UNKNOWN.mp4\n"
    overrides = printed.split("train with: ")[1].split()
    assert "data.exclude_file=missing_videos.txt" in overrides
    split = "train" if ids[1] in (release / "Charades_v1_train.csv").read_text() else "val"
    dataset = build_dataset(small_data_config("charades", output, *overrides), split)
    assert dataset.excluded == [ids[1]]
    assert all((videos / f"{video_id}.mp4").is_file() for video_id in dataset.video_ids)


def test_charades_bad_release_file(synthetic_charades, tmp_path):
    release = tmp_path / "Charades"
    shutil.copytree(synthetic_charades, release, ignore=shutil.ignore_patterns("*.mp4"))
    (release / "Charades_v1_test.csv").write_text("id,actions\nABC,c999 0.0 1.0\n")
    script = load_script("prepare_charades")
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--annotations", str(release), "--videos", str(release),
                     "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("name", ["prepare_kinetics", "prepare_avid", "prepare_charades",
                                  "resize_videos", "verify_videos"])
def test_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_script(name).parse_args(["--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_hostile_file_names_survive_the_lists(tmp_path):
    videos = tmp_path / "videos"
    (videos / "dir, with $(x)").mkdir(parents=True)
    names = ["dir, with $(x)/a, b's \"c\".mp4", "semi;colon `tick`.mp4", "vidéo 日本.mp4",
             "-dash.mp4"]
    for name in names + ["#hash.mp4", " lead.mp4"]:
        (videos / name).write_bytes(b"x")
    stems = [name.rsplit("/", 1)[-1][:-4] for name in names + ["#hash.mp4", " lead.mp4"]]
    annotations = {"train": [Annotation(stem, "c", (stem,), f"x:{n}")
                             for n, stem in enumerate(stems)]}
    report = write_single_label_lists(KINETICS, annotations, videos, tmp_path / "out")
    entries = read_video_list(tmp_path / "out" / "train.csv", videos, ["c"], 1)
    assert [entry.video_id for entry in entries] == names
    assert all(entry.path == str(videos / name) for entry, name in zip(entries, names))
    assert [path for path, _ in report.unusable] == [" lead.mp4", "#hash.mp4"]
    assert report.splits["train"].missing == ["#hash", " lead"]


def test_missing_names_written_by_the_list_scripts_read_back(tmp_path):
    """Names that a plain line cannot hold ('#...', white space at an end) are quoted in
    missing_videos.txt, so it serves as data.exclude_file whatever the names."""
    videos = tmp_path / "videos"
    videos.mkdir()
    keys = ["#hash", " lead", "trail ", "plain", "#"]
    annotations = {"train": [Annotation(key, "c", (key,), f"x:{n}") for n, key in
                             enumerate(keys)]}
    write_single_label_lists(KINETICS, annotations, videos, tmp_path / "out")
    missing = tmp_path / "out" / "missing_videos.txt"
    assert read_exclusions(missing) == keys
    assert missing.read_text().splitlines()[:2] == ["# train", '"#hash"']


def test_charades_ids_that_look_like_comments_are_excluded(synthetic_charades, tmp_path):
    release = tmp_path / "Charades"
    release.mkdir()
    for name in ("Charades_v1_classes.txt", "Charades_v1_test.csv"):
        shutil.copyfile(synthetic_charades / name, release / name)
    ids = ["#AB12C", "X\nY", "it's, \"odd\"", "vidéo\\1", "PLAIN"]
    with (release / "Charades_v1_train.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "subject", "scene", "quality", "relevance", "verified", "script",
                         "objects", "descriptions", "actions", "length"])
        writer.writerows([video_id, "S", "room", 7, 7, "Yes", "s", "o", "d", "c001 1.0 2.0", 10]
                         for video_id in ids)
    videos = tmp_path / "videos"  # no video at all: every id is missing
    videos.mkdir()
    output = tmp_path / "charades"
    report = prepare_charades(release, videos, output)
    assert report.missing["Charades_v1_train.csv"] == ids
    excluded = read_exclusions(output / "missing_videos.txt")
    assert excluded[:len(ids)] == ids
    entries = read_charades_csv(output / "Charades_v1_train.csv", videos,
                                read_charades_classes(output / "Charades_v1_classes.txt")[1])
    kept, dropped = apply_exclusions(entries, "missing_videos.txt", str(output), "train")
    assert kept == [] and dropped == ids


def test_repeated_annotations_are_counted(tmp_path, caplog):
    annotations = tmp_path / "train.csv"
    annotations.write_text("label,youtube_id,time_start,time_end,split\n"
                           "juggling,abc,0,10,train\njuggling,abc,0,10,train\n")
    (tmp_path / "videos").mkdir()
    with caplog.at_level(logging.WARNING):
        report = write_single_label_lists(
            KINETICS, {"train": read_kinetics_annotations(annotations)}, tmp_path / "videos",
            tmp_path / "out")
    assert report.splits["train"].repeated == ["abc_000000_000010"]
    assert "1 repeat an earlier annotation's video, first annotation used" in report.summary()
    assert [r.message for r in caplog.records if "repeat an earlier" in r.message] == [
        "train: 1 annotations repeat an earlier annotation's video, first annotation used "
        "(e.g. ['abc_000000_000010'])"]


def test_release_files_with_a_byte_order_mark(tmp_path):
    bom = "\ufeff"
    (tmp_path / "avid_train.json").write_text(bom + json.dumps({"a.mp4": "x"}), encoding="utf-8")
    [avid] = read_avid_annotations(tmp_path / "avid_train.json")
    assert (avid.key, avid.label) == ("a.mp4", "x")
    (tmp_path / "val.json").write_text(bom + json.dumps(
        {"abc": {"annotations": {"label": "x", "segment": [1.0, 2.0]}}}), encoding="utf-8")
    [kinetics] = read_kinetics_annotations(tmp_path / "val.json")
    assert (kinetics.key, kinetics.label) == ("abc_000001_000002", "x")
    (tmp_path / "train.csv").write_bytes(b"label,youtube_id,time_start,time_end\nx,\xff,0,1\n")
    with pytest.raises(AnnotationError, match=r"train\.csv:2: not UTF-8 text"):
        read_kinetics_annotations(tmp_path / "train.csv")


def test_two_clips_matched_to_one_file_are_listed_once(tmp_path):
    annotations = tmp_path / "val.csv"
    annotations.write_text("label,youtube_id,time_start,time_end,split\n"
                           "juggling,abc,0,10,val\njuggling,abc,20,30,val\n")
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "abc.mp4").write_bytes(b"x")  # named by <youtube_id> only
    report = write_single_label_lists(
        KINETICS, {"val": read_kinetics_annotations(annotations)}, tmp_path / "videos",
        tmp_path / "out")
    assert report.splits["val"].rows == [("abc.mp4", 0)]
    assert report.splits["val"].repeated == ["abc_000020_000030"]
    assert (tmp_path / "out" / "val.csv").read_text() == "abc.mp4,0\n"
