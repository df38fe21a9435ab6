"""Installs the browser that the page tests drive (Debian's chromium), where none is found.

tox runs it before the tests (`commands_pre`), so a clean CI machine gets one with nothing
installed by hand. It installs only as root with apt-get; anywhere else it says why it did not,
and the browser tests skip, printing the same reason. It never fails the run.
"""

import os
import shutil
import subprocess
import sys

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_browser() -> str | None:
    """The first Chromium-family browser on PATH (MATER_TF_BROWSER names another)."""
    named = os.environ.get("MATER_TF_BROWSER")
    if named:
        return shutil.which(named)
    return next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)


def main() -> int:
    found = find_browser()
    if found:
        print(f"install_browser: {found} is there")
        return 0
    if not shutil.which("apt-get"):
        print("install_browser: no chromium, and no apt-get to install it; the browser tests will skip")
        return 0
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        print("install_browser: no chromium; run as root (or apt-get install chromium) for the browser tests")
        return 0
    print("install_browser: apt-get install -y chromium (for the tests of the predict pages)", flush=True)
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
    ):
        done = subprocess.run(command, env=environment, capture_output=True, text=True)
        if done.returncode:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
            print(f"install_browser: {' '.join(command)} failed ({tail[0]}); the browser tests will skip")
            return 0
    print(f"install_browser: installed {find_browser()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
