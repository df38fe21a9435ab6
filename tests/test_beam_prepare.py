"""`mater-tf prepare --runner beam`: the Apache Beam pipeline writes what the tf.data run writes."""

import json
import os

import numpy as np
import pytest

from mater_tf.cli.main import main
from mater_tf.errors import UserError

pytest.importorskip(
    "apache_beam", reason="Apache Beam is not installed: pip install '.[beam]' -c constraints/beam.txt"
)

from pipelines.beam_prepare import pipeline_options  # noqa: E402

# Records written by other processes may differ in their float features' last bits: those are sums
# that oneDNN kernels (the resampler's convolution, the log-mel's matrix product) add in an order
# set by the CPU's vector width and by how many threads a kernel is split across. Measured on this
# machine, 3 CREMA-D clips audio only: ONEDNN_MAX_CPU_ISA=SSE41, AVX or AVX512_CORE against AVX2,
# or TF_NUM_INTRAOP_THREADS=4 against 2, move l2-normalised embeddings by up to 6.1e-7 (Beam against
# tf.data on another 2-core machine: 7.5e-8). EMBEDDING_TOLERANCE is about 3x that; everything else
# in a record (ids, labels, durations, masks, frame counts, the clips' order) must be equal.
EMBEDDING_TOLERANCE = 2e-6


def read_shard(path) -> list[tuple[dict, dict]]:
    """(context, feature lists) of each record in a shard, in order, as Python values."""
    import tensorflow as tf

    def values(feature):
        kind = feature.WhichOneof("kind")
        return list(getattr(feature, kind).value) if kind else []

    records = []
    for raw in tf.data.TFRecordDataset(str(path)):
        example = tf.train.SequenceExample.FromString(raw.numpy())
        context = {key: values(feature) for key, feature in example.context.feature.items()}
        lists = {
            key: [values(feature) for feature in feature_list.feature]
            for key, feature_list in example.feature_lists.feature_list.items()
        }
        records.append((context, lists))
    return records


def assert_same_records(path, expected_path):
    """The same records in the same order; float feature lists within EMBEDDING_TOLERANCE."""
    records, expected = read_shard(path), read_shard(expected_path)
    assert [c["clip/id"] for c, _ in records] == [c["clip/id"] for c, _ in expected], path
    for (context, lists), (expected_context, expected_lists) in zip(records, expected):
        assert context == expected_context, context["clip/id"]
        assert lists.keys() == expected_lists.keys(), context["clip/id"]
        for key, rows in lists.items():
            if rows and rows[0] and isinstance(rows[0][0], float):
                np.testing.assert_allclose(rows, expected_lists[key], rtol=0, atol=EMBEDDING_TOLERANCE)
            else:
                assert rows == expected_lists[key], (context["clip/id"], key)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('--project="unclosed', "No closing quotation"),
        ("--direct_num_wrokers=2", "Beam knows no option --direct_num_wrokers=2"),
        ("--direct_running_mode=fast", "invalid choice: 'fast'"),
        ("direct_num_workers=2", "'direct_num_workers=2' is not a --name=value pipeline option"),
        ("--runner=NoSuchRunner", "--runner=NoSuchRunner: Unexpected pipeline runner"),
    ],
)
def test_bad_beam_options_are_one_clear_line(text, expected):
    with pytest.raises(UserError) as raised:
        pipeline_options(text, workers=2)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f'--beam-options "{text}"') and expected in message


def test_beam_options_keep_the_local_defaults_unless_given():
    from apache_beam.options.pipeline_options import DirectOptions, GoogleCloudOptions, StandardOptions

    local = pipeline_options(None, workers=3).view_as(DirectOptions)
    assert (local.direct_running_mode, local.direct_num_workers) == ("multi_processing", 3)
    given = pipeline_options("--direct_num_workers=1 --direct_running_mode=in_memory", workers=3)
    assert (
        given.view_as(DirectOptions).direct_num_workers,
        given.view_as(DirectOptions).direct_running_mode,
    ) == (
        1,
        "in_memory",
    )
    dataflow = pipeline_options("--runner=DataflowRunner --project=p --region=europe-west1", workers=2)
    assert dataflow.view_as(StandardOptions).runner == "DataflowRunner"
    assert dataflow.view_as(GoogleCloudOptions).region == "europe-west1"


def test_bad_beam_options_stop_the_command_with_one_line(shared_dir, tmp_path, capsys):
    mp3 = shared_dir / "data" / "CREMA-D" / "AudioMP3" / "1002_DFA_ANG_XX.mp3"
    (tmp_path / "clips.csv").write_text(f"path,label,subject\n{mp3},anger,1002\n")
    common = ["prepare", "--corpus", "csv", "--root", str(tmp_path / "clips.csv"), "--modalities", "audio"]
    out = tmp_path / "out"
    assert main([*common, "--out", str(out), "--runner", "beam", "--beam-options=--no_such_flag=1"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [
        'mater-tf prepare: error: --beam-options "--no_such_flag=1": Beam knows no option --no_such_flag=1; '
        "see Beam's pipeline options (https://beam.apache.org/documentation/runners/)"
    ]
    assert not out.exists()
    assert main([*common, "--out", str(out), "--beam-options=--direct_num_workers=2"]) == 2
    assert "--beam-options is for --runner beam" in capsys.readouterr().err


@pytest.mark.slow
def test_beam_records_are_the_tf_data_runs_records(shared_dir, tmp_path, monkeypatch, capfd):
    """Audio-only (the cheapest extractor): 3 real CREMA-D clips and a broken file, 2 clips a shard.

    The same records in the same shards; embeddings within EMBEDDING_TOLERANCE (see there)."""
    crema = shared_dir / "data" / "CREMA-D"
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"not an mp3 at all" * 64)
    rows = [
        (crema / "AudioMP3" / "1002_DFA_ANG_XX.mp3", "anger", "1002"),
        (crema / "VideoFlash" / "1001_DFA_SAD_XX.flv", "sad", "1001"),
        (broken, "sad", "1003"),
        (crema / "AudioMP3" / "1002_DFA_HAP_XX.mp3", "happy", "1002"),
    ]
    (tmp_path / "clips.csv").write_text(
        "path,label,subject\n" + "".join(f"{p},{label},{s}\n" for p, label, s in rows)
    )
    common = ["prepare", "--corpus", "csv", "--root", str(tmp_path / "clips.csv"), "--modalities", "audio"]
    common += ["--windows", "6", "--clips-per-shard", "2"]
    assert main([*common, "--out", str(tmp_path / "local")]) == 1  # the broken file failed
    # Beam's workers split the kernels across other thread counts than this process, as workers on
    # other machines do: the records must agree all the same.
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", str(2 * (os.cpu_count() or 1)))
    assert main([*common, "--out", str(tmp_path / "beam"), "--runner", "beam"]) == 1  # the broken file failed
    # Neither the driver nor a worker prints Google's FutureWarnings, nor the notice that crcmod is
    # missing (the beam extra installs it).
    printed = capfd.readouterr().err
    assert "FutureWarning" not in printed, printed
    assert "crcmod" not in printed, printed

    local, beam = json.loads((tmp_path / "local" / "manifest.json").read_text()), None
    beam = json.loads((tmp_path / "beam" / "manifest.json").read_text())
    # The same shards, in the same order (shard k holds sorted clips [2k, 2k + 2) in both runs).
    assert local["shards"] == beam["shards"] == ["csv-00000-of-00002.tfrecord", "csv-00001-of-00002.tfrecord"]
    for name in local["shards"]:
        assert (tmp_path / "beam" / name).stat().st_size > 1000, name
        assert_same_records(tmp_path / "beam" / name, tmp_path / "local" / name)
    # The same manifest, but for the time spent; the broken file is a failure with its reason.
    assert list(beam["failed"]) == ["broken"] and "broken.mp3" in beam["failed"]["broken"]
    assert beam["num_clips"] == 3 and sorted(beam["clips"]) == [
        "1001_DFA_SAD_XX",
        "1002_DFA_ANG_XX",
        "1002_DFA_HAP_XX",
    ]
    del local["seconds_per_stage"], beam["seconds_per_stage"]
    assert beam == local
    assert (tmp_path / "beam" / "plan.json").read_text() == (tmp_path / "local" / "plan.json").read_text()

    # Beam finishes a tf.data run cut short: only the missing shard is written, the same records again.
    cut = tmp_path / "local"
    for name in ("csv-00001-of-00002.tfrecord", "csv-00001-of-00002.tfrecord.json", "manifest.json"):
        (cut / name).unlink()
    kept = (cut / "csv-00000-of-00002.tfrecord").stat().st_mtime_ns
    assert main([*common, "--out", str(cut), "--runner", "beam"]) == 1  # the broken file fails again
    assert (cut / "csv-00000-of-00002.tfrecord").stat().st_mtime_ns == kept
    for name in local["shards"]:
        assert_same_records(cut / name, tmp_path / "beam" / name)
    resumed = json.loads((cut / "manifest.json").read_text())
    del resumed["seconds_per_stage"]
    assert resumed == local
