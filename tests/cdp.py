"""A small client of the Chrome DevTools Protocol, for tests that drive a page with real input events.

`--dump-dom` renders a page but cannot hover, click, drag or press a key; the DevTools protocol
can, and Chromium speaks it over a pair of pipes with `--remote-debugging-pipe`: it reads JSON
commands, each ended by a NUL byte, from its file descriptor 3 and writes the answers and events
to its descriptor 4. No package is needed beyond the browser.

    with Browser(executable) as browser, browser.open(url) as tab:
        tab.mouse_move(x, y)
        tab.evaluate("document.title")

Every wait has a deadline: a browser that stops answering fails the test, it never hangs it.
"""

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time

SHIFT = 8  # Input.dispatchKeyEvent's modifiers bit
KEY_CODES = {"ArrowLeft": 37, "ArrowUp": 38, "ArrowRight": 39, "ArrowDown": 40, "Home": 36, "End": 35}


def _above_nine(fd: int) -> int:
    import fcntl  # POSIX only, as the pipe's fds 3 and 4 are; imported here so Windows still collects the tests

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class CDPError(RuntimeError):
    """The browser answered a command with an error, or did not answer in time."""


class Browser:
    """Headless Chromium driven through `--remote-debugging-pipe`.

    Args:
        executable: the browser (chromium, chrome).
        timeout: seconds any one command may take before the test fails.
        width, height: the size of each page opened, in CSS pixels.
    """

    def __init__(self, executable: str, timeout: float = 30.0, width: int = 1280, height: int = 900):
        self.timeout = timeout
        self.width, self.height = width, height
        self._profile = tempfile.mkdtemp(prefix="mater-tf-cdp-")
        self._log = tempfile.TemporaryFile()  # a file, not a pipe: a chatty browser never blocks on it
        commands_read, self._commands = os.pipe()  # we write commands; the browser reads its fd 3
        self._answers, answers_written = os.pipe()  # the browser writes its fd 4; we read
        # The browser's ends moved above 9, so that putting them on 3 and 4 clobbers neither.
        commands_read, answers_written = (_above_nine(fd) for fd in (commands_read, answers_written))
        # bash puts them on fds 3 and 4 and closes the originals before exec'ing the browser.
        redirect = (
            f'exec "$@" 3<&{commands_read} 4>&{answers_written} {commands_read}<&- {answers_written}>&-'
        )
        self._process = subprocess.Popen(
            [
                "bash",
                "-c",
                redirect,
                "browser",
                executable,
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--mute-audio",
                "--remote-debugging-pipe",
                f"--user-data-dir={self._profile}",
                "about:blank",
            ],
            pass_fds=(commands_read, answers_written),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        os.close(commands_read)
        os.close(answers_written)
        self._next_id = 0
        self._lock = threading.Lock()
        self._waiting: dict[int, queue.Queue] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.version = self.send("Browser.getVersion")["product"]

    def _read(self):
        """Hands each answer to the command waiting for it (events are not needed here)."""
        buffer = b""
        while True:
            try:
                chunk = os.read(self._answers, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                waiting = self._waiting.get(message.get("id"))
                if waiting is not None:
                    waiting.put(message)
        for waiting in list(self._waiting.values()):  # the browser went away: wake whoever waits
            waiting.put({"error": {"message": "the browser closed its pipe"}})

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Sends one command (to a page when `session` is given) and returns its result."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            self._waiting[ident] = answer = queue.Queue()
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            os.write(self._commands, json.dumps(message).encode() + b"\0")
            reply = answer.get(timeout=self.timeout)
        except queue.Empty:
            raise CDPError(f"{method}: no answer from the browser in {self.timeout} s") from None
        except OSError as error:
            raise CDPError(f"{method}: the browser is gone ({error}): {self._stderr_tail()}") from None
        finally:
            self._waiting.pop(ident, None)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def open(self, url: str, ready: str = "document.body && document.body.dataset.ready === '1'") -> "Tab":
        """A new page at `url`, once the expression `ready` holds in it."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        tab = Tab(self, target, session)
        tab.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        tab.send("Emulation.setFocusEmulationEnabled", {"enabled": True})  # key events reach the page
        tab.send("Page.navigate", {"url": url})
        tab.wait_for(ready)
        return tab

    def _stderr_tail(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    def close(self):
        """Asks the browser to quit; kills it if it has not within a few seconds."""
        if self._process.poll() is None:
            try:
                self.timeout = 5.0
                self.send("Browser.close")
            except CDPError:
                pass
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        os.close(self._commands)
        self._reader.join(timeout=5)
        os.close(self._answers)
        self._log.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Tab:
    """One page of a `Browser`: evaluates script and sends it mouse and key events (CSS pixels)."""

    def __init__(self, browser: Browser, target: str, session: str):
        self.browser, self.target, self.session = browser, target, session

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def evaluate(self, expression: str):
        """The value of a script expression in the page (JSON-able), or CDPError with its exception."""
        answer = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise CDPError(
                f"{expression!r}: {details.get('exception', {}).get('description') or details['text']}"
            )
        return answer["result"].get("value")

    def wait_for(self, expression: str, timeout: float | None = None):
        """Polls until `expression` is truthy in the page; returns its value."""
        deadline = time.monotonic() + (timeout or self.browser.timeout)
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise CDPError(f"{expression!r} did not hold within {timeout or self.browser.timeout} s")
            time.sleep(0.05)

    def box(self, selector: str) -> dict:
        """getBoundingClientRect() of the first element matching `selector`: left, right, top, bottom, width, height."""
        found = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " const b = e.getBoundingClientRect();"
            " return {left: b.left, right: b.right, top: b.top, bottom: b.bottom, width: b.width, height: b.height}; })()"
        )
        if found is None:
            raise CDPError(f"no element {selector}")
        return found

    def _mouse(self, kind: str, x: float, y: float, button: str = "none", buttons: int = 0, clicks: int = 0):
        self.send(
            "Input.dispatchMouseEvent",
            {"type": kind, "x": x, "y": y, "button": button, "buttons": buttons, "clickCount": clicks},
        )

    def mouse_move(self, x: float, y: float):
        self._mouse("mouseMoved", x, y)

    def click(self, x: float, y: float):
        self._mouse("mousePressed", x, y, "left", 1, 1)
        self._mouse("mouseReleased", x, y, "left", 0, 1)

    def drag(self, start: tuple[float, float], end: tuple[float, float], steps: int = 8):
        """Presses at `start`, moves in `steps` even steps to `end` with the button held, releases."""
        (x0, y0), (x1, y1) = start, end
        self._mouse("mousePressed", x0, y0, "left", 1, 1)
        for step in range(1, steps + 1):
            share = step / steps
            self._mouse("mouseMoved", x0 + share * (x1 - x0), y0 + share * (y1 - y0), "left", 1)
        self._mouse("mouseReleased", x1, y1, "left", 0, 1)

    def press(self, key: str, shift: bool = False):
        """Presses and releases a named key (ArrowRight, Home...), with shift held if asked."""
        event = {
            "key": key,
            "code": key,
            "windowsVirtualKeyCode": KEY_CODES[key],
            "modifiers": SHIFT if shift else 0,
        }
        self.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", **event})
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", **event})

    def close(self):
        try:
            self.browser.send("Target.closeTarget", {"targetId": self.target})
        except CDPError:
            pass  # the browser is already gone: nothing left to close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
