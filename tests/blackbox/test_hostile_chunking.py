"""test_hostile_chunking.py - the hostile BDAT patterns with a backend that
offers CHUNKING (issue 10)

test_hostile_suite.py runs in front of smtp-sink, which offers no
CHUNKING, so there every BDAT chunk is refused and discarded.  Here one
daemon, configured the same way (hostile_harness.Hostile), sits in front
of a private Postfix smtpd (PostfixSmtpd in xclient mode: CHUNKING, SIZE,
every message put on hold, message_size_limit 64 MB so that the daemon's
8 MB is the limit that bites), so chunks are accepted, spooled in memory,
spilled past spool_memory (4m) and delivered.  Each case of
hostile_patterns.CHUNKING_PATTERNS is followed by the main suite's checks:
(a) a legitimate delivery, (c) no session, backend connection or
descriptor left after a bounded wait, (b) RSS within 110% + 2 MiB of its
level before the case (skipped under ASan).
Needs root (Postfix's master); skipped otherwise.
"""

import os
import sys
import warnings

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import POSTFIX, is_root, need  # noqa: E402
import hostile_patterns as hp  # noqa: E402
from hostile_harness import ASAN, OPENSSL, Hostile, run_case  # noqa: E402


@pytest.fixture(scope="module")
def hostile():
    need(POSTFIX, OPENSSL)
    if not is_root():
        pytest.skip("real Postfix needs root")
    h = Hostile("postfix")
    if ASAN:
        warnings.warn("hostile chunking suite: RSS checks skipped: ASan's "
                      "quarantine and shadow memory make RSS meaningless")
    yield h
    h.stop()


def test_backend_offers_chunking(hostile):
    """The point of this module: the daemon offers CHUNKING here."""
    c = hp.connect(hostile.t)
    try:
        c.expect(220)
        assert "CHUNKING" in c.cmd("EHLO check.chunking", 250)
        c.cmd("QUIT", 221)
    finally:
        c.close()


@pytest.mark.parametrize("pat", hp.CHUNKING_PATTERNS,
                         ids=[p.name for p in hp.CHUNKING_PATTERNS])
def test_hostile_chunking(hostile, pat):
    """One BDAT attack, then the main suite's checks."""
    run_case(hostile, pat)
