import json

import numpy as np
import pytest
import torch

from fakes import PatternClips
from videotl.evaluation import ensemble as ensemble_module
from videotl.evaluation.ensemble import ViewEnsembler
from videotl.evaluation.evaluator import evaluate, write_test_outputs


def test_mean_and_max_over_views_and_failed_views():
    scores = torch.tensor([[0.2, 0.8], [0.6, 0.4], [0.9, 0.1], [0.5, 0.5]])
    videos = torch.tensor([0, 0, 1, 2])
    ok = torch.tensor([True, True, True, False])
    for aggregation, expected in (("mean", [0.4, 0.6]), ("max", [0.6, 0.8])):
        ensembler = ViewEnsembler(3, 2, aggregation)
        ensembler.add(videos, scores, ok)
        merged = ensembler.video_scores()
        torch.testing.assert_close(merged[0], torch.tensor(expected, dtype=torch.float64))
        torch.testing.assert_close(merged[1], scores[2].double())
        assert torch.isnan(merged[2]).all()
        assert ensembler.views.tolist() == [2, 1, 0]
        assert ensembler.failed_views.tolist() == [0, 0, 1]


def test_unknown_aggregation():
    with pytest.raises(ValueError, match="aggregation must be one of"):
        ViewEnsembler(1, 1, "median")


@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_gather_merges_views_split_across_processes(monkeypatch, aggregation):
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(12, 4, generator=generator)
    videos = torch.arange(12) // 3  # 4 videos x 3 views
    single = ViewEnsembler(4, 4, aggregation)
    single.add(videos, scores, torch.ones(12, dtype=torch.bool))
    # Three processes get interleaved items, so views of one video land on different ranks.
    ranks = []
    for rank in range(3):
        part = ViewEnsembler(4, 4, aggregation)
        part.add(videos[rank::3], scores[rank::3], torch.ones(4, dtype=torch.bool))
        ranks.append(part)
    shared = [(torch.nonzero(p.views).flatten(),) for p in ranks]
    payloads = [(s[0], p.scores[s[0]], p.views[s[0]], p.failed_views[s[0]])
                for s, p in zip(shared, ranks)]
    monkeypatch.setattr(ensemble_module, "all_gather_objects", lambda obj: payloads)
    ranks[0].gather()
    torch.testing.assert_close(ranks[0].video_scores(), single.video_scores())
    assert ranks[0].views.tolist() == [3, 3, 3, 3]


def test_evaluate_reports_undecodable_videos_and_writes_outputs(tmp_path):
    dataset = PatternClips(num_videos=10, views=3, broken=(4,))
    loader = torch.utils.data.DataLoader(dataset, batch_size=4)

    class Oracle(torch.nn.Module):  # scores the bright frame: always right
        def forward(self, x):
            return x.mean(dim=(1, 3, 4))[:, :3] * 10

    result = evaluate(Oracle(), loader, torch.device("cpu"))
    assert result.metrics["num_videos"] == 9 and result.metrics["num_failed_videos"] == 1
    assert result.metrics["num_failed_views"] == 3
    assert result.failed_videos == ["video_004.mp4"]
    assert result.metrics["top1"] == pytest.approx(1.0)
    assert "top5" not in result.metrics  # only 3 classes
    metrics_path, scores_path = write_test_outputs(result, tmp_path)
    written = json.loads(metrics_path.read_text())
    assert written["failed_videos"] == ["video_004.mp4"] and written["top1"] == 1.0
    saved = np.load(scores_path)
    assert saved["scores"].shape == (10, 3) and list(saved["video_ids"]) == dataset.video_ids
    assert np.isnan(saved["scores"][4]).all() and saved["views"].tolist()[4] == 0


def test_evaluate_multilabel_uses_max_and_map():
    dataset = PatternClips(num_videos=12, views=2, multilabel=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=5)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(3))
    result = evaluate(model, loader, torch.device("cpu"))
    assert result.metrics["aggregation"] == "max"
    assert 0.0 <= result.metrics["map"] <= 1.0 and result.targets.shape == (12, 3)


def test_evaluate_runs_the_forward_pass_under_the_given_autocast_dtype():
    dataset = PatternClips(num_videos=4, views=2)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4)
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
            return torch.nn.functional.linear(x.mean(dim=(1, 3, 4)), torch.eye(3, x.shape[2]))

    bf16 = evaluate(Probe(), loader, torch.device("cpu"), torch.bfloat16)
    assert seen and all(state == (True, torch.bfloat16) for state in seen)
    seen.clear()
    fp32 = evaluate(Probe(), loader, torch.device("cpu"))
    assert seen and not any(enabled for enabled, _ in seen)
    assert bf16.scores.dtype == fp32.scores.dtype
