"""The files of a records folder: shard names, `manifest.json` and `plan.json`; listing the
shards and checking that mater-tf prepare finished writing them."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

from mater_tf.errors import UserError

SHARD_SUFFIX = ".tfrecord"
MANIFEST_FILE = "manifest.json"  # written last by mater-tf prepare and the synthetic corpus
PLAN_FILE = "plan.json"  # written first by mater-tf prepare


def shard_name(prefix: str, index: int, total: int) -> str:
    return f"{prefix}-{index:05d}-of-{total:05d}{SHARD_SUFFIX}"


def list_shards(source: str | Path) -> list[str]:
    """The shard files of a folder (every *.tfrecord*) or a glob, sorted."""
    source = str(source)
    if os.path.isdir(source):
        files = glob.glob(os.path.join(source, f"*{SHARD_SUFFIX}*"))
    else:
        files = glob.glob(source)
    # Not the temporary files of a shard being written, nor prepare's per-shard sidecars.
    files = sorted(f for f in files if os.path.isfile(f) and not f.endswith((".tmp", ".json")))
    if not files:
        raise UserError(
            f"no TFRecord shards at '{source}': point data.source at a folder of *{SHARD_SUFFIX} "
            "files made by mater-tf prepare, or at a glob"
        )
    return files


def check_complete(source: str | Path) -> None:
    """Refuses records that `mater-tf prepare` has not finished writing.

    A folder (or a glob's folders) must hold the `manifest.json` that prepare
    (and the synthetic corpus) write last, and every shard it lists.

    Raises:
        UserError: naming the folder and the fix.
    """
    source = str(source)
    folders = {source} if os.path.isdir(source) else {os.path.dirname(f) or "." for f in list_shards(source)}
    for folder in sorted(folders):
        manifest = Path(folder) / MANIFEST_FILE
        if not manifest.is_file():
            started = (Path(folder) / PLAN_FILE).is_file()
            found = len(glob.glob(os.path.join(folder, f"*{SHARD_SUFFIX}")))
            raise UserError(
                f"{folder}: "
                + (
                    f"mater-tf prepare has not finished there ({found} shards written, no {MANIFEST_FILE}); "
                    "run the same mater-tf prepare command again to finish it"
                    if started
                    else f"no {MANIFEST_FILE}, so these are not finished mater-tf prepare records; "
                    "re-create them with mater-tf prepare"
                )
            )
        listed = json.loads(manifest.read_text()).get("shards", [])
        missing = [name for name in listed if not (Path(folder) / name).is_file()]
        if missing:
            raise UserError(
                f"{folder}: {MANIFEST_FILE} lists {len(missing)} shard(s) that are not there "
                f"({', '.join(missing[:3])}); copy the whole folder or re-create it with mater-tf prepare"
            )
