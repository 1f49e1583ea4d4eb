#!/usr/bin/env python3
"""Every metric of a test recomputed from its ``test_scores.npz`` (with the evaluator's own
functions; multi-label when the targets are ``[V, K]``), the per-class report and the
confusions; or two runs compared class by class (``--compare A.npz B.npz``: per-class
accuracy or AP of each, the delta B - A, and the classes that gained and lost most).

Class names: ``--class-names FILE`` (one per line), else the ``per_class.csv`` beside the scores
(written by test_net.py and train_net.py), else the class indices.

Outputs under ``--out DIR`` (without it, the summary is only printed):
    one run:  metrics.json, per_class.csv, confusion.csv and confusion.png (single-label, up to
              60 classes) or top_confusions.csv, summary.md
    compare:  compare.csv (class, support_a, support_b, <metric>_a, <metric>_b, delta),
              compare.md (overall metrics of both, the classes that gained and lost most)

Examples:
    python tools/analyze_results.py OUT/test_scores.npz --out OUT/analysis
    python tools/analyze_results.py --compare RUN_A/test_scores.npz RUN_B/test_scores.npz --top 10
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from videotl.errors import InputError
from videotl.files import write_text_atomic
from videotl.utils.cli import ToolParser, tool_parser
from videotl.utils.tool_errors import run_tool

if TYPE_CHECKING:
    from videotl.evaluation.reports import ClassDelta

# Every import of torch or of the videotl packages that use it (videotl.evaluation) waits until the
# arguments are parsed: --help and argument errors answer at once.


def build_parser() -> ToolParser:
    parser = tool_parser(__doc__)
    parser.add_argument("scores", nargs="?", type=Path, default=None,
                        help="a test_scores.npz to analyse (or use --compare)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), default=None,
                        help="two test_scores.npz over the same classes: per-class deltas B - A")
    parser.add_argument("--class-names", type=Path, default=None,
                        help="class names in index order, one per line (default: the "
                             "per_class.csv beside the scores, else the indices)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the CSV and Markdown outputs (default: print only)")
    parser.add_argument("--top", type=int, default=10,
                        help="how many classes that gained and lost most to show (default 10)")
    parser.add_argument("--map-missing-as-zero", action="store_true",
                        help="count classes without positives as AP 0 in map (multi-label)")
    return parser


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    if (args.scores is None) == (args.compare is None):
        parser.error("give one test_scores.npz, or --compare A.npz B.npz")
    if args.compare is None:
        print(analyze(args.scores, args.class_names, args.out, args.map_missing_as_zero))
    else:
        print(compare(*args.compare, args.class_names, args.out, args.top,
                      args.map_missing_as_zero))


def analyze(path: Path, classes: Path | None, out: Path | None, missing_as_zero: bool) -> str:
    """Recomputes the metrics of ``path``; writes the reports to ``out``; returns Markdown."""
    from videotl.evaluation.reports import load_test_scores, recompute_metrics, write_class_reports

    scores, targets, _ = load_test_scores(path)
    names = class_names(classes, path, scores.shape[1])
    metrics = recompute_metrics(scores, targets, missing_as_zero)
    summary = f"# {path}\n\n{metrics_table({'value': metrics})}"
    if out is not None:
        write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        write_class_reports(scores, targets, names, out)
        write_text_atomic(out / "summary.md", summary)
    return summary


def compare(path_a: Path, path_b: Path, classes: Path | None, out: Path | None, top: int,
            missing_as_zero: bool) -> str:
    """Compares two runs class by class; writes compare.csv/.md to ``out``; returns Markdown."""
    from videotl.evaluation.reports import (
        compare_classes,
        compare_csv,
        is_multilabel,
        largest_changes,
        load_test_scores,
        recompute_metrics,
    )

    scores_a, targets_a, _ = load_test_scores(path_a)
    scores_b, targets_b, _ = load_test_scores(path_b)
    names = class_names(classes, path_a, scores_a.shape[1])
    deltas = compare_classes(scores_a, targets_a, scores_b, targets_b, names)
    metrics = {"A": recompute_metrics(scores_a, targets_a, missing_as_zero),
               "B": recompute_metrics(scores_b, targets_b, missing_as_zero)}
    gained, lost = largest_changes(deltas, top)
    summary = (f"# A: {path_a}\n# B: {path_b}\n\n{metrics_table(metrics)}\n"
               f"## Gained most (B - A)\n\n{delta_table(gained)}\n"
               f"## Lost most (B - A)\n\n{delta_table(lost)}")
    if out is not None:
        write_text_atomic(out / "compare.csv", compare_csv(deltas, is_multilabel(targets_a)))
        write_text_atomic(out / "compare.md", summary)
    return summary


def class_names(classes: Path | None, scores_path: Path, num_classes: int) -> list[str]:
    """Names from ``classes`` (one per line), the ``per_class.csv`` beside ``scores_path``, or
    the indices."""
    from videotl.evaluation.reports import default_class_names

    if classes is not None:
        names = [line.strip() for line in classes.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
        if len(names) != num_classes:
            raise InputError(f"{classes}: {len(names)} class names for scores of "
                             f"{num_classes} classes")
        return names
    beside = scores_path.parent / "per_class.csv"
    if beside.is_file():
        with open(beside, encoding="utf-8", newline="") as handle:
            names = [row["class"] for row in csv.DictReader(handle)]
        if len(names) == num_classes:
            return names
    return default_class_names(None, num_classes)


def metrics_table(columns: dict[str, dict[str, Any]]) -> str:
    """A Markdown table: one row per metric, one column per run (and B - A for two runs)."""
    keys = [k for k in next(iter(columns.values())) if not isinstance(
        next(iter(columns.values()))[k], (list, str, bool))]
    header = ["metric", *columns] + (["B - A"] if len(columns) == 2 else [])
    rows = []
    for key in keys:
        values = [run.get(key, math.nan) for run in columns.values()]
        if len(values) == 2:
            values.append(values[1] - values[0])
        rows.append([key, *(_cell(v) for v in values)])
    return _markdown(header, rows)


def delta_table(deltas: Sequence[ClassDelta]) -> str:
    if not deltas:
        return "(none)\n"
    return _markdown(["class", "support A", "support B", "A", "B", "B - A"],
                     [[d.name, str(d.support_a), str(d.support_b), _cell(d.metric_a),
                       _cell(d.metric_b), f"{d.delta:+.4f}"] for d in deltas])


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    run_tool(main)
