"""How big the page of `mater-tf predict` gets for a long file, and how long a browser takes to open it.

    python benchmarks/bench_page.py [--minutes 10] [--clip AUDIO] [--browser chromium] [--json OUT.json]

Loops a real sample clip (default: a CREMA-D mp3 from ../shared/data) into a WAV of `--minutes`
(written with the standard library's `wave`), predicts it with the default built-in model
(`mater-tf predict FILE --out DIR`), and reports the sizes of the page and the clip's JSON and
the wall time of headless Chromium loading the page and running its script to the end
(`--dump-dom`, median of 3, the browser's own start included; `--open-only` times a blank page
as well, the browser's start alone).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

CLIP = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "CREMA-D"
    / "AudioMP3"
    / "1002_DFA_ANG_XX.mp3"
)


def long_wav(clip: Path, minutes: float, out: Path) -> Path:
    """The clip looped (with 0.3 s of silence between repeats) into a 16 kHz 16-bit WAV of `minutes`."""
    from mater_tf.media import decode_audio

    piece = np.concatenate([decode_audio(clip), np.zeros(4800, np.float32)])
    samples = np.resize(piece, int(minutes * 60 * 16000))
    with wave.open(str(out), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return out


def open_seconds(browser: str, url: str, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(
            [
                browser,
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                "--virtual-time-budget=5000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        times.append(time.perf_counter() - started)
        if "about:blank" not in url and 'data-ready="1"' not in done.stdout:
            sys.exit(f"{url}: the page's script did not finish: {done.stderr[-500:]}")
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--browser", default="chromium")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from mater_tf.cli.main import main as mater_tf

    work = Path(tempfile.mkdtemp(prefix="bench_page_"))
    audio = long_wav(args.clip, args.minutes, work / "long.wav")
    started = time.perf_counter()
    if mater_tf(["predict", str(audio), "--out", str(work / "out")]) != 0:
        return 1
    predict_seconds = time.perf_counter() - started
    page, clip_json = work / "out" / "long.html", work / "out" / "long.json"
    figures = {
        "minutes": args.minutes,
        "windows": json.loads(clip_json.read_text())["num_windows"],
        "page_bytes": page.stat().st_size,
        "json_bytes": clip_json.stat().st_size,
        "predict_seconds": round(predict_seconds, 1),
        "browser_start_seconds": round(open_seconds(args.browser, "about:blank"), 2),
        "page_open_seconds": round(open_seconds(args.browser, f"{page.as_uri()}#t={args.minutes * 30}"), 2),
    }
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
