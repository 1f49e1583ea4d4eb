#!/usr/bin/env python3
"""Train a video model from a config, then run the multi-view test (``train.final_test``).

Examples:
    python tools/train_net.py --config configs/demo/synthetic_kinetics.yaml
    python tools/train_net.py --config CFG output_dir=runs/exp1 solver.base_lr=0.4
    torchrun --nproc_per_node=8 tools/train_net.py --config CFG      # one process per GPU

A run writes to ``output_dir``: config.yaml (the resolved config), log.txt, metrics.jsonl,
training_curves.png, checkpoints/epoch_*.pth, test_metrics.json and test_scores.npz. Running
the same command again resumes from the last checkpoint (``train.auto_resume``).
"""

from __future__ import annotations

import json

from videotl.config import load_config
from videotl.engine.run import train
from videotl.utils.cli import config_parser
from videotl.utils.distributed import is_main_process, shutdown_distributed
from videotl.utils.tool_errors import run_tool


def main() -> None:
    args = config_parser(__doc__).parse_args()
    cfg = load_config(args.config, args.overrides)
    try:
        metrics = train(cfg)
        main_process = is_main_process()
    finally:
        shutdown_distributed()
    if main_process and metrics:
        shown = {k: v for k, v in metrics.items() if not isinstance(v, list)}
        print(json.dumps(shown, indent=2))
        print(f"outputs in {cfg.output_dir}/")


if __name__ == "__main__":
    run_tool(main)
