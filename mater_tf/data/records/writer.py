"""Writing records: shards and JSON files written atomically, and the output folder checked first."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import tensorflow as tf

from mater_tf.data.records.layout import shard_name
from mater_tf.data.schema import ClipRecord, to_sequence_example
from mater_tf.errors import UserError


def write_atomically(path: str | Path, write) -> None:
    """Calls `write(tmp_path)` then renames, so `path` is whole or absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def make_out_dir(folder: str | Path, option: str = "--out") -> None:
    """Makes `folder` (and its parents) and checks a file can be written in it.

    Raises:
        UserError: naming `option` and the folder: a file is in the way, or it cannot be written.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except FileExistsError:
        raise UserError(f"{option} {folder}: a file, not a folder, is there; choose a folder") from None
    except NotADirectoryError:
        raise UserError(
            f"{option} {folder}: part of that path is a file, not a folder; choose a folder"
        ) from None
    except OSError as error:
        raise UserError(
            f"{option} {folder}: cannot write there ({error.strerror}); choose a folder you can write to"
        ) from None


def write_json(path: str | Path, payload) -> None:
    """Writes JSON atomically (indented, keys kept in order)."""
    write_atomically(path, lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=2) + "\n"))


def write_shard(path: str | Path, clips: Iterable[ClipRecord]) -> int:
    """Writes one shard atomically; returns the number of clips written."""
    count = 0

    def write(tmp):
        nonlocal count
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for clip in clips:
                writer.write(to_sequence_example(clip).SerializeToString())
                count += 1

    write_atomically(path, write)
    return count


def write_shards(
    clips: Sequence[ClipRecord], out_dir: str | Path, prefix: str = "clips", clips_per_shard: int = 256
) -> list[Path]:
    """Writes clips into sharded TFRecords, each shard atomically."""
    total = max(1, -(-len(clips) // clips_per_shard))
    paths = []
    for index in range(total):
        path = Path(out_dir) / shard_name(prefix, index, total)
        write_shard(path, clips[index * clips_per_shard : (index + 1) * clips_per_shard])
        paths.append(path)
    return paths
