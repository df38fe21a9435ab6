"""The tf.data extraction run: a corpus of clips -> sharded TFRecords of the data contract.

Clips are sorted by id and cut into shards of `clips_per_shard`, so shard k
always holds the same clips. A tf.data pipeline over the pending clips' paths
decodes them in parallel (audio through tensorflow-io or PyAV, frames through
PyAV) ahead of the per-clip steps of `mater_tf.data.extraction`, which then detect,
track and embed, `workers` clips at a time in threads (`extracted_clips`; the
outcomes come back in the clips' order). A video whose face is needed is read by
the extractor itself, voice and frames in one pass: decoding its frames in the
tf.data workers and handing them over through `py_function` was measured about
as fast on 2 cores (3.1-4.3 against 3.7-4.4 s over three rounds on the CREMA-D
sample) for more CPU (a copy of every frame) and the frames of every clip read
ahead in memory. Each shard is written to a temporary file and renamed, then its
sidecar (`<shard>.json`: per-clip face-found rates, failures, stage times: each
clip's own, so with clips extracted side by side their sum exceeds the run's
wall time) is written the same way; a shard counts as done only when both exist. Killing the run at
any moment and running it again finishes the rest with no clip missing or
duplicated, and the same records as an uninterrupted run.

`plan.json` (written first, once the embedders have embedded a blank input)
pins the clip list, windowing and embedders: once a shard is written, a
second run with other settings into the same folder is refused (before that
there is nothing to finish, and the new plan replaces it).
`manifest.json` (written last) gathers counts, windowing, embedders with
their weights' checksums, per-clip face-found rates and face windows, every
file passed over and every clip that failed, with its reason. A video in
which no face window holds a face (most often: no face found in any frame) is
kept, its face windows masked, and counted: `num_no_face` and its ids in
`no_face_clips`.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno
import itertools
import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tensorflow as tf

from mater_tf.corpora import Clip
from mater_tf.data import records
from mater_tf.data.extraction import STAGES, ClipExtractor
from mater_tf.data.schema import ClipRecord
from mater_tf.errors import UserError
from mater_tf.media import MediaError

log = logging.getLogger(__name__)

PLAN_FILE = "plan.json"
# Clips decoded ahead of the extraction: only waveforms (a video's frames are read by the extractor),
# so reading far ahead is cheap and lets audio files decode while faces are detected in videos
# (CREMA-D sample, three rounds: 3.4-4.9 s against 4.8-5.2 s reading 2 ahead).
READ_AHEAD = 16
MANIFEST_FILE = "manifest.json"


def decode_clip(path: str, extractor: ClipExtractor | None = None) -> tuple[np.ndarray | None, str, float]:
    """(16 kHz waveform, error, seconds) of one clip decoded in Python; a failure is text, so one bad
    clip never stops a run. A video whose frames `extractor` needs is left to it (waveform None): it
    reads the voice and the frames in one pass."""
    from mater_tf.media import decode_audio

    started = time.perf_counter()
    if extractor is not None and extractor.reads_frames(path):
        return None, "", 0.0
    try:
        waveform, error = decode_audio(path), ""
    except MediaError as failure:
        waveform, error = np.zeros(0, np.float32), str(failure)
    except Exception as failure:  # noqa: BLE001 - any decoder failure is this clip's failure
        waveform, error = np.zeros(0, np.float32), f"{path}: cannot be decoded ({failure})"
    return waveform, error, time.perf_counter() - started


def decoded_clips(clips: list[Clip], workers: int, extractor: ClipExtractor | None = None):
    """(waveform, error, decode seconds) for each clip, in order, `workers` at a time.

    Audio files are decoded and resampled inside the `Dataset.map` graph
    (`mater_tf.media.audio_graph`); a clip the graph cannot read is decoded
    again by `decode_clip` (FFmpeg, or the reason it cannot be used). A video
    whose frames `extractor` needs is not decoded here (waveform None): the
    extractor reads its voice and frames in one pass.
    """
    from mater_tf.media.audio_graph import decoded_audio_dataset

    left_to_extractor = [extractor is not None and extractor.reads_frames(clip.path) for clip in clips]
    audio = decoded_audio_dataset(
        [clip.path for clip, left in zip(clips, left_to_extractor) if not left],
        workers,
        decode_clip,
        read_ahead=READ_AHEAD,
    )
    for left in left_to_extractor:
        yield (None, "", 0.0) if left else next(audio)


class _ClearsProgressLine(logging.Filter):
    """Clears a progress line left open on the terminal before a log record is printed, so a
    warning starts its own line (the next step draws the progress again below it)."""

    def __init__(self):
        super().__init__()
        self.open = False

    def filter(self, record) -> bool:
        if self.open:
            print("\r\x1b[K", end="", file=sys.stderr, flush=True)
            self.open = False
        return True


class Progress:
    """clips done / total, clips per second, ETA, on one terminal line (or every 10 clips)."""

    def __init__(self, total: int, done: int = 0):
        self.total, self.done, self.started, self.new = total, done, time.time(), 0
        self.interactive = sys.stderr.isatty()
        self._clear = _ClearsProgressLine()
        self._handlers = list(logging.getLogger().handlers) if self.interactive else []
        for handler in self._handlers:
            handler.addFilter(self._clear)

    def step(self) -> None:
        self.done += 1
        self.new += 1
        rate = self.new / max(time.time() - self.started, 1e-9)
        eta = (self.total - self.done) / rate if rate else float("inf")
        line = f"prepare: {self.done}/{self.total} clips, {rate:.2f} clips/s, ETA {eta:.0f} s"
        if self.interactive:
            print("\r" + line, end="", file=sys.stderr, flush=True)
            self._clear.open = True
        elif self.done % 10 == 0 or self.done == self.total:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        for handler in self._handlers:
            handler.removeFilter(self._clear)
        self._handlers = []
        if self.interactive and self._clear.open:
            print(file=sys.stderr)
        self._clear.open = False


def _shard_paths(out_dir: Path, prefix: str, index: int, total: int) -> tuple[Path, Path]:
    shard = out_dir / records.shard_name(prefix, index, total)
    return shard, shard.with_name(shard.name + ".json")


_PLAN_OPTIONS = {
    "corpus": "--corpus",
    "clips_per_shard": "--clips-per-shard",
    "windowing.num_windows": "--windows",
    "windowing.window_seconds": "--window-seconds",
    "embedders.audio": "--audio-embedder",
    "embedders.face": "--face-embedder / --modalities",
    "embedders.keep_log_mel": "--keep-log-mel",
    "embedders.face_detection": "--detect-every / --detect-side",
}


def _comparable(plan: dict) -> dict:
    """The settings that make a plan, with paths resolved (another name of the same file is the same)."""

    def embedder(entry):
        return entry and {"name": entry.get("name"), "sha256": entry.get("sha256")}

    embedders = plan.get("embedders") or {}
    face = embedders.get("face") or {}
    # Plans written before these were recorded detected in every frame at 320 px.
    detection = face and f"every {face.get('detect_every', 1)} frames at {face.get('detect_side', 320)} px"
    return {
        "corpus": plan.get("corpus"),
        "clips_per_shard": plan.get("clips_per_shard"),
        "windowing.num_windows": (plan.get("windowing") or {}).get("num_windows"),
        "windowing.window_seconds": (plan.get("windowing") or {}).get("window_seconds"),
        "embedders.audio": embedder(embedders.get("audio")),
        "embedders.face": embedder(embedders.get("face")),
        "embedders.keep_log_mel": embedders.get("keep_log_mel", False),
        "embedders.face_detection": detection or None,
        "clips": {
            clip["clip_id"]: {**clip, "path": os.path.realpath(clip["path"])}
            for clip in plan.get("clips", [])
        },
    }


def plan_difference(existing: dict, plan: dict) -> str:
    """What differs between two plans, in the words of the options that set it ('' when nothing does)."""
    old, new = _comparable(existing), _comparable(plan)
    for key, option in _PLAN_OPTIONS.items():
        if old[key] != new[key]:
            before, now = old[key], new[key]
            if isinstance(before, dict) or isinstance(now, dict):
                same_name = before and now and before["name"] == now["name"]
                before, now = (
                    (f"{v['name']} (weights sha256 {str(v['sha256'])[:12]})" if same_name else v["name"])
                    if v
                    else "none"
                    for v in (before, now)
                )
            return f"{option}: {before} there, {now} now"
    gone = sorted(set(old["clips"]) - set(new["clips"]))
    added = sorted(set(new["clips"]) - set(old["clips"]))
    if gone or added:
        parts = [f"{len(gone)} of its clips are not in this corpus (e.g. {gone[0]})"] if gone else []
        parts += [f"{len(added)} clips are new (e.g. {added[0]})"] if added else []
        return "the clip list differs: " + ", ".join(parts)
    for clip_id in sorted(old["clips"]):
        for field in ("path", "subject", "label_name", "label"):
            if old["clips"][clip_id][field] != new["clips"][clip_id][field]:
                return (
                    f"clip {clip_id}'s {field}: {old['clips'][clip_id][field]!r} there, "
                    f"{new['clips'][clip_id][field]!r} now"
                )
    return ""


def write_plan(out_dir: Path, plan: dict) -> None:
    """Writes plan.json, or checks a resumed run against it (another path to the same corpus is the same)."""
    path = out_dir / PLAN_FILE
    if path.is_file():
        difference = plan_difference(json.loads(path.read_text()), plan)
        if not difference:
            return
        if any(out_dir.glob("*" + records.SHARD_SUFFIX)):
            raise UserError(
                f"{out_dir} holds a prepare run with other settings ({difference}); run the first command "
                "again to finish it, or use a new --out folder (or delete that one to start over)"
            )
        # A run that stopped before its first shard (a crash, a Ctrl-C) has nothing to finish.
        log.info("replacing the plan of a run that wrote no shard (%s)", difference)
    records.write_json(path, plan)


@dataclasses.dataclass
class ClipOutcome:
    """One clip's result: its record and manifest entry, or why it failed; seconds per stage either way."""

    clip_id: str
    record: ClipRecord | None
    entry: dict | None
    failure: str | None
    seconds: dict


def extract_clip(extractor: ClipExtractor, clip: Clip, waveform, error: str, decode_seconds: float):
    """The per-clip steps on a decoded clip (`decode_clip`'s output); a MediaError is the clip's failure."""
    seconds = {"decode": decode_seconds}
    try:
        if error:
            raise MediaError(error)
        extraction = extractor.extract(
            clip.path,
            clip.clip_id,
            corpus=clip.corpus,
            subject=clip.subject,
            label=clip.label,
            label_name=clip.label_name,
            waveform=waveform,
        )
    except MediaError as failure:
        log.warning("skipped %s", failure)
        return ClipOutcome(clip.clip_id, None, None, str(failure), seconds)
    for stage, value in extraction.seconds.items():
        seconds[stage] = seconds.get(stage, 0.0) + value
    entry = {
        "face_found_rate": extraction.face_found_rate,
        "face_windows": extraction.face_windows,
        "frames": extraction.frames_decoded,
        "duration": round(extraction.record.duration, 3),
    }
    return ClipOutcome(clip.clip_id, extraction.record, entry, None, seconds)


def extracted_clips(extractor: ClipExtractor, clips: list[Clip], decoded, workers: int):
    """`extract_clip`'s outcome for each clip (`decoded`: `decoded_clips`' output for them), in
    order, `workers` clips extracted at a time in threads (detection, tracking and embedding run in
    TensorFlow and PyAV, which release the GIL). The records are the same as one at a time; on 2
    cores the CREMA-D sample's extraction took 1.66 instead of 2.13 s."""
    with ThreadPoolExecutor(workers, thread_name_prefix="mater-tf-extract") as pool:
        running = collections.deque()
        try:
            for clip, decoded_clip in zip(clips, decoded):
                running.append(pool.submit(extract_clip, extractor, clip, *decoded_clip))
                if len(running) > workers:
                    yield running.popleft().result()
            while running:
                yield running.popleft().result()
        finally:  # stopped early (a failed shard write, Ctrl-C): no clip started after this
            pool.shutdown(wait=True, cancel_futures=True)


def write_shard_files(out_dir: Path, corpus: str, shard_index: int, total_shards: int, outcomes) -> None:
    """Writes shard `shard_index` (its clips in the order given), then its sidecar; each file atomically.

    Raises:
        OSError, tf.errors.OpError: the shard or its sidecar could not be written.
    """
    sidecar = {"clips": {}, "failed": {}, "seconds": dict.fromkeys(STAGES, 0.0)}
    for outcome in outcomes:
        if outcome.failure is None:
            sidecar["clips"][outcome.clip_id] = outcome.entry
        else:
            sidecar["failed"][outcome.clip_id] = outcome.failure
        for stage, value in outcome.seconds.items():
            sidecar["seconds"][stage] += value
    shard_path, sidecar_path = _shard_paths(out_dir, corpus, shard_index, total_shards)
    started = time.perf_counter()
    records.write_shard(shard_path, [outcome.record for outcome in outcomes if outcome.record is not None])
    sidecar["seconds"]["writing"] = time.perf_counter() - started
    records.write_json(sidecar_path, sidecar)


def plan_shards(clips: list[Clip], clips_per_shard: int) -> list[list[Clip]]:
    """Shard k holds clips [k n, (k + 1) n) of the sorted clip list (one empty shard for no clips)."""
    total = max(1, -(-len(clips) // clips_per_shard))
    return [clips[k * clips_per_shard : (k + 1) * clips_per_shard] for k in range(total)]


def start_run(out_dir: Path, clips, corpus, windowing: dict, embedder_info, clips_per_shard) -> list[int]:
    """Checks the settings, makes `out_dir`, writes (or checks) plan.json; returns the shards still to write."""
    if clips_per_shard < 1:
        raise UserError(f"--clips-per-shard {clips_per_shard} must be at least 1 (default 64)")
    records.make_out_dir(out_dir)
    write_plan(
        out_dir,
        {
            "corpus": corpus,
            "windowing": windowing,
            "embedders": embedder_info,
            "clips_per_shard": clips_per_shard,
            "clips": [dataclasses.asdict(clip) for clip in clips],
        },
    )
    total = len(plan_shards(clips, clips_per_shard))
    return [k for k in range(total) if not shard_done(out_dir, corpus, k, total)]


def shard_done(out_dir: Path, corpus: str, shard_index: int, total_shards: int) -> bool:
    """Whether shard `shard_index` and its sidecar are both written (a shard counts as done only then)."""
    return all(path.is_file() for path in _shard_paths(out_dir, corpus, shard_index, total_shards))


def prepare(
    clips: list[Clip],
    skipped: list,
    extractor: ClipExtractor,
    out_dir: str | Path,
    corpus: str,
    label_names,
    embedder_info: dict,
    clips_per_shard: int = 64,
    workers: int = 2,
) -> dict:
    """Runs (or resumes) the extraction and returns the manifest.

    Raises:
        UserError: a bad setting, an `out_dir` that cannot be written, another
            run's settings in it, or a full disk (finished shards are kept).
    """
    out_dir = Path(out_dir)
    windowing = dataclasses.asdict(extractor.windowing)
    pending = start_run(out_dir, clips, corpus, windowing, embedder_info, clips_per_shard)
    shards = plan_shards(clips, clips_per_shard)
    total_shards = len(shards)
    done_clips = sum(len(shards[k]) for k in range(total_shards) if k not in pending)
    if done_clips:
        log.info("resuming: %d of %d shards already written", total_shards - len(pending), total_shards)
    progress = Progress(len(clips), done_clips)
    # One decoding pipeline for the whole run (setting one up costs about 0.4 s) feeding one pool of
    # extraction threads; each shard takes exactly its clips' outcomes, in order.
    pending_clips = [clip for index in pending for clip in shards[index]]
    decoded = decoded_clips(pending_clips, workers, extractor)
    with (
        contextlib.closing(progress),  # however the run ends: the terminal line finished, its filter gone
        contextlib.closing(extracted_clips(extractor, pending_clips, decoded, workers)) as outcomes_in_order,
    ):
        for shard_index in pending:
            outcomes = []
            for outcome in itertools.islice(outcomes_in_order, len(shards[shard_index])):
                outcomes.append(outcome)
                progress.step()
            try:
                write_shard_files(out_dir, corpus, shard_index, total_shards, outcomes)
            except (OSError, tf.errors.OpError) as error:
                progress.close()
                _write_failed(out_dir, _shard_paths(out_dir, corpus, shard_index, total_shards)[0], error)
    return write_manifest(out_dir, corpus, total_shards, windowing, embedder_info, label_names, skipped)


def _write_failed(out_dir: Path, shard_path: Path, error):
    """A shard could not be written: remove its partial files and stop with one line (finished shards stay)."""
    for partial in out_dir.glob(shard_path.name + "*.tmp"):
        partial.unlink(missing_ok=True)
    full = getattr(error, "errno", None) == errno.ENOSPC or "No space left" in str(error)
    cause = "the disk is full" if full else f"{getattr(error, 'strerror', None) or error}"
    fix = "free some space" if full else "fix that"
    raise UserError(
        f"cannot write {shard_path} ({cause}); {fix} and run the same command again: the shards already "
        "written are kept and the rest is finished"
    ) from None


def write_manifest(out_dir, corpus, total_shards, windowing, embedder_info, label_names, skipped) -> dict:
    clips, failed, seconds, shard_names = {}, {}, {}, []
    for index in range(total_shards):
        shard_path, sidecar_path = _shard_paths(out_dir, corpus, index, total_shards)
        sidecar = json.loads(sidecar_path.read_text())
        clips.update(sidecar["clips"])
        failed.update(sidecar["failed"])
        for stage, value in sidecar["seconds"].items():
            seconds[stage] = seconds.get(stage, 0.0) + value
        shard_names.append(shard_path.name)
    rates = [c["face_found_rate"] for c in clips.values() if c["face_found_rate"] is not None]
    no_face = sorted(clip_id for clip_id, c in clips.items() if c.get("face_windows") == 0)
    manifest = {
        "corpus": corpus,
        "num_clips": len(clips),
        "num_failed": len(failed),
        "num_files_seen": len(clips) + len(failed) + len(skipped),
        "num_skipped_files": len(skipped),
        "num_no_face": len(no_face),
        "windowing": windowing,
        "embedders": embedder_info,
        "label_names": list(label_names),
        "shards": shard_names,
        "mean_face_found_rate": float(np.mean(rates)) if rates else None,
        "seconds_per_stage": {stage: round(value, 2) for stage, value in seconds.items()},
        "clips": clips,
        "failed": failed,
        "no_face_clips": no_face,
        "skipped_files": dict(skipped),
    }
    records.write_json(Path(out_dir) / MANIFEST_FILE, manifest)
    return manifest
