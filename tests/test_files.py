"""Atomic writes: a full disk or a killed process leaves the previous file, never half a file, and
the next run removes only the temporary files such writes leave."""

import errno
import os

import pytest

from videotl.files import atomic_write, remove_stale_temporaries, write_text_atomic


def test_a_failed_write_keeps_the_previous_file_and_names_the_path(tmp_path, monkeypatch):
    path = tmp_path / "test_metrics.json"
    write_text_atomic(path, "old\n")

    def full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as error:
        write_text_atomic(path, "new\n")
    assert (error.value.errno, error.value.filename) == (errno.ENOSPC, str(path))
    assert path.read_text() == "old\n" and sorted(tmp_path.iterdir()) == [path]


def test_binary_writes_and_new_folders(tmp_path):
    with atomic_write(tmp_path / "a" / "b" / "scores.npz", "wb") as handle:
        handle.write(b"\x00\x01")
    assert (tmp_path / "a" / "b" / "scores.npz").read_bytes() == b"\x00\x01"


def test_only_the_temporaries_of_atomic_writes_are_removed(tmp_path):
    stale = [tmp_path / ".config.yaml.123.tmp", tmp_path / ".epoch_0002.pth.99.tmp"]
    kept = [tmp_path / "config.yaml", tmp_path / ".hidden", tmp_path / "notes.tmp",
            tmp_path / ".a.b.tmp", tmp_path / "sub"]
    for path in stale + kept[:-1]:
        path.write_text("x")
    kept[-1].mkdir()
    (kept[-1] / ".deep.yaml.1.tmp").write_text("x")  # only the folder itself is cleaned
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(stale)
    assert sorted(tmp_path.iterdir()) == sorted(kept)
    assert remove_stale_temporaries(tmp_path / "missing") == []
