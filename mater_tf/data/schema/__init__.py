"""The TFRecord data contract: the one definition of a clip record.

One `tf.train.SequenceExample` per clip. The context holds the clip's identity
and windowing, the feature lists hold one entry per window. The writer
(`encode`), the parser (`parse`), the checker (`describe`), the synthetic
corpus and the serving signature all derive from the tables of `contract`,
and `schema/version` is stored in every record. `model_names` says which
record keys feed which model inputs.
"""

from mater_tf.data.schema.contract import (
    CONTEXT,
    LOG_MEL_BANDS,
    OPTIONAL_SEQUENCE,
    SCHEMA_VERSION,
    SEQUENCE,
    VOICE_DESCRIPTORS,
    ClipRecord,
)
from mater_tf.data.schema.describe import describe_record
from mater_tf.data.schema.encode import to_sequence_example
from mater_tf.data.schema.model_names import (
    LOG_MEL_INPUT,
    MODEL_INPUTS,
    VOICE_DESCRIPTORS_INPUT,
    input_names,
    member_key,
)
from mater_tf.data.schema.parse import feature_spec, parse_batch, parse_serialized

__all__ = [
    "CONTEXT",
    "LOG_MEL_BANDS",
    "LOG_MEL_INPUT",
    "MODEL_INPUTS",
    "OPTIONAL_SEQUENCE",
    "SCHEMA_VERSION",
    "SEQUENCE",
    "VOICE_DESCRIPTORS",
    "VOICE_DESCRIPTORS_INPUT",
    "ClipRecord",
    "describe_record",
    "feature_spec",
    "input_names",
    "member_key",
    "parse_batch",
    "parse_serialized",
    "to_sequence_example",
]
