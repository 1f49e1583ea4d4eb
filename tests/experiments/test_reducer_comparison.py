"""The reducer comparison: GFLOPs matching, the report, throughput and ATS's kept counts, and a
one-iteration run end to end on the tiny synthetic set."""

import torch

from videotl.config import load_config
from videotl.experiments.reducer_comparison import (
    ATS_INSERTED,
    NO_REDUCTION,
    Comparison,
    ComparisonRow,
    clips_per_second,
    compare_reducers,
    fitting_tokens,
    data_description,
    markdown_report,
    matched_tokens,
    reducer_layer_and_tokens,
    with_model,
)
from videotl.experiments.reducer_sweep import count_model
from videotl.models import build_model

CONFIG = "configs/kinetics400/synthetic_reducers.yaml"


def tiny(*overrides):
    return load_config(CONFIG, ["data.num_frames=4", "data.train_crop_size=32",
                                "data.test_crop_size=32", "model.reducer_tokens=[4]", *overrides])


def test_matched_tokens_are_the_closest_in_gflops():
    cfg = tiny()  # vivit_tiny at 4 x 32^2: T' = 2 of a 4 x 4 grid, reducer at block 2
    assert reducer_layer_and_tokens(cfg) == (2, 4, (4, 4))
    assert fitting_tokens("grid_pool", 32, (4, 4)) == [1, 4, 9, 16]
    assert fitting_tokens("ats", 32, (4, 4)) == list(range(1, 17))
    target = count_model(cfg).gflops
    for reducer in ("grid_pool", "ats"):
        count, gflops = matched_tokens(cfg, reducer, target, (4, 4))
        every = {k: count_model(with_model(cfg, token_reducer=reducer, reducer_tokens=[k])).gflops
                 for k in fitting_tokens(reducer, 32, (4, 4))}
        assert gflops == every[count]
        assert abs(gflops - target) == min(abs(g - target) for g in every.values())


def test_report_names_the_caveat_the_command_and_each_row():
    comparison = Comparison("vivit_tiny_tl4at2", 2, "tokenlearner_v11", 0.0367, [
        ComparisonRow(NO_REDUCTION, None, 0.057, {"top1": 0.3, "top5": 0.7}, 100.0),
        ComparisonRow("ats", 13, 0.0367, {"top1": 0.25, "top5": 0.65}, 150.0, 9.5, 0.031),
        ComparisonRow(ATS_INSERTED, 13, 0.0367, {"top1": 0.2}, 140.0, 8.25, 0.03),
    ])
    report = markdown_report(comparison, tiny(), "python tools/compare_reducers.py --config X",
                             "2 CPU threads, shared with other work")
    assert ("**Synthetic data: not the real kinetics set.** The clips are the synthetic "
            "kinetics-like set generated under `data/synthetic/kinetics`") in report
    assert "```\npython tools/compare_reducers.py --config X\n```" in report
    lines = report.splitlines()
    assert "| `none` |  | 0.0570 | 30.0 | 70.0 | 100.0 | 1.00 |  |" in lines
    assert "| `ats` | 13 | 0.0367 | 25.0 | 65.0 | 150.0 | 1.50 | 9.5 (0.0310) |" in lines
    assert "| `ats, inserted` | 13 | 0.0367 | 20.0 |  | 140.0 | 1.40 | 8.2 (0.0300) |" in lines


def test_report_describes_the_configured_data_not_an_assumed_one():
    cfg = tiny("data.synthetic=false", "data.dataset=charades", "data.root=/data/charades",
               "model.num_classes=157", "train.max_iters=50")
    text = data_description(cfg)
    assert text == ("Data: the `charades` set under `/data/charades` (157 classes, 4 frames at "
                    "32^2 for testing; the model is trained from scratch for 50 iterations).")
    assert "ynthetic" not in markdown_report(
        Comparison("vivit_tiny_tl4at2", 2, "tokenlearner_v11", 0.0367,
                   [ComparisonRow(NO_REDUCTION, None, 0.057, {"top1": 0.3}, 100.0)]),
        cfg, "python tools/compare_reducers.py", "CPU")


def test_clips_per_second_times_every_model_in_turn():
    models = [build_model(tiny()).eval(), build_model(tiny("model.reducer_layers=[]")).eval()]
    calls = []
    for position, model in enumerate(models):
        model.register_forward_hook(lambda m, args, out, p=position: calls.append(p))
    rates = clips_per_second(models, torch.randn(3, 3, 4, 32, 32), rounds=2)
    assert len(rates) == 2 and all(rate > 0 for rate in rates)
    assert calls == [0, 1, 0, 1, 0, 1]  # warm-up, then two rounds in turn


def test_one_iteration_comparison_end_to_end(synthetic_kinetics, tmp_path):
    cfg = tiny(f"data.root={synthetic_kinetics}", "data.synthetic=false", "train.max_iters=1",
               "train.batch_size=2",
               "test.num_temporal_views=1", "test.batch_size=5", "data.num_workers=0",
               "train.checkpoint_period=1", "data.train_jitter_scales=[32, 32]")
    comparison = compare_reducers(cfg, ["ats", "tokenlearner_v11"], tmp_path, timed_clips=2,
                                  timing_rounds=1)
    rows = {row.name: row for row in comparison.rows}
    assert list(rows) == [NO_REDUCTION, "ats", "tokenlearner_v11", ATS_INSERTED]
    assert rows["tokenlearner_v11"].tokens == 4 and rows[NO_REDUCTION].tokens is None
    assert rows[NO_REDUCTION].gflops > rows["tokenlearner_v11"].gflops
    for row in rows.values():
        assert 0 <= row.metrics["top1"] <= 1 and row.clips_per_second > 0
    assert 0 < rows["ats"].kept_tokens <= rows["ats"].tokens
    assert (tmp_path / "ats_inserted" / "test_metrics.json").is_file()
