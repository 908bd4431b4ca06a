"""Headless Chromium for the report tests: one-shot runs (``--dump-dom``, ``--screenshot``), a
small DevTools-protocol client over ``--remote-debugging-pipe`` for clicking and typing in a page
(standard library only: the pipe is fds 3 and 4, one JSON message per NUL-terminated frame), and
a PNG reader (zlib and the five scanline filters, no imaging library) for screenshots."""

import base64
import json
import os
import shutil
import struct
import subprocess
import time
import zlib

import pytest

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")


def chromium():
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("headless Chromium is missing; run `make apt`")
    return binary


def browse(page, profile, *action):
    """Run Chromium on *page* with a throw-away profile; return its stdout."""
    argv = [chromium()] + list(CHROMIUM_FLAGS) + ["--user-data-dir={0}".format(profile)] + list(action)
    done = subprocess.run(argv + [page.as_uri()], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Browser:
    """A Chromium driven over the DevTools protocol through a pipe: no port, nothing listening."""

    def __init__(self, profile, width=1280, height=1000):
        ours_in, chrome_out = os.pipe()   # Chromium writes fd 4, we read
        chrome_in, ours_out = os.pipe()   # we write, Chromium reads fd 3
        argv = [chromium()] + list(CHROMIUM_FLAGS) + [
            "--user-data-dir={0}".format(profile), "--remote-debugging-pipe",
            "--window-size={0},{1}".format(width, height), "about:blank"]

        def wire():
            os.dup2(chrome_in, 3)
            os.dup2(chrome_out, 4)

        # preexec_fn runs before the child closes every other fd: keep 3 and 4 open.
        self.process = subprocess.Popen(argv, preexec_fn=wire, pass_fds=(3, 4),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(chrome_in)
        os.close(chrome_out)
        self.reader, self.writer = os.fdopen(ours_in, "rb"), os.fdopen(ours_out, "wb")
        self.buffer = b""
        self.next_id = 0
        self.session = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.call("Browser.close", session=False)
        except (OSError, RuntimeError, ValueError):
            pass
        for stream in (self.writer, self.reader):
            stream.close()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _message(self):
        while b"\0" not in self.buffer:
            chunk = os.read(self.reader.fileno(), 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        frame, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(frame)

    def call(self, method, session=True, **params):
        """Send one command (to the page's session unless *session* is false) and return its result."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session and self.session:
            message["sessionId"] = self.session
        self.writer.write(json.dumps(message).encode("utf-8") + b"\0")
        self.writer.flush()
        while True:
            reply = self._message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply["result"]

    def open(self, url, timeout=60):
        """Open *url* in a new page and wait until it has loaded."""
        target = self.call("Target.createTarget", session=False, url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", session=False, targetId=target, flatten=True)["sessionId"]
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while self.evaluate("location.href + ' ' + document.readyState") != url + " complete":
            assert time.monotonic() < deadline, "page did not load"
            time.sleep(0.05)

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (JSON-serialisable values)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(json.dumps(result["exceptionDetails"])[:2000])
        return result["result"].get("value")

    def screenshot(self):
        """The viewport as PNG bytes."""
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])


def _paeth(left, up, upper_left):
    estimate = left + up - upper_left
    dist_left, dist_up, dist_ul = abs(estimate - left), abs(estimate - up), abs(estimate - upper_left)
    if dist_left <= dist_up and dist_left <= dist_ul:
        return left
    return up if dist_up <= dist_ul else upper_left


def png_pixels(data):
    """(width, height, set of distinct RGB(A) tuples) of an 8-bit RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat, header = 8, [], None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        offset += 12 + length
    width, height, depth, colour_type, _comp, _filter, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    previous = bytearray(stride)
    colours = set()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            upper_left = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + previous[i]) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
            elif kind == 4:
                line[i] = (line[i] + _paeth(left, previous[i], upper_left)) & 0xFF
        colours.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp))
        previous = line
    return width, height, colours


def rgb(hex_colour):
    return bytes.fromhex(hex_colour.lstrip("#"))
