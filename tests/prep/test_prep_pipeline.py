"""The four data_prep steps chained on a synthetic Kinetics release: re-encode, write the lists,
verify, and load training items with the printed overrides."""

from data_helpers import small_data_config
from release_helpers import kinetics_release, load_script

from videotl.data import VideoReader, build_dataset


def test_from_release_to_training_items(synthetic_kinetics, tmp_path, capsys):
    release = kinetics_release(synthetic_kinetics, tmp_path / "download", count=3)
    files, root = release["annotations"], tmp_path / "k400"
    assert load_script("resize_videos").main([
        str(release["raw"]), str(root / "videos_24"), "--short-side", "24", "--fps", "10",
        "--jobs", "2", "--no-progress"]) == 0
    load_script("prepare_kinetics").main([
        "--train", str(files / "train.csv"), "--val", str(files / "validate.json"),
        "--videos", str(root / "videos_24"), "--out", str(root)])
    overrides = capsys.readouterr().out.split("train with: ")[1].split()
    assert "data.video_dir=videos_24" in overrides
    assert (root / "missing_videos.txt").read_text() == ""
    assert load_script("verify_videos").main([
        "--config", "configs/kinetics400/base.yaml", *overrides, "data.num_frames=4",
        "data.test_crop_size=24", "--out", str(root / "unreadable.txt"), "--jobs", "2",
        "--no-progress"]) == 0
    cfg = small_data_config("kinetics", root, *overrides,
                            f"data.exclude_file={root / 'unreadable.txt'}")
    train = build_dataset(cfg, "train")
    assert train.num_videos == 3 and train.excluded == []
    assert VideoReader(train.videos[0].path).fps == 10.0
    assert train[0]["video"].shape == (3, 4, 32, 32)
