"""Per-class reports, confusions and tools/analyze_results.py on hand-made scores whose every
figure is worked out in the comments."""

import csv
import json
import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from tool_helpers import run_script_here

from videotl.errors import InputError
from videotl.evaluation import (
    class_reports,
    compare_classes,
    confusion_matrix,
    load_test_scores,
    recompute_metrics,
    write_class_reports,
)
from videotl.evaluation.reports import largest_changes, top_confusions

NAMES = ["a", "b", "c", "d"]


def single_label():
    """7 videos of 4 classes; the last one failed (NaN scores) and class d has no video.

    top-1 predictions: a->a, a->b, a->b, b->b, b->c, c->a, so per-class accuracy a 1/3, b 1/2,
    c 0, d undefined; top-1 2/6; mean class accuracy (1/3 + 1/2 + 0) / 3 = 5/18.
    """
    predicted = [0, 1, 1, 1, 2, 0]
    scores = np.full((7, 4), 0.1)
    scores[np.arange(6), predicted] = 0.7
    scores[6] = np.nan
    return scores, np.array([0, 0, 0, 1, 1, 2, 2])


def multi_label():
    """4 videos, 3 classes. AP: class 0 ranks P N P N: (1 + 2/3) / 2 = 5/6; class 1 ranks
    N N P P: (1/3 + 2/4) / 2 = 5/12; class 2 ranks N P N N: 1/2; mAP 7/12.

    Top-1 (0, 2, 0, 1) outside the labels: video 1 (labels 0, 1 -> 2), video 2 (1 -> 0),
    video 3 (2 -> 1)."""
    scores = np.array([[0.9, 0.5, 0.1], [0.2, 0.3, 0.8], [0.6, 0.4, 0.2], [0.1, 0.7, 0.3]])
    targets = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]])
    return scores, targets


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def write_scores(path, scores, targets):
    np.savez_compressed(path, video_ids=np.array([f"v{i}" for i in range(len(scores))]),
                        scores=scores, targets=targets, views=np.ones(len(scores), dtype=int))


def test_single_label_confusion_counts_and_per_class_rows():
    scores, targets = single_label()
    keep = slice(0, 6)
    np.testing.assert_array_equal(confusion_matrix(scores[keep], targets[keep]),
                                  [[1, 2, 0, 0], [0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    rows = class_reports(scores, targets, NAMES)
    assert [(r.name, r.support, r.confused_with, r.confused_count) for r in rows] == [
        ("a", 3, "b", 2), ("b", 2, "c", 1), ("c", 1, "a", 1), ("d", 0, "", 0)]
    assert [r.metric for r in rows[:3]] == pytest.approx([1 / 3, 1 / 2, 0.0])
    assert math.isnan(rows[3].metric)


def test_metrics_recomputed_as_the_evaluator_does():
    metrics = recompute_metrics(*single_label())
    assert metrics["num_videos"] == 6 and metrics["num_failed_videos"] == 1
    assert metrics["top1"] == pytest.approx(1 / 3)
    assert metrics["mean_class_accuracy"] == pytest.approx(5 / 18)
    assert "top5" not in metrics  # 4 classes
    rows = class_reports(*single_label(), NAMES)
    assert np.nanmean([r.metric for r in rows]) == pytest.approx(metrics["mean_class_accuracy"])
    assert recompute_metrics(*multi_label())["map"] == pytest.approx(7 / 12)


def test_multi_label_ap_and_confusions():
    scores, targets = multi_label()
    np.testing.assert_array_equal(confusion_matrix(scores, targets),
                                  [[0, 0, 1], [1, 0, 1], [0, 1, 0]])
    rows = class_reports(scores, targets, ["x", "y", "z"])
    assert [r.metric for r in rows] == pytest.approx([5 / 6, 5 / 12, 1 / 2])
    # Class y is taken once for x and once for z: the first in class order is named.
    assert [(r.support, r.confused_with, r.confused_count) for r in rows] == [
        (2, "z", 1), (2, "x", 1), (1, "y", 1)]
    assert top_confusions(confusion_matrix(scores, targets), ["x", "y", "z"]) == [
        ("x", "z", 1), ("y", "x", 1), ("y", "z", 1), ("z", "y", 1)]


def test_single_label_files(tmp_path):
    paths = write_class_reports(*single_label(), NAMES, tmp_path)
    assert [p.name for p in paths] == ["per_class.csv", "confusion.csv", "confusion.png"]
    assert read_csv(tmp_path / "per_class.csv") == [
        ["index", "class", "support", "accuracy", "most_confused_with", "confused_count"],
        ["0", "a", "3", "0.333333", "b", "2"], ["1", "b", "2", "0.500000", "c", "1"],
        ["2", "c", "1", "0.000000", "a", "1"], ["3", "d", "0", "", "", "0"]]
    assert read_csv(tmp_path / "confusion.csv") == [
        ["true \\ predicted", "a", "b", "c", "d"], ["a", "1", "2", "0", "0"],
        ["b", "0", "1", "1", "0"], ["c", "1", "0", "0", "0"], ["d", "0", "0", "0", "0"]]
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))


def test_many_classes_get_a_table_instead_of_a_picture(tmp_path):
    num_classes = 61
    targets = np.arange(num_classes).repeat(2)
    scores = np.eye(num_classes)[targets]
    scores[[0, 2, 3]] = np.eye(num_classes)[[5, 5, 7]]  # 0 -> 5, 1 -> 5 and 1 -> 7
    paths = write_class_reports(scores, targets, None, tmp_path)
    assert [p.name for p in paths] == ["per_class.csv", "confusion.csv", "top_confusions.csv"]
    assert read_csv(tmp_path / "top_confusions.csv") == [
        ["true_class", "predicted_class", "count", "fraction_of_true"],
        ["0", "5", "1", "0.500000"], ["1", "5", "1", "0.500000"], ["1", "7", "1", "0.500000"]]


def test_multi_label_files(tmp_path):
    paths = write_class_reports(*multi_label(), ["x", "y", "z"], tmp_path)
    assert [p.name for p in paths] == ["per_class.csv", "top_confusions.csv"]
    assert read_csv(tmp_path / "per_class.csv")[0][3] == "ap"
    assert read_csv(tmp_path / "per_class.csv")[1] == ["0", "x", "2", "0.833333", "z", "1"]


def test_wrong_number_of_names_is_refused(tmp_path):
    with pytest.raises(InputError, match="3 class names for scores of 4 classes"):
        write_class_reports(*single_label(), NAMES[:3], tmp_path)


def test_compare_classes_and_largest_changes():
    scores_a, targets = single_label()
    scores_b = scores_a.copy()
    scores_b[:3] = np.eye(4)[0]  # class a: 1/3 -> 1
    scores_b[3] = np.eye(4)[2]  # class b: 1/2 -> 0
    deltas = compare_classes(scores_a, targets, scores_b, targets, NAMES)
    assert [d.delta for d in deltas[:3]] == pytest.approx([2 / 3, -1 / 2, 0.0])
    assert math.isnan(deltas[3].delta)
    gained, lost = largest_changes(deltas, 5)
    assert [d.name for d in gained] == ["a"] and [d.name for d in lost] == ["b"]
    with pytest.raises(InputError, match="not comparable: 4 and 3 classes"):
        compare_classes(scores_a, targets, *multi_label(), NAMES)


def test_load_test_scores_refuses_another_file(tmp_path):
    np.savez(tmp_path / "other.npz", logits=np.zeros((2, 3)))
    with pytest.raises(InputError, match=r"other\.npz: not a test_scores\.npz file"):
        load_test_scores(tmp_path / "other.npz")


def run_analyze(repo, *args):
    return subprocess.run([sys.executable, str(repo / "tools" / "analyze_results.py"), *args],
                          capture_output=True, text=True, cwd=repo, timeout=300)


def run_analyze_here(repo, monkeypatch, capsys, *args):
    """The tool run as a script in this process (torchmetrics, 5-10 s to import, is imported
    once for the whole test session instead of once per run)."""
    status = run_script_here(repo / "tools" / "analyze_results.py", list(args), monkeypatch)
    output = capsys.readouterr()
    return SimpleNamespace(returncode=status, stdout=output.out, stderr=output.err)


def test_analyze_tool_recomputes_and_compares(repo, tmp_path, monkeypatch, capsys):
    scores_a, targets = single_label()
    write_scores(tmp_path / "a.npz", scores_a, targets)
    scores_b = scores_a.copy()
    scores_b[:3] = np.eye(4)[0]
    write_scores(tmp_path / "b.npz", scores_b, targets)
    (tmp_path / "classes.txt").write_text("a\nb\nc\nd\n")

    done = run_analyze_here(repo, monkeypatch, capsys, str(tmp_path / "a.npz"), "--class-names",
                            str(tmp_path / "classes.txt"), "--out", str(tmp_path / "one"))
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert metrics["top1"] == pytest.approx(1 / 3) and metrics["num_failed_videos"] == 1
    assert metrics["mean_class_accuracy"] == pytest.approx(5 / 18)
    assert read_csv(tmp_path / "one" / "per_class.csv")[1][:3] == ["0", "a", "3"]
    assert {p.name for p in (tmp_path / "one").iterdir()} == {
        "metrics.json", "per_class.csv", "confusion.csv", "confusion.png", "summary.md"}

    done = run_analyze_here(repo, monkeypatch, capsys, "--compare", str(tmp_path / "a.npz"),
                            str(tmp_path / "b.npz"), "--out", str(tmp_path / "both"),
                            "--class-names", str(tmp_path / "classes.txt"))
    assert done.returncode == 0, done.stderr
    rows = read_csv(tmp_path / "both" / "compare.csv")
    assert rows[0] == ["class", "support_a", "support_b", "accuracy_a", "accuracy_b", "delta"]
    assert rows[1] == ["a", "3", "3", "0.333333", "1.000000", "0.666667"]
    gained = done.stdout.split("## Gained most")[1].split("## Lost most")
    assert "| a | 3 | 3 | 0.3333 | 1.0000 | +0.6667 |" in gained[0] and "(none)" in gained[1]
    assert "| top1 | 0.3333 | 0.6667 | 0.3333 |" in done.stdout  # 2/6 -> 4/6

    done = run_analyze(repo, str(tmp_path / "missing.npz"))
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {tmp_path / 'missing.npz'}: no such file or directory"
