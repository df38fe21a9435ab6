"""The clips predict is given: media files as named, folders and CSVs listed by
`mater_tf.corpora.list_folder_or_csv`, each file predicted once however often it is named."""

from __future__ import annotations


def collect_clips(inputs) -> tuple[list, list]:
    """(clips, skipped) from the command line: files as given, folders and CSVs by `list_folder_or_csv`;
    prints what each folder or CSV holds, and every file named twice."""
    import os

    from mater_tf.corpora import Clip, list_folder_or_csv

    clips, skipped, seen = [], [], {}
    for given in inputs:
        if given.is_dir() or given.suffix.lower() == ".csv":
            found, passed, kind = list_folder_or_csv(given)
            labelled = sum(1 for clip in found if clip.label_name)
            print(f"{given}: {len(found)} clips ({kind}{f', {labelled} labelled' if labelled else ''})")
            skipped += passed
        else:
            found = [Clip(str(given), given.stem, "files", "", -1, "")]
        for clip in found:
            key = os.path.realpath(clip.path)
            if key in seen:
                print(f"mater-tf predict: {clip.path} is the same file as {seen[key]}; predicted once")
                continue
            seen[key] = clip.path
            clips.append(clip)
    return clips, skipped
