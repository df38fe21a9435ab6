"""A run folder used from elsewhere: evaluate from another folder and after a move, export killed midway."""

import json
import os
import shutil

import pytest

from mater_tf.cli.main import main


@pytest.fixture(scope="module")
def relative_run(tmp_path_factory, tiny_overrides, cli_command):
    """A tiny `mater-tf train` run with a relative --workdir (the way users type it)."""
    home = tmp_path_factory.mktemp("home")
    before = os.getcwd()
    os.chdir(home)
    try:
        assert main(cli_command("train", "runs", "tiny", tiny_overrides)) == 0
    finally:
        os.chdir(before)
    return home / "runs" / "quickstart" / "tiny"


def test_evaluate_from_another_folder_and_after_a_move(relative_run, tmp_path, capsys, monkeypatch):
    expected = json.loads((relative_run / "metrics.json").read_text())["test"]
    monkeypatch.chdir(tmp_path)  # not where it was trained
    assert main(["evaluate", "--run", str(relative_run)]) == 0
    assert json.loads((relative_run / "metrics.json").read_text())["test"] == expected
    moved = tmp_path / "archive" / "tiny"
    shutil.copytree(relative_run, moved)  # a move, as far as the run can tell, once its old records are gone:
    (relative_run / "data").rename(relative_run / "data-away")
    try:
        assert main(["evaluate", "--run", os.path.relpath(moved)]) == 0
    finally:
        (relative_run / "data-away").rename(relative_run / "data")
    assert json.loads((moved / "metrics.json").read_text())["test"] == expected
    assert "AV" in capsys.readouterr().out


def test_a_killed_export_leaves_nothing_that_blocks_the_next(relative_run, tmp_path, capsys, monkeypatch):
    import mater_tf.serving.export as export_module

    real_export = export_module.export_serving_version
    out = tmp_path / "served"

    def killed(model, path, *args, **kwargs):
        (path / "variables").mkdir(parents=True)
        (path / "variables" / "half").write_text("x")
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "export_serving_version", killed)
    assert main(["export", "--run", str(relative_run), "--out", str(out)]) == 130
    assert "nothing was exported; run the same command again" in capsys.readouterr().err
    assert not out.exists()
    # Even a partial folder left by a SIGKILL is no obstacle: the next export replaces it.
    (out / ".1.partial-export" / "variables").mkdir(parents=True)
    monkeypatch.setattr(export_module, "export_serving_version", real_export)
    assert main(["export", "--run", str(relative_run), "--out", str(out)]) == 0
    assert (out / "1" / "saved_model.pb").is_file() and (
        out / "1" / "assets.extra" / "mater_tf.json"
    ).is_file()
    assert sorted(path.name for path in out.iterdir()) == ["1"]
