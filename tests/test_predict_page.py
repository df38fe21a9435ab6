"""The pages `mater-tf predict` writes (`mater_tf.serving.page`), checked in a real browser.

The browser tests open the pages in headless Chromium (installed by `tests/install_browser.py`,
which tox runs first), read the DOM the page's script rendered, and compare it with the JSON.
The interaction tests drive the page with real mouse and key events over the DevTools protocol
(`tests/cdp.py`): hover, click and drag on the timeline, the arrow keys, the index's headings.
"""

import csv
import html
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urljoin

import pytest

from mater_tf.cli.main import main
from mater_tf.serving.page import write_index, write_page

VIDEO = ("CREMA-D", "VideoFlash", "1001_DFA_ANG_XX.flv")
MODEL = {"name": "a run", "what": "a trained run's export", "modalities": ["audio", "face"], "cards": []}


def _helper(name: str):
    """A module of tests/ (not a package: tox imports the tests in importlib mode)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cdp = _helper("cdp")


@pytest.fixture(scope="module")
def browser():
    found = _helper("install_browser").find_browser()
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


def test_a_page_embeds_the_json_once_and_fetches_nothing(tmp_path, shared_dir):
    result = {**a_result(clip=str(tmp_path / "in" / "a <b> clip & co.mp4")), "model": "run </script><b>"}
    (tmp_path / "in").mkdir()
    # A real video under that name: the page's player is chosen by what FFmpeg finds in the file.
    shutil.copyfile(shared_dir / "data" / "CREMA-D" / "VideoFlash" / "1001_DFA_ANG_XX.flv", result["clip"])
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


# The page's interactions, driven with real input events through the DevTools protocol (tests/cdp.py).
# What each should show is computed from the clip's JSON and the geometry the DOM reports
# (getBoundingClientRect), never from the page's own functions.

# The media has loaded or failed: the note a failed one writes moves the timeline down.
SETTLED = "(() => { const m = document.getElementById('media');"
SETTLED += " return !m || m.dataset.failed === '1' || m.readyState > 0; })()"


@pytest.fixture(scope="module")
def driven(browser):
    """One headless Chromium for the module's tests; each test opens its own page in it."""
    with cdp.Browser(browser) as session:
        yield session


@pytest.fixture(scope="module")
def predicted(shared_dir_module, tmp_path_factory):
    """predict's output for a real video (a face, 5 windows) and six MP3s: the pages and index.html."""
    out = tmp_path_factory.mktemp("predicted")
    video = shared_dir_module.joinpath("data", *VIDEO)
    assert (
        main(
            [
                "predict",
                str(video),
                str(shared_dir_module / "data" / "CREMA-D" / "AudioMP3"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


class Timeline:
    """A clip page open in the browser, and where its windows lie on the screen."""

    def __init__(self, tab, page: Path):
        self.tab = tab
        tab.wait_for(SETTLED)
        self.result = embedded(page, "prediction")
        self.windows = self.result["windows"]
        # The view opens on the whole clip (a clip of up to 160 windows, as these are).
        assert len(self.windows) <= 160
        self.duration = max(self.result["duration"], self.windows[-1]["end"])
        self.tracks = tab.box("#tracks")
        self.band = self.tracks["top"] + 10  # the middle of the first band (fused emotion, 20 px)

    def x(self, seconds: float) -> float:
        return self.tracks["left"] + seconds / self.duration * self.tracks["width"]

    def seconds(self, x: float) -> float:
        share = (x - self.tracks["left"]) / self.tracks["width"]
        return min(max(share, 0.0), 1.0) * self.duration

    def window_at(self, seconds: float) -> int:
        return max(k for k, w in enumerate(self.windows) if w["start"] <= seconds)

    def shown(self) -> dict:
        """The window the page shows, the highlight's and the cursor's place, the clock."""
        return self.tab.evaluate(
            """(() => { const box = (id) => document.getElementById(id).getBoundingClientRect();
            const highlight = box("highlight"), cursor = box("cursor");
            return { readout: document.getElementById("readout").dataset.window,
                     highlighted: document.getElementById("highlight").dataset.window,
                     start: document.getElementById("readout-start").textContent,
                     left: highlight.left, right: highlight.right, cursor: cursor.left + cursor.width / 2,
                     clock: document.getElementById("clock").textContent }; })()"""
        )

    def check_at(self, seconds: float):
        """The page shows the window at `seconds`: readout, highlight over its span, cursor, clock."""
        expected = self.window_at(seconds)
        window, shown = self.windows[expected], self.shown()
        assert shown["readout"] == shown["highlighted"] == str(expected), (seconds, shown)
        assert float(shown["start"]) == pytest.approx(window["start"], abs=0.005)
        assert shown["left"] == pytest.approx(self.x(window["start"]), abs=1)
        assert shown["right"] == pytest.approx(self.x(window["end"]), abs=1)
        assert shown["cursor"] == pytest.approx(self.x(seconds), abs=1)
        minutes, rest = shown["clock"].split(" / ")[0].split(":")
        assert 60 * int(minutes) + float(rest) == pytest.approx(
            seconds, abs=0.006 + self.duration / self.tracks["width"]
        )


@pytest.mark.slow
def test_hovering_a_window_shows_its_start_end_and_probabilities(driven, predicted):
    page = predicted / f"{Path(VIDEO[-1]).stem}.html"
    with driven.open(page.as_uri()) as tab:
        timeline = Timeline(tab, page)
        for k, window in enumerate(timeline.windows):
            # The window's middle, and its last whole pixel (the right edge keeps the tooltip on screen).
            for x in (
                round(timeline.x(0.5 * (window["start"] + window["end"]))),
                int(timeline.x(window["end"])) - 1,
            ):
                tab.mouse_move(x, timeline.band)
                tooltip = tab.evaluate(
                    """(() => { const t = document.getElementById("tooltip"), b = t.getBoundingClientRect();
                    return { hidden: t.hidden, window: t.dataset.window, heading: t.querySelector("b").textContent,
                             values: [...t.querySelectorAll("td[data-series]")].map((c) => [c.dataset.series, c.dataset.label, c.dataset.value]),
                             left: b.left, right: b.right, top: b.top, bottom: b.bottom,
                             width: innerWidth, height: innerHeight }; })()"""
                )
                assert not tooltip["hidden"] and tooltip["window"] == str(k), (k, x, tooltip)
                number, start, end = re.fullmatch(
                    r"window (\d+): ([\d.]+)\u2013([\d.]+) s", tooltip["heading"]
                ).groups()
                assert int(number) == k + 1
                assert float(start) == pytest.approx(window["start"], abs=0.005)
                assert float(end) == pytest.approx(window["end"], abs=0.005)
                # The exact values, as the JSON has them (data-value; the text shows them rounded).
                shown = {
                    (key, label): float(value) if value else None for key, label, value in tooltip["values"]
                }
                expected = {
                    (key, label): None if window[key] is None else window[key][j]
                    for j, label in enumerate(timeline.result["labels"])
                    for key in ("probabilities", "audio_probabilities")
                }
                face = zip(timeline.result["face_expression"]["labels"], window["face_expression"] or [])
                expected.update({("face_expression", label): value for label, value in face})
                assert shown == expected
                assert 0 <= tooltip["left"] and tooltip["right"] <= tooltip["width"]
                assert 0 <= tooltip["top"] and tooltip["bottom"] <= tooltip["height"]
        tab.mouse_move(timeline.tracks["left"] - 50, timeline.band)  # off the tracks: the tooltip goes
        assert tab.evaluate("document.getElementById('tooltip').hidden")


@pytest.mark.slow
def test_a_click_on_the_tracks_or_the_overview_seeks_there(driven, predicted):
    page = predicted / f"{Path(VIDEO[-1]).stem}.html"
    with driven.open(page.as_uri()) as tab:
        timeline = Timeline(tab, page)
        left, width = timeline.tracks["left"], timeline.tracks["width"]
        for share in (0.03, 0.37, 0.5, 0.81, 0.99):
            x = round(left + share * width)
            tab.click(x, timeline.band)
            timeline.check_at(timeline.seconds(x))
        overview = tab.box("#overview")
        for share in (0.62, 0.1):
            x = round(overview["left"] + share * overview["width"])
            tab.click(x, overview["top"] + overview["height"] / 2)
            timeline.check_at((x - overview["left"]) / overview["width"] * timeline.duration)


@pytest.mark.slow
def test_a_drag_seeks_to_where_it_ends_even_past_the_tracks(driven, predicted):
    page = predicted / f"{Path(VIDEO[-1]).stem}.html"
    with driven.open(page.as_uri()) as tab:
        timeline = Timeline(tab, page)
        left, right, y = timeline.tracks["left"], timeline.tracks["right"], timeline.band
        for start, end in (
            (left + 100, right - 300),  # rightwards
            (right - 150, left + 260),  # leftwards
            (left + 200, right + 120),  # past the end: the clip's end
            (right - 100, left - 120),  # past the start: 0
            (left + 300, left + 300),  # pressed and released in place
        ):
            tab.drag((start, y), (end, y + 40))  # the button held, the pointer may leave the band
            timeline.check_at(timeline.seconds(end))
        # Released: moving on no longer seeks.
        before = timeline.shown()
        tab.mouse_move(left + 20, y)
        assert timeline.shown()["cursor"] == before["cursor"]


def _highlighted(tab) -> int:
    return int(tab.evaluate("document.getElementById('highlight').dataset.window"))


@pytest.mark.slow
@pytest.mark.parametrize("clip", [Path(VIDEO[-1]).stem, "1002_DFA_ANG_XX"], ids=["video", "playing-mp3"])
def test_arrow_keys_move_window_by_window(driven, predicted, clip):
    # The video is one this browser cannot play (.flv); the MP3 plays, so each move seeks its audio too.
    page = predicted / f"{clip}.html"
    with driven.open(page.as_uri()) as tab:
        timeline = Timeline(tab, page)
        last = len(timeline.windows) - 1
        expected = 0
        for key, shift, step in [
            ("ArrowRight", False, 1),
            ("ArrowRight", True, 10),
            ("ArrowLeft", False, -1),
        ] * 2 + [
            ("ArrowLeft", True, -10),
            ("ArrowLeft", False, -1),
            ("End", False, last),
            ("Home", False, -last),
        ]:
            tab.press(key, shift=shift)
            expected = min(max(expected + step, 0), last)
            if timeline.result.get("clip", "").endswith(".mp3"):
                tab.wait_for(
                    f"document.getElementById('media').currentTime === {timeline.windows[expected]['start']}",
                    5,
                )
                tab.evaluate("new Promise((done) => setTimeout(done, 100))")  # its 'seeked' has come back
            assert _highlighted(tab) == expected, (key, shift)
            timeline.check_at(timeline.windows[expected]["start"])
        # In the middle of a window, the left arrow goes back to its start first, as a player does.
        middle = 0.5 * (timeline.windows[2]["start"] + timeline.windows[2]["end"])
        tab.click(round(timeline.x(middle)), timeline.band)
        tab.press("ArrowLeft")
        assert _highlighted(tab) == 2
        timeline.check_at(timeline.windows[2]["start"])
        tab.press("ArrowLeft")
        assert _highlighted(tab) == 1


@pytest.mark.slow
def test_shift_arrows_move_ten_windows_on_a_long_clip(driven, tmp_path):
    page = write_page(a_result(windows=25), tmp_path, "long", MODEL)
    with driven.open(page.as_uri()) as tab:
        timeline = Timeline(tab, page)
        for key, expected in [
            ("ArrowRight", 10),
            ("ArrowRight", 20),
            ("ArrowRight", 24),
            ("ArrowLeft", 14),
            ("ArrowLeft", 4),
            ("ArrowLeft", 0),
        ]:
            tab.press(key, shift=True)
            assert _highlighted(tab) == expected, (key, expected)
            timeline.check_at(timeline.windows[expected]["start"])


@pytest.mark.slow
def test_a_click_on_a_column_heading_sorts_the_index(driven, predicted):
    with (predicted / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 7 and not any(row["error"] for row in rows)
    confidence = {row["clip"]: float(row[f"fused_{row['emotion']}"]) for row in rows}
    by_name = sorted(confidence)
    with driven.open((predicted / "index.html").as_uri()) as tab:

        def click_heading(key):
            box = tab.box(f'#clips th[data-key="{key}"]')
            tab.click(box["left"] + box["width"] / 2, box["top"] + box["height"] / 2)
            return tab.evaluate(
                "({ order: [...document.querySelectorAll('#clips tbody tr')].map((r) => r.dataset.clip),"
                " sorted: [...document.querySelectorAll('#clips th[data-sorted]')].map((h) => [h.dataset.key, h.dataset.sorted]) })"
            )

        assert tab.evaluate(
            "[...document.querySelectorAll('#clips tbody tr')].map((r) => r.dataset.clip)"
        ) == [row["clip"] for row in rows]  # summary.csv's order until a heading is clicked
        shown = click_heading("confidence")
        assert shown == {"order": sorted(confidence, key=confidence.get), "sorted": [["confidence", "up"]]}
        shown = click_heading("confidence")  # again: the other way
        assert shown == {
            "order": sorted(confidence, key=confidence.get, reverse=True),
            "sorted": [["confidence", "down"]],
        }
        shown = click_heading("clip")
        assert shown == {"order": by_name, "sorted": [["clip", "up"]]}
        shown = click_heading("emotion")  # ties keep summary.csv's order
        assert shown["order"] == [row["clip"] for row in sorted(rows, key=lambda row: row["emotion"])]
