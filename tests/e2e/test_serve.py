"""`breeze serve` in a real browser: headless Chromium opens the page, types a question, reads
the streamed answer from the page's terminal and takes a screenshot; Ctrl+C stops the server.

The page draws the terminal with xterm.js on a canvas; the text is read from the terminal's
buffer through xterm's public API, the terminal being found on the page's heap with the
DevTools protocol (the page keeps no global reference to it)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from selenium import webdriver

BREEZE = str(Path(sys.executable).with_name("breeze"))
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
QUESTION = "What is the capital of France?"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            return True
    except ConnectionRefusedError:
        return False


def wait_for(condition, what: str, within: float = 120.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
def server(env, tmp_path):
    port = free_port()
    # A session of its own: Ctrl+C in a terminal goes to the whole group, app processes too.
    process = subprocess.Popen([BREEZE, "serve", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line, line + process.stderr.read()
        wait_for(lambda: listening(port), "the server listening", within=30)
        yield process, f"http://127.0.0.1:{port}/"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()  # closes the pipes


@pytest.fixture
def browser(tmp_path):
    for path in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(path), f"{path} is missing: run `make test` (scripts/setup.sh test)"
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,800",
                 f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


FIND_TERMINAL = """function() {
  for (const object of this) {
    try {
      if (object && typeof object.write === 'function' && object.buffer
          && object.buffer.active && typeof object.buffer.active.getLine === 'function') {
        window.breezeTerminal = object;
        return true;
      }
    } catch (error) {}
  }
  return false;
}"""

READ_TERMINAL = """
const terminal = window.breezeTerminal, buffer = terminal.buffer.active, lines = [];
for (let y = 0; y < terminal.rows; y++) {
  const line = buffer.getLine(buffer.viewportY + y);
  lines.push(line ? line.translateToString(true) : '');
}
return lines.join('\\n');
"""


def find_terminal(driver) -> bool:
    """Point `window.breezeTerminal` at the page's xterm.js terminal, once it exists."""
    cdp = driver.execute_cdp_cmd
    prototype = cdp("Runtime.evaluate", {"expression": "Object.prototype"})["result"]
    objects = cdp("Runtime.queryObjects", {"prototypeObjectId": prototype["objectId"]})
    found = cdp("Runtime.callFunctionOn", {"objectId": objects["objects"]["objectId"],
                                           "functionDeclaration": FIND_TERMINAL,
                                           "returnByValue": True})
    return bool(found["result"].get("value"))


def page_text(driver) -> str:
    return driver.execute_script(READ_TERMINAL)


def status_line(text: str) -> str:
    return next((line for line in reversed(text.splitlines()) if "│" in line), "")


def words(text: str) -> list[str]:
    return "".join(c if c.isalnum() else " " for c in text).split()


def png_pixels(data: bytes) -> bytes:
    """The decompressed image data of a PNG (its filter bytes included)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, idat = 8, b""
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind = data[at + 4:at + 8]
        if kind == b"IDAT":
            idat += data[at + 8:at + 8 + length]
        at += 12 + length
    return zlib.decompress(idat)


@pytest.mark.slow
def test_a_browser_holds_a_streamed_conversation(server, browser, env, tmp_path):
    process, url = server
    browser.get(url)
    wait_for(lambda: "-first-byte" in browser.execute_script("return document.body.className"),
             "the app's first bytes on the page")
    wait_for(lambda: find_terminal(browser), "the page's terminal")
    wait_for(lambda: "ready" in status_line(page_text(browser)), "the model loaded")

    prompt = browser.find_element("css selector", ".xterm-helper-textarea")
    prompt.send_keys(QUESTION + "\n")
    wait_for(lambda: "You" in page_text(browser) and QUESTION in page_text(browser),
             "the question in the chat")
    seen: list[str] = []

    def answered() -> bool:
        text = page_text(browser)
        seen.append(text)
        return "Breeze" in text and "tok/s" in status_line(text) and \
            "ready" in status_line(text)

    wait_for(answered, "the answer, streamed to its end")

    shot = tmp_path / "breeze-serve.png"
    assert browser.save_screenshot(str(shot))
    pixels = png_pixels(shot.read_bytes())
    assert len(set(pixels)) > 16, "the screenshot is blank"

    os.killpg(process.pid, signal.SIGINT)  # Ctrl+C in the terminal that runs it
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "Traceback" not in out + err and "Exception" not in out + err, out + err
    assert "stopped serving" in out

    # The page showed the reply the app saved, to its end (the chat keeps its end in view).
    database = Path(env["XDG_DATA_HOME"]) / "breeze" / "sessions.sqlite3"
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT role, content, state FROM messages ORDER BY id").fetchall()
    db.close()
    assert [(role, state) for role, _, state in rows] == [("user", "complete"),
                                                          ("assistant", "complete")]
    assert rows[0][1] == QUESTION
    reply_end = words(rows[1][1])[-4:]
    assert reply_end, "the reply is empty"
    shown = words(seen[-1].split("Breeze", 1)[1])
    assert any(shown[i:i + len(reply_end)] == reply_end for i in range(len(shown))), (
        reply_end, seen[-1])


def test_serve_will_not_listen_beyond_this_machine_without_public(env):
    result = subprocess.run([BREEZE, "serve", "--host", "0.0.0.0"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("E400: --host 0.0.0.0 would let other machines reach")
    assert "--public" in result.stderr
    assert result.stdout == ""


def test_serve_reports_a_port_in_use(env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([BREEZE, "serve", "--port", str(port)], env=env,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith(f"E501: cannot listen on 127.0.0.1:{port}"), result.stderr
    assert "Traceback" not in result.stderr


def test_serve_help_tells_what_public_means(env):
    result = subprocess.run([BREEZE, "serve", "--help"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    assert "--public" in result.stdout and "127.0.0.1" in result.stdout


def test_serve_public_warns_and_listens_everywhere(env):
    port = free_port()
    process = subprocess.Popen([BREEZE, "serve", "--host", "0.0.0.0", "--public", "--port",
                                str(port)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f":{port} (Ctrl+C stops it)" in line
        wait_for(lambda: listening(port), "the server listening", within=30)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert process.returncode == 0
    assert err.startswith(f"breeze: warning: listening on 0.0.0.0:{port} for every machine")
    assert "no password" in err
