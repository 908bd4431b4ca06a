"""The fleet report's HTML page, rendered by a real browser from real facts.

The report playbook runs against the shared test fleet (read-only) plus one inventory host that
nobody answers for; headless Chromium then takes a screenshot of the page (decoded here with a
small PNG reader - zlib and the five scanline filters, no imaging library) and dumps the DOM.
"""

import json
import shutil
import struct
import subprocess
import zlib

import pytest

from ansible_collections.pkgcache.fleet.plugins.module_utils._text import human_bytes
from ansible_collections.pkgcache.fleet.plugins.plugin_utils._render import BAR_COLOURS

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")
WINDOW = (1000, 1000)
GHOST = "ghost"


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


@pytest.fixture(scope="module")
def report_dir(fleet, tmp_path_factory):
    """Run the report playbook once: the fleet plus a ghost host on a loopback address of the
    fleet's own subnet where nothing listens (connection refused, never leaves the machine)."""
    work = tmp_path_factory.mktemp("report-html")
    net = fleet.address_of(fleet.hosts[0]).rsplit(".", 1)[0]
    ghost = work / "ghost.ini"
    ghost.write_text("[fleet]\n{0} ansible_host={1}.250\n".format(GHOST, net))
    out = work / "report"
    done = fleet.playbook("-i", str(ghost), "pkgcache.fleet.report", "-e", "pkgcache_report_dir={0}".format(out))
    # rc 4: a host was unreachable - the ghost; the report must be written regardless.
    assert done.returncode == 4, done.stdout[-3000:] + done.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def report(report_dir):
    return json.loads((report_dir / "fleet-report.json").read_text())


def test_report_covers_fleet_and_names_the_unreachable_host(fleet, report):
    statuses = dict((host["host"], host["status"]) for host in report["hosts"])
    assert statuses == dict([(name, "ok") for name in fleet.hosts] + [(GHOST, "unreachable")])
    ghost = [host for host in report["hosts"] if host["host"] == GHOST][0]
    assert "refused" in ghost["error"].lower()
    assert all(host["cache_bytes"] > 0 for host in report["hosts"] if host["status"] == "ok")


def test_screenshot_shows_the_page_and_its_bars(report_dir, tmp_path):
    shot = tmp_path / "page.png"
    browse(report_dir / "fleet-report.html", tmp_path / "profile",
           "--screenshot={0}".format(shot), "--window-size={0},{1}".format(*WINDOW))
    width, height, colours = png_pixels(shot.read_bytes())
    assert (width, height) == WINDOW
    assert len(colours) > 50, "page looks blank: {0} colour(s)".format(len(colours))
    for label in ("cache", "reclaimable"):
        assert rgb(BAR_COLOURS[label]) in colours, "no {0} bar drawn".format(label)


def test_dom_carries_every_host_and_the_totals(fleet, report, report_dir, tmp_path):
    dom = browse(report_dir / "fleet-report.html", tmp_path / "profile", "--dump-dom")
    for name in fleet.hosts + [GHOST]:
        assert 'id="host-{0}"'.format(name) in dom
    assert 'data-status="unreachable"' in dom
    assert human_bytes(report["totals"]["cache_bytes"]) in dom
    assert human_bytes(report["totals"]["reclaimable_bytes"]) in dom
    assert dom.count("<svg") == len(fleet.hosts)


def _chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_png_reader_decodes_filtered_rows():
    """A 2x2 RGB image: row 0 unfiltered, row 1 with the Up filter (stored as deltas)."""
    top, bottom = bytes([10, 20, 30, 200, 100, 50]), bytes([15, 20, 25, 200, 101, 40])
    up = bytes((b - a) & 0xFF for a, b in zip(top, bottom))
    raw = b"\x00" + top + b"\x02" + up
    png = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
           + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))
    assert png_pixels(png) == (2, 2, {top[:3], top[3:], bottom[:3], bottom[3:]})
    with pytest.raises(AssertionError):
        png_pixels(b"GIF89a")
