"""test_admin_dashboard.py - the admin dashboard in headless Chromium

The daemon relays mail from a few loopback senders (some deliver, one gives
up, one is rejected), then Debian's chromium opens
http://127.0.0.1:PORT/?token=TOKEN with --virtual-time-budget so the
page's fetch of /api/stats and its drawing run before the DOM is dumped:
  - every chart's <svg> carries data-drawn and its shapes (slices, bars),
    the tables have rows for the groups;
  - the screenshot is a PNG of the window size;
  - Chromium logged no console message (--enable-logging=stderr --v=0
    prints them as ":CONSOLE(" lines; the page logs nothing itself, so any
    one is an error, an uncaught exception or a CSP violation).  A control
    page with a deliberate error proves the detector sees one;
  - the token works in the fragment too; with a wrong one or none the page
    says so and draws nothing.
Skipped, with the reason, when chromium is not installed.
"""

import os
import re
import shutil
import struct
import subprocess
import tempfile

import pytest

from daemon import Daemon
from peers import SmtpSink, need, free_port, SMTP_SINK
from test_admin import TOKEN, CLASSES, smtp_session

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(url, *extra, timeout=90):
    """Run headless Chromium on url; (stdout, stderr)."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; "
                    "tools/install-deps.sh does it)")
    prof = tempfile.mkdtemp(prefix="ms-chromium-")
    try:
        r = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--user-data-dir=" + prof,
             "--window-size=1200,900", "--virtual-time-budget=3000",
             "--enable-logging=stderr", "--v=0", *extra, url],
            capture_output=True, text=True, timeout=timeout)
        return r.stdout, r.stderr
    finally:
        shutil.rmtree(prof, ignore_errors=True)


def console_lines(stderr):
    """Console messages and uncaught errors in Chromium's log."""
    return [l for l in stderr.splitlines()
            if ":CONSOLE(" in l or "Uncaught" in l]


def svg(dom, ident):
    """The <svg id=ident ...>...</svg> element's text."""
    m = re.search(r'<svg id="%s"[^>]*>.*?</svg>' % ident, dom, re.S)
    assert m, "no svg %s in\n%s" % (ident, dom[:2000])
    return m.group(0)


def test_console_detector_sees_errors():
    """The control: a page that throws is caught by console_lines()."""
    d = tempfile.mkdtemp(prefix="ms-page-")
    page = os.path.join(d, "bad.html")
    with open(page, "w") as f:
        f.write("<!DOCTYPE html><title>x</title><script>"
                "null.boom();</script>")
    _, err = chromium("file://" + page, "--dump-dom")
    shutil.rmtree(d, ignore_errors=True)
    assert any("Uncaught" in l for l in console_lines(err)), err[-3000:]


@pytest.fixture
def busy_daemon():
    need(SMTP_SINK)
    port = free_port()
    with SmtpSink() as sink:
        with Daemon(backend=sink.address, config_text=CLASSES,
                    admin_listen="127.0.0.1:%d" % port, admin_token=TOKEN,
                    client_class_map="127.0.0.9/32=slow "
                    "127.0.0.10/32=hostile",
                    policy_thresholds="hostile=100") as d:
            for _ in range(3):
                smtp_session(d.port)
            smtp_session(d.port, source="127.0.0.9")
            smtp_session(d.port, source="127.0.0.11", quit_after="RCPT")
            smtp_session(d.port, source="127.0.0.10")
            d.wait_events("session", 6)
            d.admin_port = port
            yield d


def test_dashboard_draws_charts(busy_daemon):
    """The charts are drawn from /api/stats, with no console error."""
    url = "http://127.0.0.1:%d/?token=%s" % (busy_daemon.admin_port, TOKEN)
    dom, err = chromium(url, "--dump-dom")
    assert console_lines(err) == [], console_lines(err)
    assert "updated " in dom, dom[:3000]
    ok, bad = svg(dom, "chart-ok"), svg(dom, "chart-bad")
    rate, cls = svg(dom, "chart-rate"), svg(dom, "chart-class")
    # Senders that deliver: one OS (all loopback senders are Linux).
    assert 'data-drawn="1"' in ok and 'class="slice"' in ok
    # Senders that do not: the one that gave up, the rejected one.
    assert 'data-drawn="1"' in bad and 'class="slice"' in bad
    assert 'data-drawn="1"' in rate and rate.count('class="bar"') == 1
    # Classes normal, slow, hostile: one stacked bar segment or more each.
    assert 'data-drawn="3"' in cls, cls
    assert cls.count('class="bar"') >= 3
    for label in ("normal", "slow", "hostile"):
        assert ">%s<" % label in cls
    assert re.search(r'<table id="table-os">.*?</table>', dom, re.S)
    assert len(re.findall(r"<tr>", dom)) >= 2 + 1 + 3
    assert "66.7%" in dom                   # 4 of 6 messages delivered


def test_dashboard_screenshot(busy_daemon, tmp_path):
    """A screenshot of the window size is written."""
    url = "http://127.0.0.1:%d/?token=%s" % (busy_daemon.admin_port, TOKEN)
    shot = tmp_path / "dashboard.png"
    _, err = chromium(url, "--screenshot=%s" % shot)
    assert console_lines(err) == [], console_lines(err)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    assert (w, h) == (1200, 900), (w, h)
    assert len(data) > 20000, len(data)      # not a blank page


def test_dashboard_token_in_fragment(busy_daemon):
    """#token= never reaches the server, and works the same."""
    url = "http://127.0.0.1:%d/#token=%s" % (busy_daemon.admin_port, TOKEN)
    dom, err = chromium(url, "--dump-dom")
    assert console_lines(err) == [], console_lines(err)
    assert 'data-drawn="3"' in svg(dom, "chart-class")


def test_dashboard_wrong_token(busy_daemon):
    """With a wrong token or none the page says so and draws nothing; the
    only console line is Chromium's note on the 401 itself."""
    for url in ("http://127.0.0.1:%d/?token=wrong",
                "http://127.0.0.1:%d/"):
        dom, err = chromium(url % busy_daemon.admin_port, "--dump-dom")
        assert "unauthorized: open this page as /#token=" in dom, dom[:2000]
        for chart in ("chart-ok", "chart-bad", "chart-rate", "chart-class"):
            assert "data-drawn" not in svg(dom, chart)
        lines = console_lines(err)
        assert all("401" in l for l in lines), lines
