"""The installed package is the whole package."""

from pathlib import Path

from setuptools import find_packages

import mater_tf

SOURCE = Path(__file__).resolve().parents[1]


def test_every_source_folder_is_a_package():
    packages = set(find_packages(str(SOURCE), include=["mater_tf", "mater_tf.*"]))
    folders = {
        ".".join(path.parent.relative_to(SOURCE).parts)
        for path in (SOURCE / "mater_tf").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert folders <= packages, f"folders without __init__.py: {sorted(folders - packages)}"


def test_the_quickstart_preset_is_installed():
    assert (Path(mater_tf.__file__).parent / "presets" / "quickstart.yaml").is_file()
