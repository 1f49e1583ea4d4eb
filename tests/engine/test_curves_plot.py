"""The training-curves figure: validation metrics that are fractions on their own 0-1 axis,
counts such as num_videos not drawn (they flattened top-1 to a line at 0)."""

import json

from videotl.engine.log_hooks import plot_training_curves, training_figure, validation_series

STEPS = [{"type": "iteration", "iteration": i, "epoch": 1 + (i - 1) // 2, "loss": 2.0 / i,
          "lr": 0.1} for i in range(1, 5)]
EPOCHS = [
    {"type": "epoch", "epoch": 1, "iteration": 2, "loss": 1.5, "lr": 0.1},
    {"type": "epoch", "epoch": 2, "iteration": 4, "loss": 0.6, "lr": 0.1, "val_top1": 0.4,
     "val_top5": 0.9, "val_mean_class_accuracy": 0.35, "val_num_videos": 50,
     "val_num_failed_videos": 0, "val_num_failed_views": 2},
]


def test_validation_series_keeps_fractions_and_drops_counts():
    assert validation_series(EPOCHS) == {
        "top1": ([2], [0.4]), "top5": ([2], [0.9]), "mean_class_accuracy": ([2], [0.35])}
    assert validation_series([{"epoch": 3, "val_map": 0.2, "val_num_videos": 9}]) == {
        "map": ([3], [0.2])}
    assert validation_series(EPOCHS[:1]) == {}


def test_validation_axis_shows_the_metrics_from_0_to_1():
    figure = training_figure(STEPS, EPOCHS)
    validation = figure.axes[2]
    lines = {line.get_label(): list(line.get_ydata()) for line in validation.get_lines()}
    assert lines == {"top1": [0.4], "top5": [0.9], "mean_class_accuracy": [0.35]}
    assert validation.get_ylim() == (0.0, 1.0)
    assert len(training_figure(STEPS, EPOCHS[:1]).axes) == 2  # no validation, no panel


def test_png_written(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(r) + "\n" for r in STEPS + EPOCHS))
    plot_training_curves(metrics, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
