#!/usr/bin/env python
"""Clips per second from tar shards (data.format=shards) against the video files
(data.format=files), on this machine's disk.

A synthetic Kinetics-like set (``videotl.data.synthetic``: 3 s videos at 15 fps, H.264, short
side ``--short-side``) is written into a temporary folder on disk (made in ``--out``; default:
the system's temporary folder; removed at the end) and packed into shards of
``--videos-per-shard`` videos with ``videotl.prep.shards.make_shards``. Then, in alternating
rounds, each path runs:

  read   the bytes only: every video file opened and read, or every shard streamed
         (``read_shard``), no decoding: what the storage costs;
  train  one epoch of the training loader (``build_loader``): a random 8-frame clip per video,
         scale jitter, crop, flip;
  test   one epoch of the test loader: 2 temporal views x 1 crop per video.

each with a warm page cache and with a cold one: before a cold run the pages of every video
file and shard are dropped (``posix_fadvise(POSIX_FADV_DONTNEED)`` per file, nothing else is
touched), so its bytes come from the disk. Loaders run ``--workers`` worker processes. Printed:
the median clips/s (videos/s and MiB/s for ``read``) over rounds, and shards / files, the
median of per-round ratios (load from other jobs hits both paths of a round alike).

    python benchmarks/shards.py [--videos 96] [--rounds 3] [--workers 0] [--short-side 240]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# torch and the packages using it are imported where they are used, after parsing (--help at
# once).
from videotl.config import load_config  # noqa: E402


def drop_cache(paths: list[Path]) -> None:
    """Drops the page-cache pages of ``paths`` (clean pages of these files only)."""
    for path in paths:
        handle = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(handle)
            os.posix_fadvise(handle, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(handle)


def config(root: Path, shards: Path | None, workers: int):
    overrides = [
        "data.dataset=kinetics", f"data.root={root}", "data.num_frames=8",
        "data.frame_stride=4", "data.train_jitter_scales=[128,160]", "data.train_crop_size=112",
        "data.test_crop_size=128", f"data.num_workers={workers}", "data.pin_memory=false",
        "train.batch_size=8", "test.batch_size=8", "test.num_temporal_views=2",
        "test.num_spatial_crops=1",
    ]
    if shards is not None:  # data.shuffle_buffer is a shards key (the files path has none)
        overrides += ["data.format=shards", f"data.shard_dir={shards}", "data.shuffle_buffer=16"]
    return load_config(None, overrides)


def epoch_run(cfg, split: str) -> Callable[[int], int]:
    """A function running one epoch of ``split`` (the epoch number given); returns its clips.

    Each run builds its loader (fresh worker processes) and empties the readers' caches of
    stream indexes: in a real dataset a video comes back only next epoch, long after 512
    others have pushed it out of the cache; here it would come back from it."""
    from videotl.data import build_loader, video_reader

    def run(epoch: int) -> int:
        video_reader._probe_cached.cache_clear()
        video_reader._MEMORY_CACHE.clear()
        loader = build_loader(cfg, split)
        for part in (loader.sampler, loader.dataset):
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)
        return sum(len(batch["video_index"]) for batch in loader)
    return run


def read_files(videos: list[Path]) -> Callable[[int], int]:
    def run(epoch: int) -> int:
        return sum(len(path.read_bytes()) > 0 for path in videos)
    return run


def read_shards(folder: Path, split: str) -> Callable[[int], int]:
    from videotl.data.shard_format import read_manifest, read_shard

    manifest = read_manifest(folder / f"{split}.json")

    def run(epoch: int) -> int:
        return sum(1 for shard in manifest.shards
                   for _ in read_shard(str(folder / shard.name), shard.keys))
    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=96, help="training videos (default 96)")
    parser.add_argument("--eval-videos", type=int, default=24, help="test videos (default 24)")
    parser.add_argument("--short-side", type=int, default=240, help="video height (default 240)")
    parser.add_argument("--videos-per-shard", type=int, default=16,
                        help="videos packed into each shard (default 16)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed rounds of each case, after one warm-up round (default 3)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (default 0)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="folder on the disk to measure, where the benchmark writes its "
                             "temporary data (videos and shards, in a folder of its own removed "
                             "at the end; default: the system's temporary folder)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    import torch

    from videotl.data.synthetic import make_synthetic_dataset
    from videotl.prep.shards import make_shards

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="videotl-shards-bench-", dir=args.out) as folder:
        root, out = Path(folder) / "data", Path(folder) / "shards"
        start = time.perf_counter()
        make_synthetic_dataset("kinetics", root, seed=0, train_videos=args.videos,
                               eval_videos=args.eval_videos, short_side=args.short_side)
        videos = sorted(root.rglob("*.mp4"))
        size = sum(path.stat().st_size for path in videos)
        print(f"wrote {len(videos)} videos ({size / 2**20:.1f} MiB, "
              f"{size / len(videos) / 1024:.0f} KiB each) in {time.perf_counter() - start:.0f} s")
        start = time.perf_counter()
        summary = make_shards(config(root, None, 0), out, max_bytes=None,
                              max_videos=args.videos_per_shard, jobs=1, progress=False)
        seconds = time.perf_counter() - start
        packed = sum(split.packed for split in summary.splits if split.prefix == split.split)
        print(f"packed {packed} videos into {len(list(out.glob('*.tar')))} shards in "
              f"{seconds:.1f} s ({packed / seconds:.0f} videos/s, one process)")
        files_cfg, shards_cfg = config(root, None, args.workers), config(root, out, args.workers)
        train_videos = [root / line.rsplit(None, 1)[0]
                        for line in (root / "train.csv").read_text().splitlines()]
        cases = {
            "read": {"files": read_files(train_videos), "shards": read_shards(out, "train")},
            "train": {"files": epoch_run(files_cfg, "train"),
                      "shards": epoch_run(shards_cfg, "train")},
            "test": {"files": epoch_run(files_cfg, "test"),
                     "shards": epoch_run(shards_cfg, "test")},
        }
        cached = videos + sorted(out.glob("*.tar"))
        shard_bytes = sum(path.stat().st_size for path in out.glob("train-*.tar"))
        file_bytes = sum(path.stat().st_size for path in train_videos)
        print(f"\n{args.rounds} rounds, {args.workers} loader workers; clips/s (read: videos/s "
              "and MiB/s), median over rounds; shards/files: median of per-round ratios")
        print(f"{'case':<6} {'cache':<5} {'files':>10} {'shards':>10} {'shards/files':>13}")
        for case, paths in cases.items():
            for cache in ("warm", "cold"):
                rates: dict[str, list[float]] = {"files": [], "shards": []}
                for epoch in range(args.rounds + 1):  # the first round warms up
                    for name in (["files", "shards"] if epoch % 2 else ["shards", "files"]):
                        if cache == "cold":
                            drop_cache(cached)
                        begin = time.perf_counter()
                        clips = paths[name](epoch)
                        if epoch:
                            rates[name].append(clips / (time.perf_counter() - begin))
                ratio = statistics.median(s / f for s, f in zip(rates["shards"], rates["files"]))
                files, shards = (statistics.median(rates[n]) for n in ("files", "shards"))
                line = f"{case:<6} {cache:<5} {files:>10.1f} {shards:>10.1f} {ratio:>12.2f}x"
                if case == "read":  # videos/s -> MiB/s of what each path reads
                    mib = [rate * total / len(train_videos) / 2**20
                           for rate, total in ((files, file_bytes), (shards, shard_bytes))]
                    line += f"   MiB/s: files {mib[0]:.1f}, shards {mib[1]:.1f}"
                print(line, flush=True)


if __name__ == "__main__":
    main()
