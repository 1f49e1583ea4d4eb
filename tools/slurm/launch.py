#!/usr/bin/env python3
"""Runs (or with --dry-run prints) the launch line of a Slurm job: srun starts one torchrun per
node, which starts --nproc-per-node processes of tools/train_net.py or tools/test_net.py
(videotl.utils.slurm says where each part of the line comes from). The batch scripts
tools/slurm/train.sbatch and test.sbatch call it; every argument it does not know goes to the
tool unchanged.

Examples (inside a job, e.g. salloc --nodes=2 --gpus-per-node=8):
    python tools/slurm/launch.py train --config CFG solver.base_lr=0.4
    python tools/slurm/launch.py test --config CFG --checkpoint W.pth --dry-run
    python tools/slurm/launch.py train --nproc-per-node 4 --config CFG
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import sys
from pathlib import Path

from videotl.utils.cli import tool_parser
from videotl.utils.slurm import SlurmEnvironmentError, slurm_launch_command
from videotl.utils.tool_errors import run_tool

TOOLS = Path(__file__).resolve().parent.parent
SCRIPTS = {"train": TOOLS / "train_net.py", "test": TOOLS / "test_net.py"}


def build_parser() -> argparse.ArgumentParser:
    parser = tool_parser(__doc__)
    parser.allow_abbrev = False  # an abbreviated tool option must not match one of ours
    parser.add_argument("mode", choices=sorted(SCRIPTS), help="which tool to run")
    parser.add_argument("--nproc-per-node", type=int, default=None,
                        help="processes per node (default: the node's GPUs, else 1)")
    parser.add_argument("--port", type=int, default=None,
                        help="rendezvous port (default: derived from SLURM_JOB_ID)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the launch line instead of running it")
    return parser


def main() -> int:
    # The tool's own arguments (--config, key=value, ...) are left for it, in their order.
    args, tool_args = build_parser().parse_known_args()
    logging.basicConfig(format="warning: %(message)s", level=logging.WARNING)
    if args.debug:
        tool_args.append("--debug")  # the tool's tracebacks too
    command = slurm_launch_command(
        os.environ, sys.executable, str(SCRIPTS[args.mode]), tool_args,
        nproc_per_node=args.nproc_per_node, port=args.port, scontrol=shutil.which("scontrol"))
    line = shlex.join(command)
    print(line, flush=True)
    if args.dry_run:
        return 0
    if shutil.which(command[0]) is None:
        raise SlurmEnvironmentError("srun is not on PATH: run inside a Slurm job (sbatch, salloc)")
    # srun takes this process's place, so the batch script waits on srun itself.
    os.execvp(command[0], command)
    return 1  # not reached


if __name__ == "__main__":
    run_tool(main)
