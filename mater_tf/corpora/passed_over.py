"""The files a listing passed over, summed up for the terminal: counted by reason, an example
of each (prepare and predict print these lines)."""

from __future__ import annotations


def passed_over_summary(skipped: list, limit: int = 4) -> list[str]:
    """Terminal lines: how many files were passed over, by reason, with an example of each."""
    import collections

    from mater_tf.corpora import reason_kind

    kinds = collections.defaultdict(list)
    for path, reason in skipped:
        kinds[reason_kind(reason)].append((path, reason))
    lines = []
    for kind, entries in sorted(kinds.items(), key=lambda item: -len(item[1]))[:limit]:
        path, reason = entries[0]
        example = reason if reason.startswith(path) else f"{path}: {reason}"
        lines.append(f"  {len(entries)} passed over: {kind} (e.g. {example})")
    if len(kinds) > limit:
        lines.append(f"  {sum(len(e) for k, e in list(kinds.items())[limit:])} more of other kinds")
    return lines
