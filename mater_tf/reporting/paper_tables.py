"""The paper's Tables 1 and 3 over many finished runs, ours beside the paper's numbers (and the
runs that are in neither table), as Markdown (`mater-tf report`)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mater_tf.errors import UserError
from mater_tf.reporting.paper import TABLE1, TABLE3


def load_run(path: str | Path) -> dict:
    """A finished cv directory (cv_metrics.json) or single run (metrics.json) as one result."""
    path = Path(path)
    config_path = path / "config.yaml"
    if not config_path.is_file():
        raise UserError(f"{path}: not a mater-tf run or cv directory (no config.yaml)")
    config = yaml.safe_load(config_path.read_text())
    if (path / "cv_metrics.json").is_file():
        summary = json.loads((path / "cv_metrics.json").read_text())
        outputs = {
            k: (
                v["accuracy"]["mean"],
                v["accuracy"]["std"],
                v["accuracy"].get("folds_scored", len(v["accuracy"]["per_fold"])),
                v.get("num_clips", {}).get("total"),
                bool(v.get("folds_not_trained")),
            )
            for k, v in summary["outputs"].items()
        }
        corpus = summary["corpus"]
    elif (path / "metrics.json").is_file():
        metrics = json.loads((path / "metrics.json").read_text())
        outputs = {
            k: (
                v["accuracy"],
                None,
                int(v["accuracy"] is not None),
                v.get("num_clips"),
                bool(v.get("not_trained")),
            )
            for k, v in metrics["test"].items()
        }
        corpus = metrics["corpus"]
    else:
        raise UserError(
            f"{path}: the run has not finished (no cv_metrics.json or metrics.json); run it first"
        )
    split = path / "split.json"
    windows = json.loads(split.read_text()) if split.is_file() else {}
    if not windows:
        fold = next(iter(sorted(path.glob("fold_*/split.json"))), None)
        windows = json.loads(fold.read_text()) if fold else {}
    return {
        "path": str(path),
        "config": config,
        "corpus": corpus,
        "outputs": outputs,
        "num_windows": windows.get("num_windows"),
        "window_seconds": windows.get("window_seconds"),
    }


def _cell(result, output) -> str:
    if output not in result["outputs"]:
        return ""
    mean, std, folds, clips, not_trained = result["outputs"][output]
    if mean is None:
        return (
            "- (branch never trained: no training clip had the modality)"
            if not_trained
            else "- (modality absent)"
        )
    n = "" if clips is None else f", n={clips}"
    if std is None:  # one scored fold: no spread to show
        return f"{100 * mean:.1f} (1 fold{n})"
    return f"{100 * mean:.1f} +- {100 * std:.1f} ({folds} folds{n})" + (
        ", some folds never trained it" if not_trained else ""
    )


def _delta(result, output, paper_value) -> str:
    if output not in result["outputs"]:
        return ""
    return f"{100 * result['outputs'][output][0] - paper_value:+.1f}"


def paper_tables(run_paths) -> str:
    """Markdown: Table 1, Table 3 and other runs, ours beside the paper's numbers."""
    results = [load_run(p) for p in run_paths]
    if not results:
        raise UserError("give at least one run or cv directory")
    corpora = sorted({r["corpus"] for r in results})
    if len(corpora) > 1:
        raise UserError(
            f"the runs are of different corpora ({', '.join(corpora)}); report one corpus at a time"
        )
    lines = [f"# Results on {corpora[0]}", ""]
    if corpora[0] == "synthetic":
        lines += ["**SYNTHETIC data**: the paper has no numbers for it.", ""]
    table1 = [r for r in results if (r["config"].get("paper") or {}).get("table1")]
    if table1:
        lines += [
            "## Table 1: AV accuracy (%)",
            "",
            "| Dataset | #windows | Duration (s) | PE | MHSA | Paper | Ours (mean +- std) | Diff | run |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for result in sorted(table1, key=lambda r: list(TABLE1).index(r["config"]["paper"]["table1"])):
            dataset, windows, seconds, pe, mhsa, value = TABLE1[result["config"]["paper"]["table1"]]
            lines.append(
                f"| {dataset} | {windows} | {seconds} | {'✓' if pe else '✗'} | {'✓' if mhsa else '✗'} | {value} | "
                f"{_cell(result, 'av')} | {_delta(result, 'av', value)} | {result['path']} |"
            )
        lines.append("")
    table3 = {}
    for result in results:
        key = (result["config"].get("paper") or {}).get("table3")
        if key:
            table3.setdefault(key, []).append(result)
    if table3:
        lines += [
            "## Table 3: A, V and AV accuracy (%)",
            "",
            "| Dataset | Attention | A paper | A ours | V paper | V ours | AV paper | AV ours |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for key in [k for k in TABLE3 if k in table3]:
            dataset, attention, audio, face, av = TABLE3[key]
            cells = {"A": "", "V": "", "AV": ""}
            for result in table3[key]:
                modalities = result["config"]["model"]["modalities"]
                if modalities == ["audio"]:
                    cells["A"] = _cell(result, "av") + " (alone)"
                elif modalities == ["face"]:
                    cells["V"] = _cell(result, "av") + " (alone)"
                else:
                    cells["AV"] = _cell(result, "av")
                    cells["A"] = cells["A"] or _cell(result, "audio") + " (branch)"
                    cells["V"] = cells["V"] or _cell(result, "face") + " (branch)"
            lines.append(
                f"| {dataset} | {'✓' if attention else '✗'} | {audio} | {cells['A']} | {face} | {cells['V']} | "
                f"{av} | {cells['AV']} |"
            )
        lines.append("")
    others = [r for r in results if r not in table1 and not (r["config"].get("paper") or {}).get("table3")]
    if others:
        lines += [
            "## Other runs: accuracy (%)",
            "",
            "| experiment | windows | encoder | PE | MHSA | modalities | AV | A | V | run |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for result in others:
            model = result["config"]["model"]
            lines.append(
                f"| {result['config']['name']} | {result['num_windows']} x {result['window_seconds']} | "
                f"{model['encoder']} | {'✓' if model['positional_encoding'] else '✗'} | "
                f"{'–' if model['encoder'] == 'lstm' else '✓' if model['attention'] else '✗'} | "
                f"{','.join(model['modalities'])} | {_cell(result, 'av')} | "
                f"{_cell(result, 'audio')} | {_cell(result, 'face')} | {result['path']} |"
            )
        lines.append("")
    return "\n".join(lines)
