"""Slurm launches: the host list, GPU count and rendezvous read from a faked Slurm environment,
the exact launch line of tools/slurm/*.sbatch, a real two-process training launched through the
batch script (srun replaced by a fake that runs its command) and resumed by a second attempt,
and the requeue when the time-limit signal comes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from videotl.config import load_config
from videotl.utils.slurm import (
    SlurmEnvironmentError,
    expand_hostlist,
    first_host,
    gpus_per_node,
    rendezvous_port,
    slurm_launch_command,
)

DEMO = "configs/demo/synthetic_kinetics.yaml"


@pytest.mark.parametrize("hostlist,hosts", [
    ("node01", ["node01"]),
    ("node[01-02]", ["node01", "node02"]),
    ("node[08-11,20]", ["node08", "node09", "node10", "node11", "node20"]),
    ("gpu[1-2]-ib,cpu7", ["gpu1-ib", "gpu2-ib", "cpu7"]),
    ("r[1-2]n[09-10]", ["r1n09", "r1n10", "r2n09", "r2n10"]),
    ("a[098-101]", ["a098", "a099", "a100", "a101"]),
])
def test_hostlists_expand_as_slurm_does(hostlist, hosts):
    assert expand_hostlist(hostlist) == hosts


@pytest.mark.parametrize("hostlist,message", [
    ("node[01-02", "host list 'node[01-02': unbalanced brackets"),
    ("node[02-01]", "host list 'node[02-01]': range '02-01' runs backwards"),
    ("node[a-b]", "host list 'node[a-b]': bad range 'a-b'"),
    ("node1,,node2", "host list 'node1,,node2': empty host name"),
])
def test_bad_hostlists_are_named(hostlist, message):
    with pytest.raises(SlurmEnvironmentError) as error:
        expand_hostlist(hostlist)
    assert str(error.value) == message


def test_first_host_asks_scontrol_when_installed(tmp_path):
    scontrol = tmp_path / "scontrol"
    scontrol.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\n'
                        'printf "head7\\nhead8\\n"\n')
    scontrol.chmod(0o755)
    assert first_host("head[7-8]", str(scontrol)) == "head7"
    assert (tmp_path / "args").read_text() == "show hostnames head[7-8]\n"
    assert first_host("node[03-04]", None) == "node03"


@pytest.mark.parametrize("env,count", [
    ({"SLURM_GPUS_ON_NODE": "8", "SLURM_GPUS_PER_NODE": "4"}, 8),
    ({"SLURM_GPUS_PER_NODE": "4"}, 4),
    ({"SLURM_GPUS_PER_NODE": "a100:4"}, 4),
    ({"SLURM_GPUS_PER_NODE": "gpu:a100:2,v100:1"}, 3),
    ({"CUDA_VISIBLE_DEVICES": "0,1,3"}, 3),
    ({"CUDA_VISIBLE_DEVICES": "GPU-2b1c,GPU-77aa"}, 2),
    ({"CUDA_VISIBLE_DEVICES": "NoDevFiles"}, None),
    ({"CUDA_VISIBLE_DEVICES": ""}, None),
    ({}, None),
])
def test_gpus_per_node(env, count):
    assert gpus_per_node(env) == count


def test_a_garbled_gpu_count_is_named():
    with pytest.raises(SlurmEnvironmentError) as error:
        gpus_per_node({"SLURM_GPUS_PER_NODE": "a100:four"})
    assert str(error.value) == ("SLURM_GPUS_PER_NODE='a100:four': expected a GPU count such "
                                "as 4 or a100:4")


def test_port_is_derived_from_the_job_id():
    assert rendezvous_port(4242) == 19242
    assert rendezvous_port(15000) == rendezvous_port(30000) == 15000
    assert {rendezvous_port(job) for job in range(1, 40000)} == set(range(15000, 30000))


def test_launch_command_from_the_environment():
    env = {"SLURM_JOB_ID": "777", "SLURM_NNODES": "3", "SLURM_JOB_NODELIST": "gpu[5-7]",
           "SLURM_GPUS_ON_NODE": "8"}
    assert slurm_launch_command(env, "py", "tools/train_net.py", ["--config", "C", "a=1"]) == [
        "srun", "--nodes=3", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
        "py", "-m", "torch.distributed.run", "--nnodes=3", "--nproc_per_node=8",
        "--rdzv_backend=c10d", "--rdzv_id=777", "--rdzv_endpoint=gpu5:15777",
        "tools/train_net.py", "--config", "C", "a=1"]
    # An explicit count and port win; no GPU anywhere: one process per node.
    command = slurm_launch_command({**env, "SLURM_GPUS_ON_NODE": ""}, "py", "t.py")
    assert "--nproc_per_node=1" in command
    command = slurm_launch_command(env, "py", "t.py", nproc_per_node=2, port=1234)
    assert "--nproc_per_node=2" in command and "--rdzv_endpoint=gpu5:1234" in command


@pytest.mark.parametrize("missing", ["SLURM_JOB_ID", "SLURM_NNODES", "SLURM_JOB_NODELIST"])
def test_launch_outside_a_job_names_the_variable(missing):
    env = {"SLURM_JOB_ID": "7", "SLURM_NNODES": "1", "SLURM_JOB_NODELIST": "n1"}
    del env[missing]
    with pytest.raises(SlurmEnvironmentError) as error:
        slurm_launch_command(env, "py", "t.py")
    assert str(error.value) == f"{missing} is not set: run inside a Slurm job (sbatch, salloc)"


# --- the batch scripts, run by bash in a faked job -----------------------------------------

def fake_bin(folder, srun_body, scontrol=False):
    """A folder for PATH with a fake ``srun`` that logs its options to ``srun.log`` and then
    runs ``srun_body``, and with ``scontrol`` a fake ``scontrol`` that expands any host list to
    ``localhost`` and logs its other commands to ``scontrol.log``."""
    folder.mkdir()
    programs = {"srun": (
        "#!/bin/sh\n"
        "while [ $# -gt 0 ]; do\n"
        '  case "$1" in -*) echo "$1" >> "$(dirname "$0")/srun.log"; shift;; *) break;; esac\n'
        "done\n" + srun_body)}
    if scontrol:
        programs["scontrol"] = ('#!/bin/sh\n[ "$1" = show ] && { echo localhost; exit 0; }\n'
                                'echo "$@" >> "$(dirname "$0")/scontrol.log"\n')
    for name, text in programs.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    return folder


def job_environment(bin_dir, **slurm):
    """This environment without any Slurm or GPU variable of a job the tests may run in, plus
    ``slurm``, the fakes first on PATH and this interpreter for the scripts."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("SLURM_") and key != "CUDA_VISIBLE_DEVICES"}
    return {**env, **slurm, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}",
            "VIDEOTL_PYTHON": sys.executable, "VIDEOTL_ROOT": os.getcwd(), "OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def _in_repo(repo, monkeypatch):
    monkeypatch.chdir(repo)


@pytest.mark.parametrize("script,mode_args", [
    ("train", []),
    ("test", ["--checkpoint", "run/checkpoints/epoch_0010.pth", "--out", "run/test"]),
])
def test_dry_run_prints_the_launch_line_of_a_two_node_job(script, mode_args, tmp_path, repo):
    env = job_environment(fake_bin(tmp_path / "bin", 'exec "$@"\n'), SLURM_JOB_ID="123456",
                          SLURM_JOB_NODELIST="node[01-02]", SLURM_NNODES="2",
                          SLURM_GPUS_ON_NODE="4", SLURM_CPUS_PER_TASK="32")
    result = subprocess.run(
        ["bash", f"tools/slurm/{script}.sbatch", "--config", DEMO, "--dry-run", *mode_args,
         "solver.base_lr=0.4", "data.train_jitter_scales=[32, 40]"],
        capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1 --cpus-per-task=32 "
        f"{sys.executable} -m torch.distributed.run --nnodes=2 --nproc_per_node=4 "
        "--rdzv_backend=c10d --rdzv_id=123456 --rdzv_endpoint=node01:18456 "
        f"{repo}/tools/{script}_net.py --config {DEMO} {' '.join(mode_args)}"
        f"{' ' if mode_args else ''}solver.base_lr=0.4 'data.train_jitter_scales=[32, 40]'\n")
    assert not (tmp_path / "bin" / "srun.log").exists()  # printed, not run


def test_outside_a_job_the_script_says_which_variable_is_missing(tmp_path):
    env = job_environment(fake_bin(tmp_path / "bin", 'exec "$@"\n'))
    result = subprocess.run(["bash", "tools/slurm/train.sbatch", "--config", DEMO],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == ("error: SLURM_JOB_ID is not set: run inside a "
                                              "Slurm job (sbatch, salloc)")


@pytest.mark.parametrize("script", ["train", "test"])
def test_the_scripts_ask_for_a_cpu_per_loader_worker_and_process(script, repo):
    """docs/TRAINING.md#slurm: data.num_workers + 1 CPUs per GPU at the defaults, 8 x (4 + 1)."""
    text = (repo / "tools" / "slurm" / f"{script}.sbatch").read_text()
    requests = dict(line.removeprefix("#SBATCH --").split("=", 1) for line in text.splitlines()
                    if line.startswith("#SBATCH --") and "=" in line)
    workers = load_config(None, []).data.num_workers
    assert (requests["gpus-per-node"], workers, requests["cpus-per-task"]) == ("8", 4, "40")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Skipped only where processes cannot fork (Windows): torchrun starts its workers and the
# gloo rendezvous with POSIX process semantics; on Linux and macOS this test always runs.
@pytest.mark.skipif(not hasattr(os, "fork"), reason="torchrun needs POSIX processes")
def test_two_processes_train_through_the_batch_script_and_a_requeue_resumes(
        synthetic_kinetics, tmp_path):
    bin_dir = fake_bin(tmp_path / "bin", 'exec "$@"\n')
    env = job_environment(bin_dir, SLURM_JOB_ID="4242", SLURM_JOB_NODELIST="localhost",
                          SLURM_NNODES="1", SLURM_NODEID="0")
    out = tmp_path / "run"
    command = [
        "bash", "tools/slurm/train.sbatch", "--nproc-per-node", "2", "--port", str(free_port()),
        "--config", DEMO, f"data.root={synthetic_kinetics}", "data.synthetic=false",
        f"output_dir={out}", "device=cpu",
        "data.num_workers=0", "data.num_frames=4", "data.frame_stride=8",
        "data.train_jitter_scales=[32, 40]", "data.train_crop_size=32", "train.batch_size=5",
        "train.epochs=1", "train.eval_period=0", "train.final_test=false", "train.log_period=1",
    ]
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (bin_dir / "srun.log").read_text().split() == [
        "--nodes=1", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    log = (out / "log.txt").read_text()
    assert "process group of 2 processes, gloo backend" in log
    assert "for a global batch of 10 clips" in log
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # 20 training videos, 5 per process and step: 2 steps of 10 clips.
    assert [row["iteration"] for row in rows if row["type"] == "iteration"] == [1, 2]
    assert (out / "checkpoints" / "epoch_0001.pth").is_file()

    # A requeued job runs the same command: it finds the checkpoint in the same output_dir.
    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert second.returncode == 0, second.stderr[-3000:]
    log = (out / "log.txt").read_text()
    assert f"resumed from {out}/checkpoints/epoch_0001.pth (epoch 1, iteration 2)" in log
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["iteration"] for row in rows if row["type"] == "iteration"] == [1, 2]


def test_the_time_limit_signal_requeues_the_job(tmp_path):
    # srun "runs" until killed; its pid tells the test that the script is waiting on it.
    bin_dir = fake_bin(tmp_path / "bin", 'echo $$ > "$(dirname "$0")/srun.pid"\nexec sleep 60\n',
                       scontrol=True)
    env = job_environment(bin_dir, SLURM_JOB_ID="4243", SLURM_JOB_NODELIST="localhost",
                          SLURM_NNODES="1")
    stderr = tmp_path / "stderr"
    # Output to a file: the fake srun, which outlives the script, keeps a pipe open.
    with stderr.open("w") as errors:
        script = subprocess.Popen(["bash", "tools/slurm/train.sbatch", "--config", DEMO],
                                  stdout=subprocess.DEVNULL, stderr=errors, env=env)
    pid_file = bin_dir / "srun.pid"
    try:
        for _ in range(600):
            if script.poll() is not None or pid_file.exists() and pid_file.read_text().strip():
                break
            time.sleep(0.1)
        assert pid_file.exists(), stderr.read_text()
        script.send_signal(signal.SIGUSR1)
        assert script.wait(timeout=30) == 0
    finally:
        if script.poll() is None:
            script.kill()
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert (bin_dir / "scontrol.log").read_text() == "requeue 4243\n"
    assert "videotl: time limit near: requeueing job 4243" in stderr.read_text()
