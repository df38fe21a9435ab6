"""The pages `mater-tf predict` writes (`mater_tf.serving.page`), checked in a real browser.

The browser tests open the pages in headless Chromium (installed by `tests/install_browser.py`,
which tox runs first), read the DOM the page's script rendered, and compare it with the JSON.
"""

import csv
import html
import importlib.util
import json
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote, urljoin

import pytest

from mater_tf.cli.main import main
from mater_tf.serving.page import write_index, write_page

VIDEO = ("CREMA-D", "VideoFlash", "1001_DFA_ANG_XX.flv")
MODEL = {"name": "a run", "what": "a trained run's export", "modalities": ["audio", "face"], "cards": []}


def _install_script():
    spec = importlib.util.spec_from_file_location(
        "install_browser", Path(__file__).parent / "install_browser.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def browser():
    found = _install_script().find_browser()
    if not found:
        pytest.skip(
            "no chromium on PATH (tests/install_browser.py installs it as root with apt-get; tox runs it)"
        )
    return found


def render(browser, url: str) -> str:
    """The DOM of `url` after its scripts ran, from headless Chromium."""
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
        timeout=120,
    )
    assert 'data-ready="1"' in done.stdout, f"the page's script did not finish: {done.stderr[-2000:]}"
    return done.stdout


def cells(dom: str, table: str) -> dict:
    """{(series, label): (value written, text shown)} of one probability table of the DOM."""
    found = re.search(rf'<table class="probabilities" id="{table}">(.*?)</table>', dom, re.S)
    assert found, f"no table {table}"
    return {
        (series, html.unescape(label)): (value, shown)
        for series, label, value, shown in re.findall(
            r'<td data-series="([^"]+)" data-label="([^"]+)" data-value="([^"]*)">([^<]*)', found.group(1)
        )
    }


def attribute(dom: str, element_id: str, name: str) -> str:
    tag = re.search(rf'<[^>]*\bid="{element_id}"[^>]*>', dom).group(0)
    return re.search(rf'\b{name}="([^"]*)"', tag).group(1)


def text(dom: str, element_id: str) -> str:
    return html.unescape(re.search(rf'id="{element_id}"[^>]*>([^<]*)<', dom).group(1))


def embedded(page: Path, block: str) -> dict:
    found = re.search(rf'<script type="application/json" id="{block}">(.*?)</script>', page.read_text(), re.S)
    return json.loads(found.group(1))


def a_result(clip="interview.mp4", windows=3):
    """A clip's result as predict writes it (two labels, a face missing in the last window)."""
    rows = [
        {
            "index": k,
            "start": 0.5 * k,
            "end": 0.5 * (k + 1),
            "probabilities": [0.7, 0.3],
            "audio_probabilities": [0.6, 0.4],
            "face_probabilities": None if k == windows - 1 else [0.8, 0.2],
            "emotion": "happy",
            "face_found": k != windows - 1,
            "face_frames_found": 0 if k == windows - 1 else 5,
            "frames": 5,
            "attention": {"audio": 0.3, "face": 0.2},
        }
        for k in range(windows)
    ]
    return {
        "clip": clip,
        "model": "a run",
        "labels": ["happy", "sad"],
        "rule": "clip emotion = highest mean fused probability",
        "window_seconds": 0.5,
        "model_windows": 4,
        "stride_windows": 1,
        "num_windows": windows,
        "num_segments": 1,
        "emotion": "happy",
        "probabilities": {"happy": 0.7, "sad": 0.3},
        "windows": rows,
        "segments": [],
        "frames_decoded": 5 * windows,
        "face_found_rate": 0.67,
        "duration": 0.5 * windows,
    }


def test_a_page_embeds_the_json_once_and_fetches_nothing(tmp_path):
    result = {**a_result(clip=str(tmp_path / "in" / "a <b> clip & co.mp4")), "model": "run </script><b>"}
    (tmp_path / "in").mkdir()
    Path(result["clip"]).write_bytes(b"not played here")
    page = write_page(result, tmp_path / "out", "clip", MODEL)
    written = page.read_text()
    assert embedded(page, "prediction") == result  # the clip's JSON, whole, its '</script>' harmless
    assert written.count('id="prediction"') == 1 and "</script><b>" not in written
    # Offline: no address outside the page (no URL scheme, no protocol-relative link, no src of a script).
    assert not re.search(
        r"(https?|ftp):|//[a-z0-9.-]+\.[a-z]{2,}/|<script[^>]+src=|<link[^>]+href=", written, re.I
    )
    media = embedded(page, "page")["media"]
    assert media["kind"] == "video" and unquote(media["src"]) == "../in/a <b> clip & co.mp4"
    assert (page.parent / unquote(media["src"])).resolve() == Path(result["clip"]).resolve()


def test_copy_media_puts_the_clip_beside_the_page(tmp_path):
    clip = tmp_path / "talk.MP4"
    clip.write_bytes(b"frames")
    page = write_page(a_result(clip=str(clip)), tmp_path / "out", "talk", MODEL, copy_media=True)
    assert embedded(page, "page")["media"]["src"] == "talk.mp4"
    assert (tmp_path / "out" / "talk.mp4").read_bytes() == b"frames"


def test_a_missing_clip_or_a_live_stream_gets_a_note_instead_of_a_player(tmp_path):
    page = write_page(a_result(clip=str(tmp_path / "gone.mp4")), tmp_path, "gone", MODEL)
    assert embedded(page, "page")["media"] is None and "not found" in embedded(page, "page")["media_note"]
    live = {
        **a_result(clip="rtsp://camera/stream"),
        "live": {"source": "rtsp://camera/stream", "outputs": []},
    }
    page = write_page(live, tmp_path, "stream", MODEL)
    assert embedded(page, "page")["media"] is None and "live stream" in embedded(page, "page")["media_note"]


def test_the_index_links_the_clips_that_have_a_page(tmp_path):
    rows = [{"clip": "a b", "error": ""}, {"clip": "bad", "error": "bad.wav: silent"}]
    index = write_index(tmp_path, rows)
    assert [row["page"] for row in embedded(index, "summary")["rows"]] == ["a%20b.html", None]


@pytest.mark.slow
def test_the_page_of_a_real_video_shows_the_json_of_the_time_sought(browser, shared_dir, tmp_path):
    video = shared_dir.joinpath("data", *VIDEO)
    out = tmp_path / "out"
    assert main(["predict", str(video), "--out", str(out)]) == 0
    result = json.loads((out / f"{video.stem}.json").read_text())
    page = out / f"{video.stem}.html"
    assert embedded(page, "prediction") == result
    windows = result["windows"]
    assert len(windows) >= 4 and "face_expression" in result  # a video with a face: the face channel shown
    # Inside windows, on a boundary (the later window), at 0 and past the last window's end.
    times = [
        0.0,
        windows[1]["start"],
        0.5 * (windows[2]["start"] + windows[2]["end"]),
        result["duration"] + 5,
    ]
    for seek in times:
        dom = render(browser, f"{page.as_uri()}#t={seek}")
        expected = max(k for k, w in enumerate(windows) if w["start"] <= seek)
        window = windows[expected]
        assert attribute(dom, "readout", "data-window") == str(expected), seek
        assert attribute(dom, "highlight", "data-window") == str(expected), seek
        assert float(text(dom, "readout-start")) == pytest.approx(window["start"], abs=0.005)
        assert float(text(dom, "readout-end")) == pytest.approx(window["end"], abs=0.005)
        assert text(dom, "readout-emotion") == window["emotion"]
        shown = cells(dom, "readout-probabilities")
        for series in ("probabilities", "audio_probabilities"):
            for label, value in zip(result["labels"], window[series]):
                written, rounded = shown[(series, label)]
                assert float(written) == value and float(rounded) == pytest.approx(value, abs=0.005 + 1e-9)
        face = cells(dom, "readout-probabilities-face") if window["face_expression"] else {}
        for label, value in zip(result["face_expression"]["labels"], window["face_expression"] or []):
            assert float(face[("face_expression", label)][0]) == value
    assert text(dom, "clip-emotion") == result["emotion"] and result["rule"] in html.unescape(dom)
    assert "fer2013-face" in dom and "not fused" in dom and text(dom, "model-name") == "ravdess-voice"
    # The window by number, as a link would give it.
    dom = render(browser, f"{page.as_uri()}#w={len(windows) - 2}")
    assert attribute(dom, "readout", "data-window") == str(len(windows) - 2)


@pytest.mark.slow
def test_the_index_sorts_the_folder_and_links_each_clip_page(browser, shared_dir, tmp_path):
    folder = shared_dir / "data" / "CREMA-D" / "AudioMP3"
    out = tmp_path / "out"
    assert main(["predict", str(folder), "--out", str(out)]) == 0
    with (out / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    score = json.loads((out / "score.json").read_text())
    # What the page's script rendered (the script's own text follows it).
    dom = render(browser, f"{(out / 'index.html').as_uri()}#sort=-confidence").split("<script")[0]
    order = re.findall(r'<tr data-clip="([^"]+)">', dom)
    by_confidence = sorted(rows, key=lambda row: -float(row[f"fused_{row['emotion']}"]))
    assert order == [row["clip"] for row in by_confidence]
    matrix = [int(n) for n in re.findall(r"<td[^>]*>(\d+)</td>", dom.split('id="confusion"')[1])]
    assert matrix == [n for row in score["confusion_matrix"] for n in row]
    assert f"accuracy {score['accuracy']:.3f}" in dom and "not a held-out" in dom
    # Follow the first link: the clip's page, playing its audio over its waveform.
    link = re.search(r'<td data-key="clip" class=""><a href="([^"]+)">', dom).group(1)
    target = urljoin((out / "index.html").as_uri(), link)
    clip = json.loads((out / f"{order[0]}.json").read_text())
    dom = render(browser, target)
    assert text(dom, "clip-emotion") == clip["emotion"] and order[0] in text(dom, "title")
    assert re.search(r'<audio[^>]*id="media"', dom) and 'id="waveform"' in dom


@pytest.mark.slow
def test_live_writes_the_page_of_what_it_read(shared_dir, tmp_path):
    mp3 = shared_dir / "data" / "CREMA-D" / "AudioMP3" / "1002_DFA_ANG_XX.mp3"
    out = tmp_path / "out"
    assert main(["predict", "--live", str(mp3), "--out", str(out)]) == 0
    page = out / f"{mp3.stem}.html"
    assert embedded(page, "prediction") == json.loads((out / f"{mp3.stem}.json").read_text())
    assert embedded(page, "page")["media"]["kind"] == "audio"  # a file read as a stream still plays
