#!/usr/bin/env python3
"""Multi-view test of a checkpoint: ``test.num_temporal_views x test.num_spatial_crops`` views
per video, merged per video (``test.aggregation``), metrics to ``<output_dir>/test_metrics.json``
and per-video scores to ``<output_dir>/test_scores.npz``.

Examples:
    python tools/test_net.py --config CFG --checkpoint output/checkpoints/epoch_0010.pth
    python tools/test_net.py --config CFG --checkpoint W.pth test.num_temporal_views=10
    torchrun --nproc_per_node=4 tools/test_net.py --config CFG --checkpoint W.pth
"""

from __future__ import annotations

import json

from videotl.config import ConfigError
from videotl.engine.run import evaluate_checkpoint
from videotl.utils.checkpoint import CheckpointError
from videotl.utils.cli import config_parser, exit_with_error, load_or_exit
from videotl.utils.distributed import is_main_process, shutdown_distributed


def main() -> None:
    parser = config_parser(__doc__)
    parser.add_argument("--checkpoint", required=True, help="weights to test (.pth)")
    args = parser.parse_args()
    cfg = load_or_exit(args.config, args.overrides)
    main_process = True
    try:
        metrics = evaluate_checkpoint(cfg, args.checkpoint)
        main_process = is_main_process()
    except (ConfigError, CheckpointError) as error:
        exit_with_error(error)
    finally:
        shutdown_distributed()
    if main_process:
        print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
