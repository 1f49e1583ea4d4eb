#!/usr/bin/env python3
"""Exports a trained model to TorchScript or ONNX for clips ``[B, 3, T, S, S]`` -> logits
``[B, num_classes]``, and checks the exported model against PyTorch on a random clip.

- ``--format torchscript``: ``torch.jit.trace``; load with ``import videotl`` (registers the
  ``videotl::vector_attention`` op) then ``torch.jit.load(FILE)``; ``--portable`` traces
  standard operators only (loads without videotl, e.g. in libtorch).
- ``--format onnx``: ``torch.onnx.export(dynamo=True)``, opset 18, dynamic batch; run with
  ``onnxruntime.InferenceSession(FILE)`` (input ``clip``, output ``logits``). Needs
  ``pip install videotl[export]``.

Checked to export: X(2+1)D with conv2d+tokenlearner; ViViT/ViT (factorised too) with or without
token reducers and fusers; not exportable:
  model.token_reducer=ats: ATS keeps a data-dependent number of tokens, which a traced or ONNX
  graph cannot express.

Example:
    python tools/export.py --config configs/kinetics400/vivit_b16_tl8at6.yaml \\
        --checkpoint runs/k400/checkpoint.pt --format onnx --out vivit.onnx
"""

from __future__ import annotations

import logging
from pathlib import Path

from videotl.utils.cli import ToolParser, config_parser
from videotl.utils.tool_errors import run_tool

# videotl.inference.export.EXPORT_FORMATS, spelt here so that --help needs no torch (a test
# keeps them equal).
EXPORT_FORMATS = ("torchscript", "onnx")


def build_parser() -> ToolParser:
    parser = config_parser(__doc__)
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="trained weights (loaded strictly)")
    parser.add_argument("--format", choices=EXPORT_FORMATS, required=True,
                        help="torchscript or onnx")
    parser.add_argument("--out", type=Path, required=True, help="the file to write")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames T of the input (default: data.num_frames)")
    parser.add_argument("--size", type=int, default=None,
                        help="height and width S of the input (default: data.test_crop_size)")
    parser.add_argument("--portable", action="store_true",
                        help="torchscript: standard operators only (PyTorch's fused attention "
                             "instead of the videotl::vector_attention op)")
    return parser


def main() -> int:
    args = build_parser().parse_args()
    # Imported after parsing: --help and argument errors answer without loading torch.
    from videotl.config import load_config
    from videotl.inference.export import export_from_config

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = load_config(args.config, args.overrides)
    result = export_from_config(cfg, args.checkpoint, args.format, args.out,
                                args.frames, args.size, args.portable)
    print(f"wrote {result.path} ({result.format}, input [B, 3, {result.frames}, {result.size}, "
          f"{result.size}]); largest difference to PyTorch {result.max_abs_difference:.3g}")
    return 0


if __name__ == "__main__":
    run_tool(main)
