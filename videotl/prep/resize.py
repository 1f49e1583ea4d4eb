"""Re-encoding a folder of videos into another, in parallel, resumably.

Every video file under the input folder becomes ``<output>/<same relative folder>/<name>.mp4``.
Outputs that exist are finished ones (an output appears only by an atomic rename after it was
written and checked) and are skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from videotl.prep.encode import EncodeSettings, choose_encoder, encode_video
from videotl.data.lists import name_line, printable
from videotl.prep.files import part_path, scan_folder, write_lines
from videotl.prep.pool import TaskResult, run_tasks
from videotl.prep.progress import listed_files

FAILURES_FILE = "resize_failures.txt"
SKIPPED_FILE = "resize_skipped.txt"  # what was found under the input and is no video to encode


@dataclass(frozen=True)
class ResizeJob:
    """One video to re-encode."""

    relative: str  # the source, relative to the input folder
    source: Path
    target: Path
    settings: EncodeSettings
    encoder: str


@dataclass
class ResizeSummary:
    """What a run did. Every entry found under the input is counted once:
    ``found = total + len(ignored)`` and ``total = skipped + encoded + len(failures) + left``
    (``left`` is 0 unless the run was interrupted)."""

    encoder: str
    total: int  # video files found
    skipped: int = 0  # finished by an earlier run
    encoded: int = 0
    frames: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # encoded, with a complaint
    source_bytes: int = 0  # of the videos encoded in this run
    output_bytes: int = 0
    interrupted: bool = False
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (entry, reason): no video

    @property
    def found(self) -> int:
        """Entries under the input: videos, and files and folders skipped with a reason."""
        return self.total + len(self.ignored)

    @property
    def left(self) -> int:
        """Videos neither encoded, done before nor failed: those an interruption left."""
        return self.total - self.skipped - self.encoded - len(self.failures)

    def text(self, limit: int = 20) -> str:
        rate = self.encoded / self.seconds * 60 if self.seconds > 0 else 0.0
        lines = [f"{self.total} videos: {self.encoded} encoded ({rate:.1f} videos/min with "
                 f"{self.encoder}), {self.skipped} already done, {len(self.failures)} failed, "
                 f"{len(self.warnings)} with decoder warnings; {self.seconds:.1f} s"]
        if self.ignored:
            lines.append(f"{len(self.ignored)} other entries skipped, listed below: "
                         f"{self.found} found in all")
        if self.encoded:
            lines.append(f"encoded: {self.source_bytes / 2**20:.1f} MiB of sources -> "
                         f"{self.output_bytes / 2**20:.1f} MiB "
                         f"({100 * self.output_bytes / max(self.source_bytes, 1):.0f} %)")
        if self.interrupted:
            lines.append(f"interrupted: {self.left} videos left; finished ones are kept, run "
                         "again to continue")
        lines += listed_files("failed", self.failures, limit)
        lines += listed_files("warnings", self.warnings, limit)
        lines += listed_files("skipped", self.ignored, limit)
        return "\n".join(lines)


def plan_jobs(
    input_dir: Path, output_dir: Path, settings: EncodeSettings, encoder: str,
    overwrite: bool = False,
) -> tuple[list[ResizeJob], int, list[tuple[str, str]], list[tuple[str, str]]]:
    """``(jobs to run, outputs already finished, [(source, reason)] that cannot run,
    [(entry, reason)] found under the input that are no videos)``; every entry that
    ``scan_folder`` meets is in exactly one of them.

    Raises:
        FileNotFoundError: ``input_dir`` does not exist.
        ValueError: ``output_dir`` is ``input_dir``.
    """
    input_dir, output_dir = Path(input_dir).absolute(), Path(output_dir).absolute()
    if input_dir.resolve() == output_dir.resolve():
        raise ValueError(f"the output folder must differ from the input folder ({input_dir})")
    inside = _inside(output_dir, input_dir)
    jobs, skipped, refused, claimed = [], 0, [], {}
    # An output folder inside the input holds this tool's outputs: reported, not searched.
    scan = scan_folder(input_dir, leave_out=output_dir if inside is not None else None)
    for relative in scan.videos:
        source = input_dir / relative
        target = (output_dir / relative).with_suffix(".mp4")
        if target in claimed:
            refused.append((relative, f"same output {target.name!r} as {claimed[target]!r}"))
            continue
        claimed[target] = relative
        if target.is_file() and target.stat().st_size > 0 and not overwrite:
            skipped += 1
            continue
        jobs.append(ResizeJob(relative, source, target, settings, encoder))
    return jobs, skipped, refused, scan.skipped


def resize_videos(
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    settings: EncodeSettings,
    encoder: str = "pyav",
    jobs: int | None = None,
    timeout: float | None = 900.0,
    overwrite: bool = False,
    progress: bool = True,
) -> ResizeSummary:
    """Re-encodes every video under ``input_dir`` into ``output_dir`` (see the module docstring).

    Args:
        encoder: ``"pyav"`` or ``"ffmpeg"`` (the program; same files, see ``encode``).
        jobs: parallel processes (default: all CPU cores); each encodes on one thread.
        timeout: seconds one video may take before it is abandoned (its process killed).
        overwrite: re-encode videos whose output exists.

    Writes ``<output_dir>/resize_failures.txt`` (``source<TAB>reason`` lines) when videos fail
    and removes a stale one when none do. Ctrl-C stops the workers and returns what was done
    (``interrupted``).
    """
    start = time.monotonic()
    encoder = choose_encoder(encoder)
    output_dir = Path(output_dir)
    planned, skipped, refused, ignored = plan_jobs(Path(input_dir), output_dir, settings,
                                                   encoder, overwrite)
    summary = ResizeSummary(encoder, len(planned) + skipped + len(refused), skipped=skipped,
                            failures=list(refused), ignored=ignored)
    try:
        for result in _run(planned, jobs, timeout, progress):
            _count(summary, result)
    except KeyboardInterrupt:  # the workers are stopped; what finished is kept
        summary.interrupted = True
        for job in planned:  # partial outputs of the videos in flight
            part_path(job.target).unlink(missing_ok=True)
    summary.seconds = time.monotonic() - start
    _write_report(output_dir / FAILURES_FILE, summary.failures)
    _write_report(output_dir / SKIPPED_FILE, summary.ignored)
    return summary


def _count(summary: ResizeSummary, result: TaskResult) -> None:
    job = result.task
    if result.ok:
        summary.encoded += 1
        summary.frames += result.value.frames
        summary.source_bytes += job.source.stat().st_size
        summary.output_bytes += job.target.stat().st_size
        if result.value.warning:
            summary.warnings.append((job.relative, result.value.warning))
    else:
        part_path(job.target).unlink(missing_ok=True)  # left by a killed process
        summary.failures.append((job.relative, result.error))


def _run(jobs: list[ResizeJob], processes: int | None, timeout: float | None,
         progress: bool) -> Iterator[TaskResult]:
    yield from run_tasks(_encode_job, jobs, jobs=processes, timeout=timeout,
                         description="re-encoding", progress=progress)


def _encode_job(job: ResizeJob):
    return encode_video(job.source, job.target, job.settings, job.encoder)


def _inside(path: Path, folder: Path) -> Path | None:
    try:
        return path.resolve().relative_to(folder.resolve())
    except ValueError:
        return None


def _write_report(path: Path, items: list[tuple[str, str]]) -> None:
    """``source<TAB>reason`` lines (a name that would break its line is quoted, as in name
    lists); a stale report is removed when there is nothing to report."""
    if not items:
        path.unlink(missing_ok=True)
        return
    write_lines(path, [f"{name_line(source)}\t{printable(' '.join(reason.split()))}"
                       for source, reason in items])
