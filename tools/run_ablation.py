#!/usr/bin/env python3
"""Train the paper's X(2+1)D ablation variants with the same seed, data and budget, and write
one table (test mAP or top-1, parameters, GFLOPs, training clips/s) as Markdown and CSV.

Variants are the names in videotl.experiments.ablation_variants (docs/ABLATIONS.md), or "all".

Example:
    python tools/run_ablation.py --config configs/charades/synthetic_ablation.yaml \\
        --variants conv2d+conv1d,conv2d+tokenlearner,fixed_grid_tokens train.epochs=5 \\
        --out output/ablations
"""

from __future__ import annotations

from videotl.experiments.ablation_variants import ABLATION_VARIANTS
from videotl.utils.cli import ToolParser, config_parser
from videotl.utils.tool_errors import run_tool


def build_parser() -> ToolParser:
    parser = config_parser(__doc__)
    parser.add_argument("--variants", required=True, help='comma-separated names, or "all"')
    parser.add_argument("--out", default="output/ablations",
                        help="folder where each variant trains, in OUT/<variant> "
                             "(default output/ablations)")
    parser.add_argument("--markdown", default=None, help="table file (default: OUT/ablations.md)")
    parser.add_argument("--csv", default=None, help="CSV file (default: OUT/ablations.csv)")
    parser.add_argument("--heading", default="", help="text written above the Markdown table")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    # Imported after parsing: --help and argument errors answer without loading torch.
    from videotl.config import load_config
    from videotl.experiments.ablation import run_variants, write_tables

    load_config(args.config, args.overrides)  # config errors before any training
    names = (ABLATION_VARIANTS.names() if args.variants == "all"
             else [n.strip() for n in args.variants.split(",") if n.strip()])
    variants = [(name, ABLATION_VARIANTS.get(name).overrides) for name in names]
    results = run_variants(args.config, variants, args.overrides, args.out)
    markdown = args.markdown or f"{args.out}/ablations.md"
    csv_path = args.csv or f"{args.out}/ablations.csv"
    write_tables(results, markdown, csv_path, args.heading)
    print(open(markdown, encoding="utf-8").read())
    print(f"wrote {markdown} and {csv_path}")


if __name__ == "__main__":
    run_tool(main)
