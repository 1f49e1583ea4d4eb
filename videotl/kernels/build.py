"""Builds the C kernels of this package with the machine's C compiler, once, into a cache.

A kernel is a C file next to this module, compiled into a shared library and loaded with
``ctypes``. The library is cached under ``$VIDEOTL_CACHE_DIR`` (default
``~/.cache/videotl``) in a folder named by a hash of the source, the compiler command and the
CPU (the code is built for the CPU it runs on, and nodes of a cluster that share a home folder
may differ). Builds go to a temporary file that is renamed into place, so processes starting
together (one per GPU or per rank) never load a half-written library.

The compiler is ``$CC`` or ``cc``. Without one, or when a build fails, ``load_kernel`` returns
None with the reason and callers use their PyTorch path. ``VIDEOTL_NATIVE_KERNELS=0`` turns the
kernels off.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fPIC", "-shared", "-pthread")
LIBRARIES = ("-lm",)
BUILD_TIMEOUT_S = 120


@dataclass
class KernelLibrary:
    """A loaded kernel, or why there is none (``library`` None, ``reason`` set)."""

    library: ctypes.CDLL | None
    reason: str = ""


_loaded: dict[str, KernelLibrary] = {}
_lock = threading.Lock()


def cache_dir() -> Path:
    configured = os.environ.get("VIDEOTL_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "videotl"


def compiler() -> list[str]:
    """The C compiler command: ``$CC`` (may carry flags) or ``cc``."""
    return shlex.split(os.environ.get("CC", "")) or ["cc"]


def cpu_fingerprint() -> str:
    """The machine type and, on Linux, the CPU's feature flags."""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()} {flags}"


def kernels_enabled() -> bool:
    setting = os.environ.get("VIDEOTL_NATIVE_KERNELS", "1").strip().lower()
    return setting not in ("0", "false", "no", "off")


def load_kernel(name: str) -> KernelLibrary:
    """Loads kernel ``name`` (``name.c`` in this folder), building it on first use.

    Returns a ``KernelLibrary`` whose ``library`` is None when the kernels are turned off, no
    compiler is found or the build fails; ``reason`` then says why. The result is remembered for
    the process.
    """
    with _lock:
        if name not in _loaded:
            _loaded[name] = _load(name)
        return _loaded[name]


def forget_kernels() -> None:
    """Drops the remembered results so the next ``load_kernel`` looks again (for tests)."""
    with _lock:
        _loaded.clear()


def _load(name: str) -> KernelLibrary:
    if not kernels_enabled():
        return KernelLibrary(None, "turned off by VIDEOTL_NATIVE_KERNELS")
    source = SOURCE_DIR / f"{name}.c"
    command = compiler()
    if shutil.which(command[0]) is None:
        return KernelLibrary(None, f"no C compiler {command[0]!r} found (set CC to use another)")
    key = hashlib.sha256(
        "\n".join([source.read_text(), " ".join(command + list(FLAGS)), cpu_fingerprint()])
        .encode()
    ).hexdigest()[:16]
    target = cache_dir() / f"{name}-{key}" / f"{name}.so"
    if not target.exists():
        failure = _build(command, source, target)
        if failure:
            return KernelLibrary(None, failure)
    try:
        return KernelLibrary(ctypes.CDLL(str(target)))
    except OSError as error:
        return KernelLibrary(None, f"could not load {target}: {error}")


def _build(command: list[str], source: Path, target: Path) -> str:
    """Compiles ``source`` into ``target``; returns '' or what went wrong."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"cannot create the kernel cache {target.parent}: {error} (set VIDEOTL_CACHE_DIR)"
    handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    try:
        result = subprocess.run([*command, *FLAGS, str(source), "-o", partial, *LIBRARIES],
                                capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        if result.returncode != 0:
            message = (result.stderr or result.stdout).strip().splitlines()
            return (f"building {source.name} with {command[0]} failed: "
                    f"{message[-1] if message else f'exit status {result.returncode}'}")
        os.replace(partial, target)
        return ""
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"building {source.name} with {command[0]} failed: {error}"
    finally:
        if os.path.exists(partial):
            os.remove(partial)
