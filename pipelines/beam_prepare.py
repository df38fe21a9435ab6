"""The Apache Beam extraction run: the same per-clip steps and files as `pipelines.prepare`, on any Beam runner.

`mater-tf prepare --runner beam [--beam-options "..."]` builds this pipeline:

    shards' clips -> Create -> ParDo(ExtractClip) -> GroupByKey(shard) -> ParDo(WriteShard)

`ExtractClip` builds the extractor once per worker (`DoFn.setup`: the
embedders, MTCNN) and runs `pipelines.prepare.extract_clip` on each clip;
`WriteShard` writes each shard with `pipelines.prepare.write_shard_files`,
its clips in the sorted clip order. The driver writes plan.json first and
manifest.json last with the same functions as the tf.data run, so the output
folder is the same (shard names, shard contents, sidecars, manifest) and a run
of either kind resumes the other: only shards not yet written go into the
pipeline.

Without `--runner` in the Beam options, the pipeline runs locally on Beam's
DirectRunner engine for batch pipelines (the FnApiRunner) with
`--direct_running_mode=multi_processing --direct_num_workers=<--workers>`:
DirectRunner itself would first try the Prism runner, which downloads a
binary. Other runners (Dataflow, Flink, Spark) take their options as given;
their workers must see the clips and --out at the same paths (a shared
filesystem), and have mater-tf installed (`--setup_file` or a container).
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import threading
from pathlib import Path

from mater_tf.errors import UserError

log = logging.getLogger(__name__)

BEAM_EXTRA = "pip install 'mater-tf[beam]' -c constraints/beam.txt"
# Runner names that mean "run here" (Beam's DirectRunner, or its batch engine by name).
LOCAL_RUNNERS = (None, "DirectRunner", "SwitchingDirectRunner", "FnApiRunner")


# Google's client libraries that Beam imports warn that they will drop this Python version in some
# years (a FutureWarning each), and Beam logs that crcmod is missing (it writes no TFRecords here:
# mater-tf writes the shards): 18 lines on a terminal per run, from the driver and every worker.
# The driver filters them around the import; the workers, started by Beam, get PYTHONWARNINGS.
GOOGLE_FUTURE_WARNINGS = "ignore::FutureWarning:google.api_core._python_version_support"


class _NoCrcmodNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("crcmod package not found")


def _import_beam():
    import os
    import warnings

    current = os.environ.get("PYTHONWARNINGS", "")
    if GOOGLE_FUTURE_WARNINGS not in current:  # for the worker processes Beam starts
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [current, GOOGLE_FUTURE_WARNINGS]))
    notice = _NoCrcmodNotice()
    logging.getLogger().addFilter(notice)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module="google")
            import apache_beam as beam
            import apache_beam.io.filesystems  # noqa: F401 - the crcmod notice comes with it
    except ImportError as error:
        raise ImportError(f"--runner beam needs Apache Beam: {BEAM_EXTRA}") from error
    finally:
        logging.getLogger().removeFilter(notice)
    return beam


def pipeline_options(beam_options: str | None, workers: int):
    """PipelineOptions from the `--beam-options` text, local multi-process defaults first.

    Raises:
        UserError: text that does not split into flags, a flag Beam does not
            know, or a value Beam refuses (one line, naming it).
    """
    _import_beam()
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    where = f'--beam-options "{beam_options}"'
    try:
        flags = shlex.split(beam_options or "")
    except ValueError as error:
        raise UserError(
            f'{where}: {error}; quote the whole value once, e.g. --beam-options "--a=1 --b=2"'
        ) from None
    for flag in flags:
        if not flag.startswith("--"):
            raise UserError(f"{where}: '{flag}' is not a --name=value pipeline option")
    # Local defaults, given first so that the user's flags win (other runners ignore the first two):
    # worker processes, and workers that log errors only (Beam warns at length of its own set-up).
    defaults = [
        "--direct_running_mode=multi_processing",
        f"--direct_num_workers={workers}",
        "--default_sdk_harness_log_level=ERROR",
    ]
    options = PipelineOptions(defaults + flags)
    parser = _beam_parser()
    try:
        _, unknown = parser.parse_known_args(defaults + flags)
    except _BadOption as error:
        raise UserError(f"{where}: {error}; see Beam's pipeline options") from None
    if unknown:
        raise UserError(
            f"{where}: Beam knows no option {unknown[0]}; see Beam's pipeline options "
            "(https://beam.apache.org/documentation/runners/)"
        )
    runner = options.view_as(StandardOptions).runner
    if runner not in LOCAL_RUNNERS:
        from apache_beam.runners.runner import create_runner

        try:
            create_runner(runner)
        except (ValueError, ImportError) as error:
            raise UserError(f"{where}: --runner={runner}: {str(error).splitlines()[0]}") from None
    return options


class _BadOption(Exception):
    pass


def _beam_parser():
    """Beam's own option parser (every PipelineOptions class's flags), raising instead of exiting."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    class Parser(_BeamArgumentParser):
        def error(self, message):
            if not message.startswith("ambiguous option: "):
                raise _BadOption(message)

    parser = Parser(allow_abbrev=False)
    seen = {}
    for cls in PipelineOptions.__subclasses__():
        seen.setdefault(str(cls), cls)
    for cls in seen.values():
        cls._add_argparse_args(parser)  # noqa: SLF001 - how Beam itself collects its flags
    return parser


def _make_runner(options):
    """For DirectRunner, its batch engine built as DirectRunner builds it, minus the Prism attempt; else None.

    Beam's DirectRunner first tries the Prism runner, which downloads a binary
    (no use offline); for a batch pipeline like this one it then falls back to
    the FnApiRunner, built here directly with the options for its workers.
    """
    from apache_beam.options.pipeline_options import StandardOptions

    if options.view_as(StandardOptions).runner not in LOCAL_RUNNERS:
        return None
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    return fn_runner.FnApiRunner(
        provision_info=fn_runner.ExtendedProvisionInfo(
            beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
        )
    )


class _ShardProgress:
    """Clips done / total on the terminal as the shards' sidecars appear (the workers write them)."""

    def __init__(self, out_dir: Path, corpus: str, shards, pending, every: float = 1.0):
        from pipelines.prepare import Progress

        self.out_dir, self.corpus, self.shards, self.every = out_dir, corpus, shards, every
        self.waiting = list(pending)
        done = sum(len(clips) for k, clips in enumerate(shards) if k not in pending)
        self.progress = Progress(sum(len(clips) for clips in shards), done)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _poll(self) -> None:
        from pipelines.prepare import shard_done

        for k in [k for k in self.waiting if shard_done(self.out_dir, self.corpus, k, len(self.shards))]:
            self.waiting.remove(k)
            for _ in self.shards[k]:
                self.progress.step()

    def _watch(self) -> None:
        while not self.stop.wait(self.every):
            self._poll()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        self.thread.join()
        if exc_info[0] is None:
            self._poll()
        self.progress.close()


def _dofns():
    """The DoFns, defined once Beam is imported (this module imports without Beam)."""
    beam = _import_beam()

    class ExtractClip(beam.DoFn):
        """(shard, position, clip) -> (shard, (position, ClipOutcome)); the extractor is built once per worker."""

        def __init__(self, build_extractor):
            self.build_extractor = build_extractor
            self.extractor = None

        def setup(self):
            import os

            os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")  # before TensorFlow runs an op (STACK.md)
            self.extractor, _ = self.build_extractor()

        def process(self, element):
            from pipelines.prepare import decode_clip, extract_clip

            shard_index, position, clip = element
            waveform, error, seconds = decode_clip(clip.path, self.extractor)
            outcome = extract_clip(self.extractor, clip, waveform, error, seconds)
            beam.metrics.Metrics.counter("mater_tf", "clips_failed" if outcome.failure else "clips").inc()
            yield shard_index, (position, outcome)

    class WriteShard(beam.DoFn):
        """(shard, outcomes) -> writes the shard and its sidecar; a failed write is logged, not retried."""

        def __init__(self, out_dir: str, corpus: str, total_shards: int):
            self.out_dir, self.corpus, self.total_shards = out_dir, corpus, total_shards

        def process(self, element):
            import tensorflow as tf

            from pipelines.prepare import write_shard_files

            shard_index, outcomes = element
            outcomes = [outcome for _, outcome in sorted(outcomes, key=lambda item: item[0])]
            try:
                write_shard_files(Path(self.out_dir), self.corpus, shard_index, self.total_shards, outcomes)
            except (OSError, tf.errors.OpError) as error:
                log.error("shard %d of %s not written: %s", shard_index, self.out_dir, error)
                for partial in Path(self.out_dir).glob(f"{self.corpus}-{shard_index:05d}-*.tmp"):
                    partial.unlink(missing_ok=True)
                return
            beam.metrics.Metrics.counter("mater_tf", "shards").inc()
            yield shard_index

    return ExtractClip, WriteShard


def prepare_with_beam(
    clips,
    skipped: list,
    build_extractor,
    windowing,
    out_dir: str | Path,
    corpus: str,
    label_names,
    embedder_info: dict,
    clips_per_shard: int = 64,
    beam_options: str | None = None,
    workers: int = 2,
) -> dict:
    """Runs (or resumes) the extraction as a Beam pipeline and returns the manifest.

    Args:
        build_extractor: a picklable callable returning `(ClipExtractor, info)`
            (`functools.partial(mater_tf.data.extraction.build_extractor, ...)`);
            each worker calls it once.
        windowing: the extractor's `Windowing`.
        beam_options: the `--beam-options` text (Beam's `--name=value` flags).
        workers: DirectRunner processes, unless the options set them.

    Raises:
        UserError: bad options, an `out_dir` that cannot be written, another
            run's settings in it, or shards that could not be written.
    """
    from pipelines.prepare import plan_shards, shard_done, start_run, write_manifest

    beam = _import_beam()
    options = pipeline_options(beam_options, workers)
    out_dir = Path(out_dir)
    windowing = dataclasses.asdict(windowing)
    pending = start_run(out_dir, clips, corpus, windowing, embedder_info, clips_per_shard)
    shards = plan_shards(clips, clips_per_shard)
    if len(pending) < len(shards):
        log.info("resuming: %d of %d shards already written", len(shards) - len(pending), len(shards))
    elements = [(k, position, clip) for k in pending for position, clip in enumerate(shards[k])]
    empty = [k for k in pending if not shards[k]]  # no clips: an empty shard, written by the driver
    if empty:
        from pipelines.prepare import write_shard_files

        write_shard_files(out_dir, corpus, empty[0], len(shards), [])
    if elements:
        extract_clip, write_shard = _dofns()
        pipeline = beam.Pipeline(runner=_make_runner(options), options=options)
        _ = (
            pipeline
            | "Clips" >> beam.Create(elements)
            | "Extract" >> beam.ParDo(extract_clip(build_extractor))
            | "ByShard" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(write_shard(str(out_dir), corpus, len(shards)))
        )
        log.info("Beam: %d clips in %d shards to write", len(elements), len(pending))
        with _ShardProgress(out_dir, corpus, shards, pending):
            pipeline.run().wait_until_finish()
    missing = [k for k in pending if not shard_done(out_dir, corpus, k, len(shards))]
    if missing:
        raise UserError(
            f"{len(missing)} of {len(shards)} shards were not written to {out_dir} (the workers' log says "
            "why); fix that and run the same command again: the shards already written are kept"
        )
    return write_manifest(out_dir, corpus, len(shards), windowing, embedder_info, label_names, skipped)
