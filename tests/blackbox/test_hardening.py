"""test_hardening.py - hostile clients and hostile file systems (issue 10,
items 11-13): the daemon must not crash, bloat or wedge.

Admin listener (item 11):
  - a client sending its request headers a byte a second (never idle long
    enough for evhttp's idle timeout) is closed at the request deadline with
    408; so is an SMTP client waiting for a banner on the admin port, and an
    idle keep-alive connection after its reply; keep-alive still works;
  - 200 idle connections: all beyond the cap (64) are closed at once with
    503 and a log line, and once the deadline has cleared the idle ones a
    normal request is served; SMTP commands get 400 at once.
Files (items 12, 13):
  - an event log path that is a symbolic link is refused at start-up with a
    clear error, and on SIGUSR1 the old file is kept; the link's target is
    never written;
  - the admin unix socket's mode is set without chmod(2) on its path: the
    path swapped for a symbolic link while bind(2) is held (strace delays
    it) leaves the link's target's mode alone;
  - with user = nobody the event log's directory and file belong to nobody,
    so SIGUSR1 after a rename writes a new file;
  - admin_token_file: the token from a file, re-read on SIGHUP; a token file
    the dropped user cannot read keeps the old token, with a warning;
    admin_token and admin_token_file together are a configuration error.
Process (issue 10): no_new_privs is set after start-up.
"""

import http.client
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest

from daemon import Daemon, BINARY, check_config
from peers import free_port, is_root, need, RawSmtp, SmtpSink, SMTP_SINK

TOKEN = "test-token-0123456789abcdef"
DEADLINE = 10           # ADM_REQ_DEADLINE in src/admin/admin.c
CAP = 64                # ADM_CONNS_MAX


def http_get(port, target="/metrics", token=TOKEN, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {"Authorization": "Bearer " + token} if token else {}
        c.request("GET", target, headers=h)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def metric(port, name):
    st, body = http_get(port)
    assert st == 200
    m = re.search(r"^%s (\S+)$" % re.escape(name), body.decode(), re.M)
    return float(m.group(1)) if m else None


def wait_log(d, text, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if text in d.log():
            return True
        time.sleep(0.05)
    return text in d.log()


@pytest.fixture
def admin():
    port = free_port()
    with Daemon(admin_listen="127.0.0.1:%d" % port,
                admin_token=TOKEN) as d:
        d.admin_port = port
        yield d


# ------------------------------------------------------------ item 11

def _read_until_close(s, limit):
    """Bytes until EOF or reset; (data, seconds, closed)."""
    t0 = time.time()
    data = b""
    s.settimeout(0.5)
    while time.time() - t0 < limit:
        try:
            c = s.recv(4096)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return data, time.time() - t0, True
        if not c:
            return data, time.time() - t0, True
        data += c
    return data, time.time() - t0, False


def test_request_deadline(admin):
    """Slow headers, a banner-waiting SMTP client and an idle keep-alive
    connection are all closed at the deadline with 408; keep-alive works."""
    port = admin.admin_port
    results = {}

    def slow_headers():
        s = socket.create_connection(("127.0.0.1", port))
        t0 = time.time()
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        s.settimeout(0.2)
        data, closed = b"", False
        # One header byte a second: never idle for evhttp's 10 s timeout.
        while time.time() - t0 < 2 * DEADLINE + 5:
            try:
                s.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            try:
                c = s.recv(4096)
                if not c:
                    closed = True
                    break
                data += c
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = True
                break
            time.sleep(0.8)
        results["slow"] = (data, time.time() - t0, closed)
        s.close()

    def smtp_client():
        s = socket.create_connection(("127.0.0.1", port))
        results["smtp"] = _read_until_close(s, 2 * DEADLINE + 5)
        s.close()

    def keepalive():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(3):
            c.request("GET", "/api/stats",
                      headers={"Authorization": "Bearer " + TOKEN})
            r = c.getresponse()
            r.read()
            assert r.status == 200
        results["ka"] = _read_until_close(c.sock, 2 * DEADLINE + 5)
        c.close()

    threads = [threading.Thread(target=f)
               for f in (slow_headers, smtp_client, keepalive)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(3 * DEADLINE)
    for name in ("slow", "smtp", "ka"):
        data, secs, closed = results[name]
        assert closed, (name, "still open after %.1fs" % secs)
        assert secs <= DEADLINE + 3, (name, secs)
        assert data.startswith(b"HTTP/1.1 408 "), (name, data)
    assert metric(port, "mailshaper_admin_requests_timed_out_total") >= 3
    assert "no complete request within" in admin.log()
    assert admin.proc.poll() is None


def test_smtp_commands_on_admin_port(admin):
    """SMTP talk on the admin port gets a 4xx at once and is closed."""
    for line in (b"EHLO client.test\r\n", b"HELO x\r\n", b"QUIT\r\n"):
        s = socket.create_connection(("127.0.0.1", admin.admin_port))
        s.sendall(line)
        data, secs, closed = _read_until_close(s, 5)
        s.close()
        assert closed and secs < 2, (line, secs)
        assert re.match(rb"HTTP/1\.1 4\d\d ", data), (line, data)


def test_connection_cap(admin):
    """200 idle connections: at most CAP stay open, the rest get 503 at
    once, with a log line; after the deadline a request is served."""
    port = admin.admin_port
    socks = [socket.create_connection(("127.0.0.1", port))
             for _ in range(200)]
    t0 = time.time()
    time.sleep(1.0)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            c = s.recv(4096)
            if c == b"" or c.startswith(b"HTTP/1.1 503 "):
                closed += 1
        except BlockingIOError:
            pass
        except ConnectionResetError:
            closed += 1
    assert closed >= 200 - CAP, closed
    assert wait_log(admin, "connections open, the limit; closed")
    # The idle ones hold the cap until the deadline; then it is served.
    served = None
    while time.time() - t0 < DEADLINE + 5:
        try:
            st, _ = http_get(port, timeout=2)
            if st == 200:
                served = time.time() - t0
                break
        except (ConnectionError, OSError, http.client.HTTPException):
            pass
        time.sleep(0.3)
    assert served is not None, "no request served after the deadline"
    # Not before: the cap held while the idle connections were open.
    assert served >= DEADLINE - 1.5, served
    assert metric(port, "mailshaper_admin_connections") <= CAP
    assert metric(port, "mailshaper_admin_connections_refused_total") >= \
        200 - CAP
    for s in socks:
        s.close()
    # Records go when the connections do: the gauge comes back down.
    end = time.time() + 5
    while time.time() < end and \
            metric(port, "mailshaper_admin_connections") > 1:
        time.sleep(0.1)
    assert metric(port, "mailshaper_admin_connections") == 1
    fds = len(os.listdir("/proc/%d/fd" % admin.proc.pid))
    assert fds < 40, fds


# ------------------------------------------------------------ item 13

def test_eventlog_symlink_refused(tmp_path):
    """An event log path that is a symbolic link: a clear start-up error,
    and the target is not touched."""
    target = tmp_path / "target"
    target.write_text("precious\n")
    link = tmp_path / "events.jsonl"
    link.symlink_to(target)
    d = Daemon(eventlog=str(link))
    with pytest.raises(RuntimeError) as e:
        d.start()
    d.stop()
    assert "is a symbolic link" in str(e.value), str(e.value)
    assert target.read_text() == "precious\n"
    d.cleanup()


def test_eventlog_reopen_symlink_kept_old(tmp_path):
    """SIGUSR1 with the path swapped for a symbolic link: a warning, the
    records go on to the old file, the target is not written."""
    need(SMTP_SINK)
    target = tmp_path / "target"
    target.write_text("precious\n")
    with SmtpSink() as sink, Daemon(backend=sink.address) as d:
        os.rename(d.eventlog, d.eventlog + ".1")
        os.symlink(target, d.eventlog)
        d.signal(signal.SIGUSR1)
        assert wait_log(d, "is a symbolic link"), d.log()
        c = RawSmtp("127.0.0.1", d.port)
        c.expect(220)
        c.cmd("QUIT", 221)
        c.close()
        d.stop()
        with open(d.eventlog + ".1") as f:
            assert '"type":"session"' in f.read().replace(" ", "")
    assert target.read_text() == "precious\n"


def test_admin_socket_mode_without_chmod(tmp_path):
    """The socket path swapped for a symbolic link between bind(2) and the
    daemon's next step: the link's target keeps its mode."""
    if shutil.which("strace") is None:
        pytest.skip("needs strace")
    target = tmp_path / "target"
    target.write_text("secret\n")
    os.chmod(target, 0o600)
    sock = tmp_path / "admin.sock"
    d = Daemon(admin_listen="unix:%s" % sock)
    log = open(d.logfile, "w")
    # Every bind(2) returns 1.5 s late: time to swap the new socket file.
    proc = subprocess.Popen(
        ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=bind",
         "-e", "inject=bind:delay_exit=1500000",
         BINARY, "-f", "-v", "-c", d.config],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        end = time.time() + 20
        while time.time() < end and not sock.exists():
            time.sleep(0.01)
        assert sock.exists(), d.log()
        assert stat.S_ISSOCK(os.lstat(sock).st_mode)
        assert stat.S_IMODE(os.lstat(sock).st_mode) == 0o660
        os.unlink(sock)
        os.symlink(target, sock)
        end = time.time() + 20
        while time.time() < end and "mailshaper started" not in d.log():
            assert proc.poll() is None, d.log()
            time.sleep(0.05)
        assert "mailshaper started" in d.log(), d.log()
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    finally:
        # strace's child is the daemon; stopping it ends strace too.
        try:
            with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) \
                    as f:
                for pid in f.read().split():
                    os.kill(int(pid), signal.SIGTERM)
        except OSError:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        d.cleanup()


# ------------------------------------------------------------ item 12

def _smtp_quit(port):
    c = RawSmtp("127.0.0.1", port)
    c.expect(220)
    c.cmd("EHLO client.test", 250)
    c.cmd("QUIT", 221)
    c.close()


def _sessions(path):
    try:
        with open(path) as f:
            return f.read().replace(" ", "").count('"type":"session"')
    except FileNotFoundError:
        return 0


def _wait(pred, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def test_user_nobody_reopens_eventlog():
    """user = nobody: the event log's directory (made by the daemon) and
    file are nobody's, so a rename and SIGUSR1 give a new file that the
    next session is written to."""
    if not is_root():
        pytest.skip("needs root to drop privileges")
    need(SMTP_SINK)
    nobody = pwd.getpwnam("nobody")
    with SmtpSink() as sink:
        d = Daemon(backend=sink.address, user="nobody")
        # In a directory that does not exist yet: the daemon makes it.
        d.eventlog = os.path.join(d.dir, "log", "events.jsonl")
        d.params["eventlog"] = d.eventlog
        with open(d.config, "w") as f:
            for k, v in d.params.items():
                f.write("%s = %s\n" % (k, v))
        with d:
            assert wait_log(d, "running as nobody"), d.log()
            st = os.stat(os.path.dirname(d.eventlog))
            assert st.st_uid == nobody.pw_uid, st
            assert os.stat(d.eventlog).st_uid == nobody.pw_uid
            _smtp_quit(d.port)
            assert _wait(lambda: _sessions(d.eventlog) == 1), d.log()
            os.rename(d.eventlog, d.eventlog + ".1")
            d.signal(signal.SIGUSR1)
            assert wait_log(d, "reopening the event log")
            assert _wait(lambda: os.path.exists(d.eventlog)), d.log()
            _smtp_quit(d.port)
            d.stop()
            assert "writing on to the old file" not in d.log(), d.log()
            assert _sessions(d.eventlog) == 1, d.log()
            assert _sessions(d.eventlog + ".1") == 1
            assert os.stat(d.eventlog).st_uid == nobody.pw_uid


TOKEN2 = "second-token-abcdefghijklmnop"


def _token_file(dirpath, token, mode=0o600):
    path = os.path.join(dirpath, "admin.token")
    with open(path, "w") as f:
        f.write("  %s  \n# the rest is ignored\n" % token)
    os.chmod(path, mode)
    return path


def _status(port, token):
    return http_get(port, "/api/stats", token=token)[0]


def test_admin_token_file_reread_on_hup(tmp_path):
    """admin_token_file: the token is the file's first line; SIGHUP reads
    the file again."""
    port = free_port()
    path = _token_file(str(tmp_path), TOKEN)
    with Daemon(admin_listen="127.0.0.1:%d" % port,
                admin_token_file=path) as d:
        assert _status(port, TOKEN) == 200
        assert _status(port, TOKEN2) == 401
        _token_file(str(tmp_path), TOKEN2)
        d.signal(signal.SIGHUP)
        assert wait_log(d, "configuration reloaded"), d.log()
        assert _status(port, TOKEN2) == 200
        assert _status(port, TOKEN) == 401
        assert "readable by others" not in d.log()


def test_admin_token_file_root_only_after_drop(tmp_path):
    """A 0600 root token file with user = nobody: read at start as root;
    on SIGHUP nobody cannot read it, so the running token stays, with a
    warning, and the configuration itself (0644) still reloads."""
    if not is_root():
        pytest.skip("needs root to drop privileges")
    port = free_port()
    os.chmod(tmp_path, 0o755)
    path = _token_file(str(tmp_path), TOKEN)
    with Daemon(admin_listen="127.0.0.1:%d" % port, user="nobody",
                rep_store="", admin_token_file=path) as d:
        assert wait_log(d, "running as nobody"), d.log()
        assert _status(port, TOKEN) == 200
        _token_file(str(tmp_path), TOKEN2)
        d.signal(signal.SIGHUP)
        assert wait_log(d, "keeping the running admin token"), d.log()
        assert wait_log(d, "configuration reloaded"), d.log()
        assert _status(port, TOKEN) == 200
        assert _status(port, TOKEN2) == 401


def test_admin_token_file_config_errors(tmp_path):
    """Both forms set, a missing or malformed file: configuration errors;
    a TCP admin address with only the file is fine."""
    good = _token_file(str(tmp_path), TOKEN)
    rc, out, _ = check_config("admin_listen = 127.0.0.1:8025\n"
                              "admin_token_file = %s\n" % good)
    assert rc == 0, out
    rc, out, _ = check_config("admin_listen = 127.0.0.1:8025\n"
                              "admin_token = %s\n"
                              "admin_token_file = %s\n" % (TOKEN, good))
    assert rc == 1 and re.search(
        r":3: admin_token_file: admin_token is set too", out), out
    rc, out, _ = check_config("admin_token_file = %s/nope\n" % tmp_path)
    assert rc == 1 and "No such file" in out, out
    bad = tmp_path / "bad.token"
    bad.write_text("short\n")
    rc, out, _ = check_config("admin_token_file = %s\n" % bad)
    assert rc == 1 and "first line must be a token" in out, out


# ------------------------------------------------------------ issue 10

def test_no_new_privs(admin):
    """After start-up the process has no_new_privs set."""
    with open("/proc/%d/status" % admin.proc.pid) as f:
        st = f.read()
    assert re.search(r"^NoNewPrivs:\s+1$", st, re.M), st
