"""Headless Chromium (Debian's /usr/bin/chromium) driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: no websocket library needed): open a page, collect console errors
and uncaught exceptions, save a screenshot."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
    "--window-size=1400,1000",
)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _high(fd: int) -> int:
    new = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return new


class Page:
    def __init__(self, binary: str):
        self._to_chrome_r, self._to_chrome_w = os.pipe()
        self._from_chrome_r, self._from_chrome_w = os.pipe()
        self._profile = tempfile.TemporaryDirectory()
        self.log = Path(self._profile.name) / "chromium.log"
        r, w = (
            _high(fd) for fd in (self._to_chrome_r, self._from_chrome_w)
        )  # never 3 or 4 themselves
        # Chromium reads commands on fd 3 and writes replies and events on fd 4: the shell puts
        # them there
        command = f'exec 3<&{r} 4>&{w} {r}<&- {w}>&-; exec "$@"'
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [
                    "bash",
                    "-c",
                    command,
                    "chromium",
                    binary,
                    *FLAGS,
                    f"--user-data-dir={self._profile.name}/profile",
                ],
                pass_fds=(r, w),
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        os.close(r)
        os.close(w)
        self._buffer, self._id, self.events, self.session = b"", 0, [], None

    def _read(self, timeout: float) -> dict | None:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_chrome_r], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self._from_chrome_r, 1 << 20)
            if not chunk:
                raise RuntimeError(
                    "Chromium closed the DevTools pipe:\n" + self.log.read_text()[-2000:]
                )
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, timeout: float = 30, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self._to_chrome_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self._read(deadline - time.monotonic())
            if reply is None:
                break
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(f"no reply to {method} within {timeout} s")

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self._read(deadline - time.monotonic())
            if event is None:
                break
            self.events.append(event)
            if event.get("method") == method:
                return event
        raise TimeoutError(f"no {method} within {timeout} s")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads the page produced."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e.get("method") == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(f"exception: {d.get('exception', {}).get('description', d.get('text'))}")
            elif e.get("method") == "Runtime.consoleAPICalled" and p.get("type") == "error":
                out.append(
                    "console.error: "
                    + " ".join(str(a.get("value", a.get("description"))) for a in p["args"])
                )
            elif e.get("method") == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"log: {p['entry']['text']} {p['entry'].get('url', '')}")
        return out

    def close(self) -> None:
        # Chromium's helper processes outlive its main one and write to the profile: end them all
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        os.close(self._to_chrome_w)
        os.close(self._from_chrome_r)
        for _ in range(50):
            try:
                self._profile.cleanup()
                return
            except OSError:  # a helper still exiting
                time.sleep(0.1)
        self._profile.cleanup()


def _load(page: Page, url: str, settle_s: float) -> None:
    target = page.send("Target.createTarget", url="about:blank")["targetId"]
    page.session = page.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        page.send(f"{domain}.enable")
    page.send("Page.navigate", url=url)
    page.wait_for("Page.loadEventFired", timeout=60)
    _settle(page, settle_s)


def _settle(page: Page, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:  # scripts that render after load, or after a click
        event = page._read(end - time.monotonic())
        if event:
            page.events.append(event)


def _evaluate(page: Page, expression: str, context: int | None = None):
    extra = {"contextId": context} if context else {}
    reply = page.send("Runtime.evaluate", expression=expression, returnByValue=True, **extra)
    if "exceptionDetails" in reply:
        raise RuntimeError(f"{expression[:80]}: {reply['exceptionDetails'].get('text')}")
    return reply["result"].get("value")


def open_page(url: str, screenshot: Path, settle_s: float = 3.0) -> list[str]:
    """Load ``url``, let it run ``settle_s``, save a PNG screenshot; return the errors seen."""
    page = Page(chromium())
    try:
        _load(page, url, settle_s)
        shot = page.send("Page.captureScreenshot", format="png")
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        return page.errors()
    finally:
        page.close()


CLICK_CATEGORY = """[...document.querySelectorAll('a')]
    .find(a => a.innerText.trim() === %s).click()"""
# a result row's first cell is its "table" label (figures leave it empty and name theirs in
# the next one)
CLICK_RESULT = """[...document.querySelectorAll('tr')]
    .find(r => r.cells.length > 1 && r.cells[0].innerText.trim() === %s)
    .querySelector('a[iconname=eye]').click()"""


def shown_result(url: str, category: str, label: str, settle_s: float = 2.0) -> tuple[str, list]:
    """Open a Snakemake report, click ``category`` in its menu and the eye of the table
    labelled ``label``, as a reader does; return the text the page then shows for it (the
    frame it opens, read through DevTools: a data: frame is another origin to the page's
    scripts) and the errors seen."""
    page = Page(chromium())
    try:
        _load(page, url, settle_s)
        _evaluate(page, CLICK_CATEGORY % json.dumps(category))
        _settle(page, 1.0)
        _evaluate(page, CLICK_RESULT % json.dumps(label))
        _settle(page, settle_s)
        frames = page.send("Page.getFrameTree")["frameTree"].get("childFrames", [])
        if not frames:
            return "", page.errors()
        context = page.send("Page.createIsolatedWorld", frameId=frames[0]["frame"]["id"])
        text = _evaluate(page, "document.body.innerText", context["executionContextId"])
        return text, page.errors()
    finally:
        page.close()
