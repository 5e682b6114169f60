"""daemon.py - start and stop build/mailshaper for black-box tests

  Daemon(backend=(host, port), **params)   one daemon on a free loopback port

Parameters become `name = value` lines of a configuration file in the
daemon's own temporary directory; `eventlog` defaults to a file there.
start() waits until the port accepts; stop() sends SIGTERM and waits, so the
event log is complete afterwards.  events() parses the JSON lines.
MAILSHAPER_BUILD (set by the Makefile) picks the binary: build or build/asan.
Under ASan a leak or error at exit makes stop() fail the test.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from peers import free_port, _live

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("MAILSHAPER_BUILD", os.path.join(ROOT, "build"))
BINARY = os.path.join(BUILD, "mailshaper")


class Daemon:
    def __init__(self, backend=None, host="127.0.0.1", port=None, *,
                 config_text=None, **params):
        self.host = host
        self.port = port or free_port(host if ":" not in host else "::1")
        self.dir = tempfile.mkdtemp(prefix="ms-daemon-")
        os.chmod(self.dir, 0o755)
        self.eventlog = os.path.join(self.dir, "events.jsonl")
        self.params = {
            "listen": ("[%s]:%d" % (host, self.port)) if ":" in host
            else "%s:%d" % (host, self.port),
            "eventlog": self.eventlog,
            "myhostname": "mx.mailshaper.test",
            "rep_store": "sqlite:" + os.path.join(self.dir, "rep.db"),
            "explore_share": "0",
        }
        if backend is not None:
            bh, bp = backend
            self.params["backend"] = ("[%s]:%d" % (bh, bp)) if ":" in bh \
                else "%s:%d" % (bh, bp)
        self.params.update({k: str(v) for k, v in params.items()})
        self.config = os.path.join(self.dir, "mailshaper.conf")
        with open(self.config, "w") as f:
            if config_text:
                f.write(config_text)
            for k, v in self.params.items():
                f.write("%s = %s\n" % (k, v))
        self.proc = None
        self.logfile = os.path.join(self.dir, "stderr.log")
        self.returncode = None

    def start(self, timeout=10.0, wait_probe=True):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self._log = open(self.logfile, "w")
        self.proc = subprocess.Popen([BINARY, "-f", "-v", "-c", self.config],
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env)
        _live.add(self)
        # Wait for the log, not a connection: a probe would be a session.
        deadline = time.time() + timeout
        want = "probe" if wait_probe and "backend" in self.params \
            else "mailshaper started"
        while time.time() < deadline:
            if want in self.log():
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("mailshaper exited:\n" + self.log())
            time.sleep(0.02)
        raise RuntimeError("mailshaper did not start:\n" + self.log())

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        self._log.close()
        self.proc = None
        _live.discard(self)
        sanitizer = "ERROR: AddressSanitizer" in self.log() or \
            "runtime error:" in self.log() or \
            "ERROR: LeakSanitizer" in self.log()
        assert not sanitizer, "sanitizer report:\n" + self.log()[-4000:]

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if exc[0] is None:
            self.cleanup()

    def events(self, type_=None):
        out = []
        try:
            with open(self.eventlog) as f:
                for line in f:
                    rec = json.loads(line)
                    if type_ is None or rec.get("type") == type_:
                        out.append(rec)
        except FileNotFoundError:
            pass
        return out

    def wait_events(self, type_, n, timeout=5.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            ev = self.events(type_)
            if len(ev) >= n:
                return ev
            time.sleep(0.05)
        return self.events(type_)


def check_config(text=None, *args):
    """Run --check-config on text; return (returncode, output, path)."""
    d = tempfile.mkdtemp(prefix="ms-conf-")
    path = os.path.join(d, "mailshaper.conf")
    with open(path, "w") as f:
        f.write(text or "")
    r = subprocess.run([BINARY, "-c", path, "--check-config", *args],
                       capture_output=True, text=True, timeout=20)
    shutil.rmtree(d, ignore_errors=True)
    return r.returncode, r.stdout + r.stderr, path
