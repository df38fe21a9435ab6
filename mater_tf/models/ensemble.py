"""A deep ensemble's outputs: the members' averaged, and the members' own side by side."""

from __future__ import annotations

from mater_tf.data.schema import member_key
from mater_tf.layers import EnsembleAverage, StackMembers


def member_suffix(member: int, ensemble: int) -> str:
    """The name suffix of a member's layers: `_member{k}` in an ensemble, none in a single model."""
    return f"_member{member}" if ensemble > 1 else ""


def ensemble_outputs(member_outputs: list[dict]) -> dict:
    """One member's outputs as they are; several members' as the model's outputs.

    Each key (`logits`, `{m}_logits`) averages the members' probabilities (`EnsembleAverage`,
    under the key's name); `member_key(key)` holds every member's logits [batch, members,
    classes], what training reads (each member on its own loss).
    """
    if len(member_outputs) == 1:
        return member_outputs[0]
    outputs = {}
    for key in member_outputs[0]:
        per_member = [member[key] for member in member_outputs]
        outputs[key] = EnsembleAverage(name=key)(per_member)
        outputs[member_key(key)] = StackMembers(name=member_key(key))(per_member)
    return outputs
