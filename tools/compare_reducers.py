#!/usr/bin/env python3
"""Train and test a ViT/ViViT with each token reducer at matched GFLOPs, and write a Markdown
table (accuracy, GFLOPs, clips/s) of the model without reduction, every reducer, and ATS
inserted into the model trained without reduction (``videotl.experiments.reducer_comparison``).

Every reducer gets the config's seed and training budget; only ``model.token_reducer`` and
``model.reducer_tokens`` change. The config's reducer and token count set the GFLOPs budget.

Each run trains and tests in ``--out DIR``/<model> (checkpoints, logs, metrics).

Example (synthetic data, a few minutes on 2 CPU cores):
    python tools/compare_reducers.py --config configs/kinetics400/synthetic_reducers.yaml \\
        --out output/compare_reducers --table docs/REDUCER_COMPARISON.md
"""

from __future__ import annotations

import shlex
import sys

from videotl.files import write_text_atomic
from videotl.utils.cli import ToolParser, config_parser, registry_names
from videotl.utils.tool_errors import run_tool


def build_parser() -> ToolParser:
    parser = config_parser(__doc__)
    parser.add_argument("--reducers", default=None,
                        help="comma-separated token reducers (default: all registered; "
                             "docs/TOKEN_REDUCERS.md)")
    parser.add_argument("--out", default="output/compare_reducers",
                        help="folder where each run writes its checkpoints and logs "
                             "(default output/compare_reducers)")
    parser.add_argument("--table", help="write the Markdown report here (default: print it)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    # Imported after parsing: --help and argument errors answer without loading torch.
    from videotl.config import load_config
    from videotl.experiments.reducer_comparison import compare_reducers, markdown_report
    from videotl.models.reducers import TOKEN_REDUCERS

    reducers = (TOKEN_REDUCERS.names() if args.reducers is None
                else registry_names(TOKEN_REDUCERS, args.reducers, "--reducers"))
    cfg = load_config(args.config, args.overrides)
    comparison = compare_reducers(cfg, reducers, args.out)
    command = "python tools/compare_reducers.py " + shlex.join(sys.argv[1:])
    report = markdown_report(comparison, cfg, command, _machine(cfg.device))
    if args.table is None:
        print(report)
    else:
        write_text_atomic(args.table, report)
        print(f"wrote {args.table}")


def _machine(device: str) -> str:
    import torch

    from videotl.utils.distributed import select_device

    selected = select_device(device)
    if selected.type == "cuda":
        return f"one {torch.cuda.get_device_name(selected)}"
    return f"{torch.get_num_threads()} CPU threads, shared with other work"


if __name__ == "__main__":
    run_tool(main)
