"""`lsdt-tui --serve` in a real browser: the page loads in headless Chromium (Debian's package),
the app starts behind it and the Plan tab computes its answer (issue 17).

The browser is driven over the Chrome DevTools Protocol (aiohttp's websocket client: aiohttp comes
with textual-serve). The terminal draws on a canvas, so the test reads what the app sent to the
page: a script installed before the page's own wraps WebSocket and keeps the text of every
message. A screenshot of the page is written to assets/tui-browser.png when LSDT_ASSETS=1."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run")
# Kept per page: the text of every websocket message the app sends (ANSI escapes and all).
CAPTURE = """
window.__lsdt = [];
const Native = window.WebSocket;
window.WebSocket = function (...args) {
  const ws = new Native(...args);
  ws.addEventListener('message', async (e) => {
    const d = e.data;
    window.__lsdt.push(typeof d === 'string' ? d : new TextDecoder().decode(d instanceof Blob ? await d.arrayBuffer() : d));
  });
  return ws;
};
window.WebSocket.prototype = Native.prototype;
Object.assign(window.WebSocket, Native);
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\\u001b\[[0-9;?]*[A-Za-z]")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listening on {port}")


class Cdp:
    def __init__(self, ws) -> None:
        self.ws, self.next_id = ws, 0

    async def call(self, method: str, **params):
        self.next_id += 1
        my_id = self.next_id
        await self.ws.send_json({"id": my_id, "method": method, "params": params})
        while True:
            msg = json.loads((await self.ws.receive()).data)
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})


async def drive(page_url: str, debug_port: int, shot: Path | None) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        targets = await (await http.get(f"http://127.0.0.1:{debug_port}/json/list")).json()
        page = next(t for t in targets if t["type"] == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            cdp = Cdp(ws)
            await cdp.call("Page.enable")
            await cdp.call("Page.addScriptToEvaluateOnNewDocument", source=CAPTURE)
            await cdp.call("Page.navigate", url=page_url)
            text, deadline = "", time.monotonic() + 90
            while time.monotonic() < deadline:
                r = await cdp.call("Runtime.evaluate", expression="(window.__lsdt || []).join('')", returnByValue=True)
                text = ANSI.sub("", r["result"].get("value") or "")
                if "FEASIBLE" in text and "llama-13b" in text:
                    break
                await asyncio.sleep(0.5)
            if shot is not None:
                await asyncio.sleep(1.0)  # the canvas paints what arrived
                png = await cdp.call("Page.captureScreenshot", format="png")
                shot.write_bytes(base64.b64decode(png["data"]))
            return text


def test_served_app_loads_in_chromium_and_computes(tmp_path):
    port, debug_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen([sys.executable, "-m", "app.main", "--serve", "--port", str(port), "--plans-dir", str(tmp_path / "plans")],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    browser = None
    try:
        wait_port(port)
        browser = subprocess.Popen([shutil.which("chromium"), *CHROMIUM_FLAGS, f"--remote-debugging-port={debug_port}",
                                    f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1400,860", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(debug_port)
        shot = REPO / "assets" / "tui-browser.png" if os.environ.get("LSDT_ASSETS") else tmp_path / "browser.png"
        text = asyncio.run(drive(f"http://localhost:{port}/", debug_port, shot))
        assert "FEASIBLE" in text and "llama-13b" in text, text[-2000:]
        assert "Traceback" not in text
        assert shot.stat().st_size > 10_000  # a page with the app drawn, not a blank one
    finally:
        for proc in (browser, server):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, 15)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)


def test_serve_refuses_a_port_in_use(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "app.main", "--serve", "--port", str(port)], capture_output=True,
                             text=True, timeout=60, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 2 and out.stderr.startswith("lsdt-tui: error: --port ") and out.stderr.count("\n") == 1
