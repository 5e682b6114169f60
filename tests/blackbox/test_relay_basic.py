"""test_relay_basic.py - a message goes through mailshaper to smtp-sink"""

from peers import swaks, RawSmtp


def test_swaks_delivers_through_relay(relay):
    rc, out = swaks("127.0.0.1", relay.port, to="rcpt@example.test")
    assert rc == 0, out
    msgs = relay.sink.wait_messages(1)
    assert len(msgs) == 1
    assert b"This is a test mailing" in msgs[0].data
    relay.stop()
    (m,) = relay.events("message")
    assert m["outcome"] == "delivered"
    assert m["reply"].startswith("250")
    (s,) = relay.events("session")
    assert s["outcome"] == "completed"
    assert s["class"] == "normal"
    assert s["fp"] is not None and s["fp"]["raw_sig"].startswith("4:")
