#!/usr/bin/env python3
"""Train a video model from a config, then run the multi-view test (``train.final_test``).

Examples:
    python tools/train_net.py --config configs/demo/synthetic_kinetics.yaml
    python tools/train_net.py --config CFG --out runs/exp1 solver.base_lr=0.4
    torchrun --nproc_per_node=8 tools/train_net.py --config CFG      # one process per GPU

A run writes to ``--out DIR`` (default: the config's ``output_dir``): config.yaml (the resolved
config), log.txt, metrics.jsonl, training_curves.png, checkpoints/epoch_*.pth,
test_metrics.json and test_scores.npz. Running the same command again resumes from the last
checkpoint (``train.auto_resume``).
"""

from __future__ import annotations

import json

from videotl.utils.cli import ToolParser, config_parser, output_dir_overrides
from videotl.utils.tool_errors import run_tool


def build_parser() -> ToolParser:
    parser = config_parser(__doc__)
    parser.add_argument("--out", default=None,
                        help="the run's folder: sets output_dir (default: the config's)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    overrides = output_dir_overrides(args.out, args.overrides)
    # Imported after parsing: --help and argument errors answer without loading torch.
    from videotl.config import load_config
    from videotl.engine.run import train
    from videotl.utils.distributed import is_main_process, shutdown_distributed

    cfg = load_config(args.config, overrides)
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
