#!/usr/bin/env python3
"""TokenLearner attention maps over a video (the paper's Figure 8): runs a trained model over the
video (sliding clips sampled and normalised as in testing), captures the maps of one TokenLearner
and writes to --out an MP4 and a GIF (input + one heat-map overlay per token, top-5 predictions),
a PNG contact sheet (tokens x frames) and a JSON summary.

Examples:
    python tools/visualize_attention.py --config CFG --checkpoint W.pth --video clip.mp4 --out vis
    python tools/visualize_attention.py --config CFG --checkpoint W.pth --video long.mp4 \\
        --out vis --layer 1 --tokens 0,5 --start 30 --duration 10 data.test_crop_size=320
"""

from __future__ import annotations

import logging
from pathlib import Path

from videotl.errors import InputError
from videotl.utils.cli import ToolParser, config_parser
from videotl.utils.tool_errors import run_tool

# videotl.visualization.attention.CROPS and .clips.CLIP_PLANS, spelt here so that --help needs
# no torch (a test keeps them equal).
CROPS = ("full", "centre")
CLIP_PLANS = ("all", "centre")


def token_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"--tokens expects comma-separated token numbers, got {text!r}") from None


def build_parser() -> ToolParser:
    parser = config_parser(__doc__)
    parser.add_argument("--checkpoint", required=True, help="trained weights (.pth)")
    parser.add_argument("--video", required=True, help="the video file")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--layer", type=int, default=0,
                        help="which TokenLearner, in the order they run (default 0: the first)")
    parser.add_argument("--tokens", default=None,
                        help="tokens to show, e.g. 0,1,2,3 (default: the first four)")
    parser.add_argument("--crop", choices=CROPS, default="full",
                        help="model input: the whole frame resized to data.test_crop_size on "
                             "its short side (full), or one-crop testing's centre square")
    parser.add_argument("--clips", choices=CLIP_PLANS, default="all",
                        help="sliding clips over the video (all) or one centred clip (centre)")
    parser.add_argument("--start", type=float, default=0.0, help="start of the span, seconds")
    parser.add_argument("--duration", type=float, default=None,
                        help="length of the span in seconds (default: to the end)")
    parser.add_argument("--class-names", default=None,
                        help="class-name file (default: the dataset's, under data.root)")
    parser.add_argument("--gif-scale", type=float, default=1.0, help="GIF size factor")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    # Imported after parsing: --help and argument errors answer without loading torch.
    from videotl.config import load_config
    from videotl.visualization import visualize

    cfg = load_config(args.config, args.overrides)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    tokens = token_list(args.tokens) if args.tokens is not None else None
    if not Path(args.video).is_file():
        raise InputError(f"--video {args.video}: no such file")
    try:
        paths = visualize(
            cfg, args.checkpoint, args.video, args.out, layer=args.layer, tokens=tokens,
            class_names_file=args.class_names, gif_scale=args.gif_scale, crop=args.crop,
            clips=args.clips, start_s=args.start, duration_s=args.duration,
        )
    except ValueError as error:
        if isinstance(error, InputError):
            raise
        # visualize() checks the tool's own arguments (--layer, --tokens, --start...) with
        # ValueError: bad input of this command line.
        raise InputError(str(error)) from error
    for path in paths.values():
        print(path)


if __name__ == "__main__":
    run_tool(main)
