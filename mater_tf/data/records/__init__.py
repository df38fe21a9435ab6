"""Record shards of windowed embeddings: their folder's files (`layout`), writing them
(`writer`), indexing and checking them (`index`), and the input pipeline that reads them
(`pipeline`, with `batch_mixup`)."""

from mater_tf.data.records.batch_mixup import mixup
from mater_tf.data.records.index import (
    METADATA_KEYS,
    RecordIndex,
    count_clips,
    count_clips_with,
    index_records,
)
from mater_tf.data.records.layout import (
    MANIFEST_FILE,
    PLAN_FILE,
    SHARD_SUFFIX,
    check_complete,
    list_shards,
    shard_name,
)
from mater_tf.data.records.pipeline import epoch_seed, make_dataset, model_inputs, model_targets
from mater_tf.data.records.writer import (
    make_out_dir,
    write_atomically,
    write_json,
    write_shard,
    write_shards,
)

__all__ = [
    "MANIFEST_FILE",
    "METADATA_KEYS",
    "PLAN_FILE",
    "SHARD_SUFFIX",
    "RecordIndex",
    "check_complete",
    "count_clips",
    "count_clips_with",
    "epoch_seed",
    "index_records",
    "list_shards",
    "make_dataset",
    "make_out_dir",
    "mixup",
    "model_inputs",
    "model_targets",
    "shard_name",
    "write_atomically",
    "write_json",
    "write_shard",
    "write_shards",
]
