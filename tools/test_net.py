#!/usr/bin/env python3
"""Multi-view test of a checkpoint: ``test.num_temporal_views x test.num_spatial_crops`` views
per video, merged per video (``test.aggregation``). Metrics (``test_metrics.json``), per-video
scores (``test_scores.npz``), the config and the log go to a folder of their own,
``<output_dir>/test/<checkpoint name>/`` or ``--out DIR``: a training run's own test results and
log are never overwritten.

Examples:
    python tools/test_net.py --config CFG --checkpoint output/checkpoints/epoch_0010.pth
    python tools/test_net.py --config CFG --checkpoint W.pth test.num_temporal_views=10
    torchrun --nproc_per_node=4 tools/test_net.py --config CFG --checkpoint W.pth
"""

from __future__ import annotations

import json
from dataclasses import replace

from videotl.utils.cli import ToolParser, config_parser
from videotl.utils.tool_errors import run_tool


def build_parser() -> ToolParser:
    parser = config_parser(__doc__)
    parser.add_argument("--checkpoint", required=True, help="weights to test (.pth)")
    parser.add_argument("--out", default=None,
                        help="results folder (default: <output_dir>/test/<checkpoint name>)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    # Imported after parsing: --help and argument errors answer without loading torch.
    from videotl.config import load_config
    from videotl.engine.run import evaluate_checkpoint, test_output_dir
    from videotl.utils.distributed import is_main_process, shutdown_distributed

    cfg = load_config(args.config, args.overrides)
    cfg = replace(cfg, output_dir=args.out or test_output_dir(cfg.output_dir, args.checkpoint))
    try:
        metrics = evaluate_checkpoint(cfg, args.checkpoint)
        main_process = is_main_process()
    finally:
        shutdown_distributed()
    if main_process:
        print(json.dumps(metrics, indent=2))
        print(f"outputs in {cfg.output_dir}/")


if __name__ == "__main__":
    run_tool(main)
