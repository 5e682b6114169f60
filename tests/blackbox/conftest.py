"""conftest.py - shared pytest fixtures: a backend and a daemon in front"""

import pytest

from daemon import Daemon
from peers import SmtpSink, need, SMTP_SINK


@pytest.fixture
def sink():
    need(SMTP_SINK)
    with SmtpSink() as s:
        yield s


@pytest.fixture
def relay(sink):
    """smtp-sink behind a daemon with default classes (no delays)."""
    with Daemon(backend=(sink.host, sink.port)) as d:
        d.sink = sink
        yield d
