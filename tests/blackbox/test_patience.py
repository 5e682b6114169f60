"""test_patience.py - learned patience sets a first contact's banner

Class normal with banner_patience=1s and patience_min_evidence=3: four
clients from 127.0.1.0/24 take the banner, wait about 1.5 s and hang up
(abandoned: bad senders that gave up).  Their prefix has then learned
that bad senders there give up after about 1.5 s, so a first contact from
the same /24 waits past that (p90 + 1 s) with a reason that says so.  A
sender whose address has delivered before is no first contact and gets
the class's banner_delay (0) at once; so does a mapped client.
"""

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import Daemon  # noqa: E402
from peers import SMTP_SINK, RawSmtp, SmtpSink, need  # noqa: E402

CONF = ("class_normal = banner_delay=0 banner_patience=1s reply_delay=0 "
        "action=relay\n"
        "class_trusted = banner_delay=0 reply_delay=0 action=relay\n")


@pytest.fixture
def sink():
    need(SMTP_SINK)
    with SmtpSink() as s:
        yield s


def banner_time(port, source):
    t0 = time.monotonic()
    with RawSmtp("127.0.0.1", port, source=source) as c:
        c.expect(220, timeout=20)
        dt = time.monotonic() - t0
        c.cmd("QUIT", 221)
    return dt


def test_first_contact_waits_past_learned_patience(sink):
    with Daemon(backend=sink.address, config_text=CONF,
                default_class="normal", violation_class="",
                patience_min_evidence=3,
                client_class_map="127.0.3.0/24=trusted") as d:
        # A returning sender: it delivers once, so its address is known.
        with RawSmtp("127.0.0.1", d.port, source="127.0.2.9") as c:
            c.expect(220)
            c.cmd("EHLO good.test", 250)
            c.cmd("MAIL FROM:<a@good.test>", 250)
            c.cmd("RCPT TO:<b@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: s\r\n\r\nhi\r\n.\r\n")
            c.expect(250, timeout=5)
            c.cmd("QUIT", 221)
        # Four bad senders that give up after about 1.5 s.
        for i in range(4):
            with RawSmtp("127.0.0.1", d.port,
                         source="127.0.1.%d" % (10 + i)) as c:
                c.expect(220, timeout=5)
                time.sleep(1.5)
        time.sleep(0.3)
        first = banner_time(d.port, "127.0.1.50")
        assert 2.2 <= first < 5, first
        assert banner_time(d.port, "127.0.2.9") < 0.5
        assert banner_time(d.port, "127.0.3.7") < 0.5
        d.stop()
        sess = [s for s in d.events("session")
                if s["client_ip"] == "127.0.1.50"]
        assert len(sess) == 1
        why = [r for r in sess[0]["reasons"] if r.startswith("patience ")]
        assert len(why) == 1, sess[0]["reasons"]
        assert " p90 " in why[0] and "(n=" in why[0], why
        assert "-> banner" in why[0], why
        for ip in ("127.0.2.9", "127.0.3.7"):
            for s in d.events("session"):
                if s["client_ip"] == ip:
                    assert not any(r.startswith("patience ")
                                   for r in s["reasons"]), s
