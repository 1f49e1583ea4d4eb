"""The launch line of a Slurm job: ``srun`` starts one ``torchrun`` per node, and the torchrun
agents meet at a c10d rendezvous on the job's first node.

Everything comes from the environment Slurm gives the batch script:

- the nodes: ``SLURM_NNODES`` and the first host of ``SLURM_JOB_NODELIST``, expanded by
  ``scontrol show hostnames`` where it is installed, else by ``expand_hostlist`` (the same
  bracket syntax, ``node[01-02,07]``);
- processes per node (``nproc_per_node``): an explicit count, else the GPUs Slurm allocated on
  the node (``SLURM_GPUS_ON_NODE``, else ``SLURM_GPUS_PER_NODE`` as ``[type:]count``), else the
  devices in ``CUDA_VISIBLE_DEVICES``, else one process (a CPU node);
- the rendezvous: ``--rdzv_id`` is the job id and the port is derived from it
  (``rendezvous_port``), so a requeued job, which keeps its id, meets on the same endpoint, and
  two jobs sharing a node do not collide.

The batch scripts (``tools/slurm/*.sbatch``) run ``tools/slurm/launch.py``, which prints or runs
``slurm_launch_command``.
"""

from __future__ import annotations

import itertools
import logging
import re
import subprocess
from typing import Mapping, Sequence

from videotl.errors import InputError

logger = logging.getLogger(__name__)

# Below Linux's ephemeral range (32768-60999), where the kernel picks ports for outgoing
# connections (NCCL's, the data loaders'), so that the rendezvous port is rarely taken.
PORT_BASE = 15000
PORT_SPAN = 15000

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_COUNT = re.compile(r"^(?:[^:,]+:)*(\d+)(?:\([^)]*\))?$")


class SlurmEnvironmentError(InputError):
    """The Slurm environment lacks or garbles a variable the launch needs; the message names
    it."""


def expand_hostlist(hostlist: str) -> list[str]:
    """Host names of a Slurm host list, in order: ``"node[01-03,07],gpu5"`` ->
    ``["node01", "node02", "node03", "node07", "gpu5"]``. Ranges keep the zero padding of their
    first bound; several bracket groups in one name expand to every combination, as Slurm does
    (``"r[1-2]n[1-2]"`` -> ``r1n1, r1n2, r2n1, r2n2``)."""
    hosts: list[str] = []
    for name in _split_outside_brackets(hostlist.strip()):
        if not name:
            raise SlurmEnvironmentError(f"host list {hostlist!r}: empty host name")
        parts = re.split(r"(\[[^\]]*\])", name)
        choices = []
        for part in parts:
            if part.startswith("["):
                choices.append(_expand_ranges(part[1:-1], hostlist))
            elif "[" in part or "]" in part:
                raise SlurmEnvironmentError(f"host list {hostlist!r}: unbalanced brackets")
            else:
                choices.append([part])
        hosts += ["".join(combination) for combination in itertools.product(*choices)]
    return hosts


def _split_outside_brackets(text: str) -> list[str]:
    names, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            names.append(text[start:index])
            start = index + 1
    names.append(text[start:])
    return names


def _expand_ranges(ranges: str, hostlist: str) -> list[str]:
    values = []
    for item in ranges.split(","):
        match = _RANGE.match(item.strip())
        if match is None:
            raise SlurmEnvironmentError(f"host list {hostlist!r}: bad range {item!r}")
        first, last = match.group(1), match.group(2) or match.group(1)
        if int(last) < int(first):
            raise SlurmEnvironmentError(f"host list {hostlist!r}: range {item!r} runs backwards")
        values += [str(number).zfill(len(first)) for number in range(int(first), int(last) + 1)]
    return values


def first_host(hostlist: str, scontrol: str | None) -> str:
    """The first host of ``hostlist``: ``scontrol show hostnames`` (Slurm's own expansion) when
    ``scontrol`` names the program, else ``expand_hostlist``."""
    if scontrol is not None:
        result = subprocess.run([scontrol, "show", "hostnames", hostlist],
                                capture_output=True, text=True, check=False)
        hosts = result.stdout.split()
        if result.returncode == 0 and hosts:
            return hosts[0]
        logger.warning("scontrol show hostnames %s failed (%s); expanding it here", hostlist,
                       result.stderr.strip() or f"exit status {result.returncode}")
    return expand_hostlist(hostlist)[0]


def gpus_per_node(env: Mapping[str, str]) -> int | None:
    """GPUs on each node from Slurm's variables or ``CUDA_VISIBLE_DEVICES``; None when none of
    them says. ``SLURM_GPUS_PER_NODE`` may carry a type (``a100:4``) or several
    (``a100:2,v100:2``, summed)."""
    if env.get("SLURM_GPUS_ON_NODE", "").strip():
        return _count("SLURM_GPUS_ON_NODE", env["SLURM_GPUS_ON_NODE"])
    per_node = env.get("SLURM_GPUS_PER_NODE", "").strip()
    if per_node:
        return sum(_count("SLURM_GPUS_PER_NODE", item) for item in per_node.split(","))
    visible = env.get("CUDA_VISIBLE_DEVICES", "").strip()
    # "NoDevFiles" is what Slurm sets when the job was given no GPU.
    if visible and visible != "NoDevFiles":
        return len([item for item in visible.split(",") if item.strip()])
    return None


def _count(name: str, value: str) -> int:
    match = _COUNT.match(value.strip())
    if match is None:
        raise SlurmEnvironmentError(f"{name}={value!r}: expected a GPU count such as 4 or a100:4")
    return int(match.group(1))


def rendezvous_port(job_id: int) -> int:
    """``PORT_BASE + job_id % PORT_SPAN``: the same for every node and every requeue of a job."""
    return PORT_BASE + job_id % PORT_SPAN


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SlurmEnvironmentError(f"{name} is not set: run inside a Slurm job (sbatch, salloc)")
    return value


def _positive(name: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise SlurmEnvironmentError(f"{name}={value!r}: expected a positive integer")
    return int(value)


def slurm_launch_command(
    env: Mapping[str, str],
    python: str,
    script: str,
    args: Sequence[str] = (),
    nproc_per_node: int | None = None,
    port: int | None = None,
    scontrol: str | None = None,
) -> list[str]:
    """``srun ... python -m torch.distributed.run ... script args`` for the job in ``env``.

    Args:
        env: the job's environment (``os.environ`` in the batch script).
        python: the interpreter every node runs torchrun with (the batch script's own, so that
            all nodes use the same environment).
        script: the tool to run (``tools/train_net.py``, ``tools/test_net.py``).
        args: its arguments, passed through unchanged (``--config CFG key=value ...``).
        nproc_per_node: processes per node; default ``gpus_per_node(env)``, else 1.
        port: the rendezvous port; default ``rendezvous_port(SLURM_JOB_ID)``.
        scontrol: the ``scontrol`` program, if installed (see ``first_host``).

    Raises:
        SlurmEnvironmentError: a variable is missing or cannot be read.
    """
    job_id = _positive("SLURM_JOB_ID", _required(env, "SLURM_JOB_ID"))
    nodes = _positive("SLURM_NNODES", _required(env, "SLURM_NNODES"))
    host = first_host(_required(env, "SLURM_JOB_NODELIST"), scontrol)
    if nproc_per_node is None:
        nproc_per_node = gpus_per_node(env)
        if nproc_per_node is None:
            logger.warning("no GPU count in the Slurm environment or CUDA_VISIBLE_DEVICES: one "
                           "process per node (set --nproc-per-node to choose)")
            nproc_per_node = 1
    if nproc_per_node < 1:
        raise SlurmEnvironmentError(f"processes per node must be positive, got {nproc_per_node}")
    if port is None:
        port = rendezvous_port(job_id)
    srun = ["srun", f"--nodes={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    # Since Slurm 22.05 srun no longer inherits the batch job's --cpus-per-task; the one task
    # per node needs all of them for its processes' data-loading workers.
    cpus = env.get("SLURM_CPUS_PER_TASK", "").strip()
    if cpus:
        srun.append(f"--cpus-per-task={_positive('SLURM_CPUS_PER_TASK', cpus)}")
    torchrun = [
        python, "-m", "torch.distributed.run",
        f"--nnodes={nodes}", f"--nproc_per_node={nproc_per_node}",
        "--rdzv_backend=c10d", f"--rdzv_id={job_id}", f"--rdzv_endpoint={host}:{port}",
    ]
    return [*srun, *torchrun, script, *args]
