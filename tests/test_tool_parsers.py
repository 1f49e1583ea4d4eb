"""Every script in tools/, data_prep/ and benchmarks/: a ``build_parser()`` that builds its parser
without running anything, help text for every option, one spelling per concept (``--out``,
``--jobs``, ``--class-names``), and ``--help`` that answers without importing torch (the script
imports its heavy modules after parsing; tests/test_layout.py says why scripts may)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from videotl.utils.cli import RENAMED_OPTIONS

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("tools", "tools/slurm", "data_prep", "benchmarks")
# The benchmark scripts' shared module (and the package marker that lets them import it): every
# other Python file in FOLDERS is a script.
SHARED = {"benchmarks/__init__.py", "benchmarks/common.py"}
SCRIPTS = sorted(name for folder in FOLDERS for p in (REPO / folder).glob("*.py")
                 if (name := str(p.relative_to(REPO))) not in SHARED)
# What --help must not load: each takes seconds to import on a busy machine.
HEAVY = ("torch", "torchvision", "numpy", "decord", "matplotlib")


def load(script: str):
    """Imports the script as a module (its ``__main__`` block does not run)."""
    name = "script_" + script.replace("/", "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, REPO / script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def option(parser: argparse.ArgumentParser, name: str) -> argparse.Action:
    return next(a for a in parser._actions if name in a.option_strings or a.dest == name)


def test_the_scripts_are_found():
    assert {"tools/train_net.py", "tools/predict.py", "data_prep/resize_videos.py",
            "data_prep/make_synthetic.py", "tools/slurm/launch.py", "benchmarks/gpu_check.py",
            "benchmarks/shards.py", "benchmarks/attention_tracking.py"} <= set(SCRIPTS)


def test_what_is_not_a_script_is_a_shared_module():
    """A file left out of SCRIPTS is one no command line runs (no ``__main__`` block), so that
    a new script cannot slip past these tests by being listed there."""
    runs = {str(p.relative_to(REPO)) for folder in FOLDERS for p in (REPO / folder).glob("*.py")
            if '__name__ == "__main__"' in p.read_text()}
    assert runs == set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_option_has_help_text(script):
    parser = load(script).build_parser()
    missing = [a.option_strings or a.dest for a in parser._actions
               if not (a.help and a.help.strip()) or a.help == argparse.SUPPRESS]
    assert missing == []


@pytest.mark.parametrize("script", SCRIPTS)
def test_one_spelling_per_concept(script):
    parser = load(script).build_parser()
    spellings = {name for action in parser._actions for name in action.option_strings}
    assert spellings.isdisjoint(RENAMED_OPTIONS), sorted(spellings & set(RENAMED_OPTIONS))


# Runs the script with --help, then reports its exit status and the heavy modules it loaded.
PROBE = """
import json, runpy, sys
script = sys.argv[1]
sys.argv = [script, "--help"]
try:
    runpy.run_path(script, run_name="__main__")
    code = None
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "heavy": [m for m in %r if m in sys.modules]}), file=sys.stderr)
""" % (HEAVY,)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_does_not_import_torch(script):
    shown = subprocess.run([sys.executable, "-c", PROBE, script], capture_output=True,
                           text=True, cwd=REPO, timeout=120)
    assert shown.stdout.startswith("usage: "), shown.stderr[-2000:]
    assert json.loads(shown.stderr.splitlines()[-1]) == {"code": 0, "heavy": []}


def test_old_spellings_end_a_script_with_one_line(tmp_path):
    shown = subprocess.run([sys.executable, "tools/run_ablation.py", "--config", "c.yaml",
                            "--variants", "all", "--output-root", str(tmp_path)],
                           capture_output=True, text=True, cwd=REPO, timeout=120)
    assert (shown.returncode, shown.stderr) == (2, "error: --output-root was renamed to --out\n")


@pytest.mark.parametrize("script, name, owner", [
    ("tools/export.py", "--format", "videotl.inference.export:EXPORT_FORMATS"),
    ("tools/convert_checkpoint.py", "--format", "videotl.models.weights:FORMATS"),
    ("tools/visualize_attention.py", "--crop", "videotl.visualization.attention:CROPS"),
    ("tools/visualize_attention.py", "--clips", "videotl.visualization.clips:CLIP_PLANS"),
    ("data_prep/make_synthetic.py", "kind", "videotl.data.synthetic:KINDS"),
    ("data_prep/resize_videos.py", "--encoder", "videotl.prep.encode:ENCODERS"),
])
def test_choices_spelt_in_a_script_are_their_owners(script, name, owner):
    """A script spells the choices of an option so that --help needs no torch; they stay the
    list of the module that owns them."""
    module, attribute = owner.split(":")
    expected = getattr(importlib.import_module(module), attribute)
    assert tuple(option(load(script).build_parser(), name).choices) == tuple(expected)


def test_train_net_out_is_the_run_folder(tmp_path):
    run, missing = tmp_path / "run 1", tmp_path / "no data"
    config = "configs/kinetics400/base.yaml"
    shown = subprocess.run([sys.executable, "tools/train_net.py", "--config", config, "--out",
                            str(run), "output_dir=elsewhere"],
                           capture_output=True, text=True, cwd=REPO, timeout=120)
    assert (shown.returncode, shown.stderr) == (
        2, "error: --out and output_dir= both set the run's folder; give one of them\n")
    # The run starts in --out (its resolved config is written first), then finds no videos.
    shown = subprocess.run([sys.executable, "tools/train_net.py", "--config", config, "--out",
                            str(run), f"data.root={missing}"],
                           capture_output=True, text=True, cwd=REPO, timeout=300)
    assert shown.returncode == 2 and shown.stderr.count("\n") == 1
    assert shown.stderr.startswith(f"error: video list not found: {missing / 'train.csv'}")
    assert f"output_dir: {run}\n" in (run / "config.yaml").read_text()
