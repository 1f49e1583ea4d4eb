#!/usr/bin/env python3
"""Converts another project's checkpoint into a videotl checkpoint (``.safetensors``) for the
config's model, and prints what was mapped, adapted and skipped (docs/PRETRAINED.md).

The model is built from ``--config`` and its overrides (``model.pretrained`` in the config is
ignored); SRC is loaded into it exactly as ``model.pretrained=SRC`` would, so every setting the
checkpoint needs (``model.gelu``, ``model.classifier``, ``data.num_frames``,
``data.train_crop_size``, ``model.name`` for depth, width and tubelet) must be set; a difference
is an error naming the keys, never a partial load. The written file loads with
``model.pretrained=DST.safetensors`` (format ``videotl``) or ``tools/test_net.py --checkpoint``.

Formats (--format, default: the config's model.pretrained_format, ``auto``):
  auto     told by the file: .msgpack or no state-dict suffix -> scenic; tensor names
           vivit.* / embeddings.patch_embeddings.* -> hf; encoder.blocks.* -> videotl;
           blocks.* / patch_embed.* -> timm
  videotl  videotl weights (training checkpoints, converted files), by name
  timm     timm image ViT (.pth/.pt/.bin/.safetensors): 2D patch filters inflated into tubelets
           (model.pretrained_inflation=central|average), position grid resampled and repeated
           over time, classifier kept only for the same number of classes
  hf       Hugging Face transformers ViViT, VivitForVideoClassification or VivitModel
           (pytorch_model.bin or model.safetensors; config.json beside it is read for
           hidden_act, layer_norm_eps, qkv_bias): q/k/v stacked into qkv; needs model.gelu=tanh
           (hidden_act gelu_fast) and model.classifier=token
  scenic   Scenic Flax msgpack checkpoints of ViViT and TokenLearner ViT (read without JAX)

Example (the public ViViT-B/16x2 Kinetics-400 model, google/vivit-b-16x2-kinetics400):
    python tools/convert_checkpoint.py --config configs/kinetics400/vivit_b16.yaml \\
        model.gelu=tanh vivit-b-16x2-kinetics400/model.safetensors \\
        --out weights/vivit_b16_k400.safetensors
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

from videotl.errors import InputError
from videotl.utils.cli import ToolParser, config_parser
from videotl.utils.tool_errors import run_tool

# A ``key=value`` override (dotted key); every other positional argument is a path.
_OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")
# videotl.models.weights.FORMATS, spelt here so that --help needs no torch (a test keeps them
# equal).
FORMATS = ("auto", "videotl", "timm", "hf", "scenic")


def build_parser() -> ToolParser:
    parser = config_parser(__doc__)
    parser.add_argument("--out", required=True, help="videotl checkpoint to write (.safetensors)")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="format of SRC (default: the config's model.pretrained_format)")
    parser.usage = "convert_checkpoint.py [-h] --config CFG [--format F] SRC --out DST " \
                   "[key=value ...]"
    return parser


def main() -> None:
    args = build_parser().parse_args()
    sources = [item for item in args.overrides if not _OVERRIDE.match(item)]
    overrides = [item for item in args.overrides if _OVERRIDE.match(item)]
    if len(sources) != 1:
        raise InputError(f"expected one checkpoint to convert (SRC), got {len(sources)}: "
                         f"{' '.join(sources) or 'none'}")
    if not args.out.endswith(".safetensors"):
        raise InputError(f"--out must name a .safetensors file, got {args.out!r}")
    # Imported after parsing: --help and argument errors answer without loading torch.
    from videotl.config import load_config
    from videotl.models import build_model
    from videotl.models.weights import load_pretrained
    from videotl.utils.checkpoint import save_state_dict

    cfg = load_config(args.config, overrides)
    cfg = replace(cfg, model=replace(cfg.model, pretrained=None))
    model = build_model(cfg)
    file_format = args.format or cfg.model.pretrained_format
    report = load_pretrained(model, sources[0], file_format, cfg.model.pretrained_inflation)
    metadata = {
        "format": "videotl",
        "model.name": cfg.model.name,
        "converted_from": sources[0],
        "source_format": file_format,
        "overrides": json.dumps(overrides),
    }
    save_state_dict(model.state_dict(), args.out, metadata)
    print(report.summary())
    print(f"wrote {args.out} ({len(model.state_dict())} tensors; load it with "
          f"model.pretrained={args.out})")


if __name__ == "__main__":
    run_tool(main)
