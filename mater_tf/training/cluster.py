"""This process's place in a multi-worker cluster, read from `TF_CONFIG`.

Every worker of a `train.distribution=multi_worker` run runs the same command;
`TF_CONFIG` (JSON: a `cluster` of `chief`/`worker` "host:port" addresses and
this process's `task`) says which worker it is, the standard way of
`tf.distribute.MultiWorkerMirroredStrategy`. A TF_CONFIG that TensorFlow would
reject, or misread, is refused here in one line that names what is wrong.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping

from mater_tf.errors import UserError

TF_CONFIG = "TF_CONFIG"
# MultiWorkerMirroredStrategy's task types: the chief (optional) and the workers.
WORKER_TYPES = ("chief", "worker")
TF_CONFIG_EXAMPLE = (
    'TF_CONFIG=\'{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\''
)


@dataclasses.dataclass(frozen=True)
class Worker:
    """This process's place in the cluster."""

    task_type: str = "worker"
    task_index: int = 0
    num_workers: int = 1
    has_chief_task: bool = False

    @property
    def is_chief(self) -> bool:
        """The chief writes the run; TensorFlow's rule: the `chief` task, else worker 0."""
        if self.has_chief_task:
            return self.task_type == "chief"
        return self.task_index == 0


def _bad_tf_config(problem: str) -> UserError:
    return UserError(
        f"TF_CONFIG {problem}; set it on every worker, e.g. {TF_CONFIG_EXAMPLE} "
        "(the same cluster everywhere, each worker its own index; docs/scaling_out.md)"
    )


def read_tf_config(environ: Mapping[str, str] | None = None) -> Worker:
    """This worker from `TF_CONFIG` (JSON: `cluster` of `chief`/`worker` addresses and `task`).

    Raises:
        UserError: one line naming what is wrong in TF_CONFIG and a value that works.
    """
    text = (os.environ if environ is None else environ).get(TF_CONFIG, "").strip()
    if not text:
        raise _bad_tf_config("is not set, and train.distribution=multi_worker needs it")
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as error:
        raise _bad_tf_config(f"is not valid JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("cluster"), dict):
        raise _bad_tf_config('has no "cluster" object')
    cluster, task = spec["cluster"], spec.get("task")
    for task_type, addresses in cluster.items():
        if task_type not in WORKER_TYPES:
            raise _bad_tf_config(
                f'has a "{task_type}" task type, which MultiWorkerMirroredStrategy does not use '
                "(only chief and worker)"
            )
        if not isinstance(addresses, list) or not addresses:
            raise _bad_tf_config(f'cluster "{task_type}" must be a non-empty list of "host:port"')
        for address in addresses:
            host, _, port = str(address).rpartition(":")
            if not isinstance(address, str) or not host or not port.isdigit():
                raise _bad_tf_config(f'cluster "{task_type}" has {address!r}, not "host:port"')
            if not 0 < int(port) < 65536:
                raise _bad_tf_config(f'cluster "{task_type}" has {address!r}: a port is 1 to 65535')
    if len(cluster.get("chief", [])) > 1:
        raise _bad_tf_config("lists more than one chief")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise _bad_tf_config(f'"task" must name a type of the cluster ({", ".join(cluster)}) and an index')
    index = task.get("index", 0)
    if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise _bad_tf_config(
            f'task index {index!r} is not in [0, {len(cluster[task["type"]])}) for type "{task["type"]}"'
        )
    return Worker(
        task_type=task["type"],
        task_index=index,
        num_workers=sum(len(addresses) for addresses in cluster.values()),
        has_chief_task="chief" in cluster,
    )


def own_address(environ: Mapping[str, str] | None = None) -> str:
    """This task's "host:port" in a TF_CONFIG that `read_tf_config` accepted."""
    spec = json.loads((os.environ if environ is None else environ)[TF_CONFIG])
    task = spec["task"]
    return spec["cluster"][task["type"]][task.get("index", 0)]


def peers(environ: Mapping[str, str] | None = None) -> list[str]:
    """The other tasks of a TF_CONFIG that `read_tf_config` accepted: "worker 1 at host:port"."""
    spec = json.loads((os.environ if environ is None else environ)[TF_CONFIG])
    own = (spec["task"]["type"], spec["task"].get("index", 0))
    return [
        f"{task_type} {index} at {address}"
        for task_type, addresses in spec["cluster"].items()
        for index, address in enumerate(addresses)
        if (task_type, index) != own
    ]
