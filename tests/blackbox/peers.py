"""peers.py - real SMTP peers for mailshaper's black-box tests

Fixtures that start real mail software on loopback, owned by one test:

  free_port()        a free TCP port on a loopback address
  SmtpSink           Postfix's smtp-sink(1): fast backend, dumps each message
  PostfixSmtpd       a private, throw-away Postfix smtpd (plain/XCLIENT/PROXY)
                     that keeps every accepted message on its hold queue so
                     the test can read it back with the client identity
  swaks()            run /usr/bin/swaks, return (returncode, transcript)
  RawSmtp            byte-exact socket SMTP client (smuggling, pipelining)
  proxy_v2_header()  build a PROXY protocol v2 header (for RawSmtp)
  need()             pytest.skip() with a clear message if a binary is absent

Everything listens on and connects from loopback only (127.0.0.0/8, ::1);
constructors raise ValueError for any other address.  Addresses such as
192.0.2.7 only ever travel as data inside XCLIENT or PROXY headers.

Each peer owns a temporary directory, removed by stop().  Peers are context
managers; stop() is idempotent and also kills leftovers.  It is an error to
read messages() from a peer that was never started.

Run with Debian's /usr/bin/python3 (which sees python3-pytest); the module
itself needs only the standard library.
"""

import atexit
import ipaddress
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

SMTP_SINK = "/usr/sbin/smtp-sink"
SWAKS = "/usr/bin/swaks"
POSTFIX = "/usr/sbin/postfix"
POSTCAT = "/usr/sbin/postcat"
POSTFIX_DAEMON_DIR = "/usr/lib/postfix/sbin"


# ---------------------------------------------------------------- helpers

_live = set()  # started peers, stopped at exit if a test forgot to


@atexit.register
def _stop_all():
    for p in list(_live):
        try:
            p.stop()
        except Exception:
            pass


def missing(*paths):
    """missing - return the subset of executable paths that are absent"""
    return [p for p in paths if not os.access(p, os.X_OK)]


def need(*paths):
    """need - pytest.skip() the calling test when a binary is absent"""
    gone = missing(*paths)
    if gone:
        import pytest  # only tests call this; the module stays pytest-free
        pytest.skip("real peer not installed: %s (run tools/install-deps.sh)"
                    % ", ".join(gone))


def is_root():
    """is_root - true when running with euid 0"""
    return os.geteuid() == 0


def check_loopback(host):
    """check_loopback - raise ValueError unless host is a loopback literal"""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError("%r: peers take loopback IP literals only" % (host,))
    if not ip.is_loopback:
        raise ValueError("%s is not a loopback address" % host)
    return ip


def _family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def hostport(host, port):
    """hostport - 'h:p' or '[h]:p' as Postfix and swaks spell it"""
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def free_port(host="127.0.0.1"):
    """free_port - a TCP port nobody listens on now (bind host:0, close)"""
    check_loopback(host)
    with socket.socket(_family(host), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host, port, timeout=0.5):
    """port_open - true when a TCP connect to host:port succeeds"""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(host, port, timeout=5.0, proc=None):
    """wait_port - poll until host:port accepts; raise TimeoutError if not.

    With proc (a Popen), give up early with RuntimeError if it exits."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if port_open(host, port, timeout=0.3):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with status %s before %s "
                               "accepted" % (proc.returncode,
                                             hostport(host, port)))
        time.sleep(0.02)
    raise TimeoutError("%s did not accept within %.1fs"
                       % (hostport(host, port), timeout))


def wait_port_closed(host, port, timeout=5.0):
    """wait_port_closed - poll until host:port refuses connections"""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not port_open(host, port, timeout=0.3):
            return
        time.sleep(0.02)
    raise TimeoutError("%s still accepts after %.1fs"
                       % (hostport(host, port), timeout))


def _workdir(prefix):
    """_workdir - a fresh temp dir that unprivileged daemons can traverse"""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    return d


def _split_headers(data):
    """_split_headers - (list of (name, value), body) from RFC 5322 bytes.

    Line ends may be LF or CRLF; values are unfolded and stripped str."""
    headers = []
    lines = data.split(b"\n")
    i = 0
    while i < len(lines):
        line = lines[i].rstrip(b"\r")
        if line == b"":
            i += 1
            break
        if line[:1] in (b" ", b"\t") and headers:
            n, v = headers[-1]
            headers[-1] = (n, v + " " + line.strip().decode("utf-8", "replace"))
        elif b":" in line:
            n, v = line.split(b":", 1)
            headers.append((n.decode("utf-8", "replace"),
                            v.strip().decode("utf-8", "replace")))
        else:  # not a header: the body started without a blank line
            break
        i += 1
    return headers, b"\n".join(lines[i:])


class _Message:
    """Common accessors for a received message."""

    headers = ()

    def header(self, name, default=None):
        """header - first value of header name (case-insensitive)"""
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        """header_all - every value of header name, in order"""
        return [v for n, v in self.headers if n.lower() == name.lower()]


# ---------------------------------------------------------------- smtp-sink

class SinkMessage(_Message):
    """One smtp-sink dump file, parsed.

    path         the dump file
    client_addr  X-Client-Addr: the TCP peer smtp-sink saw ("127.0.0.1" or
                 "ipv6:::1"); never changed by XCLIENT
    client_ip    client_addr without the "ipv6:" prefix
    client_proto X-Client-Proto: SMTP, ESMTP or LMTP
    helo         X-Helo-Args (None if no HELO/EHLO was sent)
    mail_args    X-Mail-Args, e.g. "<a@b> SIZE=12 BODY=8BITMIME"
    rcpt_args    list of X-Rcpt-Args
    mail_from    the address inside <> of mail_args
    rcpt_to      list of addresses inside <> of rcpt_args
    received     the 3-line Received: header smtp-sink adds (unfolded)
    data         message as received (dot-unstuffed, LF line ends,
                 smtp-sink's own trailing empty line removed)
    headers      [(name, value)] of data;  body: bytes after the blank line
    """

    def __init__(self, path, raw):
        self.path = path
        self.raw = raw
        meta = {"X-Client-Addr": None, "X-Client-Proto": None,
                "X-Helo-Args": None, "X-Mail-Args": None}
        self.rcpt_args = []
        lines = raw.split(b"\n")
        i = 0
        self.received = None
        while i < len(lines):
            line = lines[i].decode("utf-8", "replace")
            name, _, val = line.partition(": ")
            if name == "X-Rcpt-Args":
                self.rcpt_args.append(val)
            elif name in meta:
                meta[name] = val
            elif name == "Received":
                self.received = " ".join(
                    [val] + [lines[i + k].decode().strip() for k in (1, 2)])
                i += 3
                break
            i += 1
        self.client_addr = meta["X-Client-Addr"]
        self.client_ip = _bare_ip(self.client_addr)
        self.client_proto = meta["X-Client-Proto"]
        self.helo = meta["X-Helo-Args"]
        self.mail_args = meta["X-Mail-Args"]
        self.mail_from = _angle(self.mail_args)
        self.rcpt_to = [_angle(a) for a in self.rcpt_args]
        data = b"\n".join(lines[i:])
        if data.endswith(b"\n\n"):
            data = data[:-1]
        self.data = data
        self.headers, self.body = _split_headers(data)

    def __repr__(self):
        return "<SinkMessage %s from=%s rcpt=%s>" % (
            os.path.basename(self.path), self.mail_from, self.rcpt_to)


def _bare_ip(addr):
    """_bare_ip - address without an "ipv6:"/"IPv6:" prefix"""
    if addr and addr.lower().startswith("ipv6:"):
        return addr[5:]
    return addr


def _angle(args):
    if args is None:
        return None
    m = re.match(r"\s*<([^>]*)>", args)
    return m.group(1) if m else args.split()[0] if args.split() else ""


class SmtpSink:
    """Postfix's smtp-sink on host:port, started by start(), owned by a test.

    EHLO features: smtp-sink advertises PIPELINING 8BITMIME AUTH XCLIENT
    XFORWARD ENHANCEDSTATUSCODES DSN and then an empty "250 " last line.
    It can only switch features OFF (pipelining=False -> -p, eightbitmime
    -> -8, xclient -> -C, xforward -> -F, auth -> -a, esmtp -> -e,
    enhanced_status -> -E, dsn -> -N).  It never advertises SIZE,
    CHUNKING or SMTPUTF8 and answers BDAT with "500 5.5.1"; use
    PostfixSmtpd for those.

    Failure injection (lists of command names: CONNECT HELO EHLO MAIL RCPT
    DATA . RSET NOOP QUIT VRFY ...):
      reject_hard      -f: 5xx (hard_reply overrides "500 5.3.0 Error:
                       command failed"); implies no PIPELINING
      reject_soft      -r: 4xx (soft_reply overrides "450 4.3.0 ...");
                       implies no PIPELINING
      disconnect       -q: drop the connection without a reply
      disconnect_421   -Q: reply 421 and disconnect
      data_abort_delay -A: after 354 wait N s, reply 550 and stop reading
      data_delay       -w: wait N s before answering DATA
      delays           {"RCPT": 2, ...} -> -W cmd:delay (whole seconds >= 1,
                       or "delay:odds" strings)
    Use kill() to make the backend vanish mid-transaction.

    Dump: with dump=True (default) each transaction goes to
    <dump_dir>/<minute>.<hex> (-d DIR/%M.), created at MAIL, deleted if
    the transaction is aborted (RSET, disconnect), complete after the
    250 for ".".  messages() parses them; message_count() counts "."
    from smtp-sink's -c counters, so it never sees half a message.
    A "." rejected with reject_hard/reject_soft still counts in
    message_count() and its dump file stays: the reply is what differs.
    session_count() includes the one probe connection start() makes.
    For benchmarks: dump=False, max_conn large (-m), backlog large.
    """

    def __init__(self, host="127.0.0.1", port=None, *, dump=True,
                 hostname=None, pipelining=True, eightbitmime=True,
                 xclient=True, xforward=True, auth=True, esmtp=True,
                 enhanced_status=True, dsn=True,
                 reject_hard=(), reject_soft=(), disconnect=(),
                 disconnect_421=(), hard_reply=None, soft_reply=None,
                 data_abort_delay=None, data_delay=None, delays=None,
                 max_conn=None, backlog=1024, max_messages=None,
                 max_sessions=None, cmd_timeout=None, extra_args=()):
        check_loopback(host)
        self.host = host
        self.port = port or free_port(host)
        self.dump = dump
        self.backlog = backlog
        self.proc = None
        self.workdir = None
        self.dump_dir = None
        a = ["-c"]
        for on, flag in ((pipelining, "-p"), (eightbitmime, "-8"),
                         (xclient, "-C"), (xforward, "-F"), (auth, "-a"),
                         (esmtp, "-e"), (enhanced_status, "-E"),
                         (dsn, "-N")):
            if not on:
                a.append(flag)
        for cmds, flag in ((reject_hard, "-f"), (reject_soft, "-r"),
                           (disconnect, "-q"), (disconnect_421, "-Q")):
            if cmds:
                a += [flag, ",".join([cmds] if isinstance(cmds, str)
                                     else cmds)]
        for val, flag in ((hostname, "-h"), (hard_reply, "-B"),
                          (soft_reply, "-b"), (data_abort_delay, "-A"),
                          (data_delay, "-w"), (max_conn, "-m"),
                          (max_messages, "-M"), (max_sessions, "-n"),
                          (cmd_timeout, "-t")):
            if val is not None:
                a += [flag, str(val)]
        for cmd, d in (delays or {}).items():
            a += ["-W", "%s:%s" % (cmd, d)]
        self.args = a + list(extra_args)

    # -- life cycle

    def start(self, timeout=5.0):
        """start - run smtp-sink and return once the port accepts"""
        if self.proc is not None:
            raise RuntimeError("SmtpSink already started")
        self.workdir = _workdir("mailshaper-sink-")
        argv = [SMTP_SINK] + self.args
        if is_root():
            argv += ["-u", "nobody"]
        if self.dump:
            self.dump_dir = os.path.join(self.workdir, "dump")
            os.mkdir(self.dump_dir)
            if is_root():  # smtp-sink writes after dropping to nobody
                os.chown(self.dump_dir, _uid("nobody"), -1)
            argv += ["-d", os.path.join(self.dump_dir, "%M.")]
        argv += ["inet:" + hostport(self.host, self.port), str(self.backlog)]
        self.argv = argv
        self._out_path = os.path.join(self.workdir, "stdout")
        out = open(self._out_path, "wb")
        try:
            self.proc = subprocess.Popen(argv, stdout=out,
                                         stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        finally:
            out.close()
        _live.add(self)
        try:
            wait_port(self.host, self.port, timeout, self.proc)
        except Exception:
            out = self.output()
            self.stop()
            raise RuntimeError("smtp-sink did not start: %s\n%s"
                               % (" ".join(argv), out))
        return self

    def alive(self):
        """alive - true while the smtp-sink process runs"""
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """kill - SIGKILL smtp-sink (the backend dies, port then refuses)"""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self):
        """stop - terminate smtp-sink and remove its files (idempotent)"""
        _live.discard(self)
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(3)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(3)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def address(self):
        """address - (host, port) to connect to"""
        return (self.host, self.port)

    # -- what it received

    def output(self):
        """output - smtp-sink's stdout/stderr so far (counters, errors)"""
        try:
            with open(self._out_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    def counters(self):
        """counters - latest {'sess': n, 'quit': n, 'mesg': n} from -c"""
        try:  # only the tail: a benchmark run writes megabytes
            with open(self._out_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 4096))
                tail = f.read().decode("utf-8", "replace")
        except (OSError, AttributeError):
            tail = ""
        m = None
        for m in re.finditer(r"sess=(\d+) quit=(\d+) mesg=(\d+)", tail):
            pass
        if m is None:
            return {"sess": 0, "quit": 0, "mesg": 0}
        return {"sess": int(m.group(1)), "quit": int(m.group(2)),
                "mesg": int(m.group(3))}

    def message_count(self):
        """message_count - messages completed (250 after ".") so far"""
        return self.counters()["mesg"]

    def session_count(self):
        """session_count - SMTP sessions ended so far (incl. start's probe)"""
        return self.counters()["sess"]

    def messages(self):
        """messages - parsed dump files, oldest first (needs dump=True).

        A transaction still in progress (after MAIL, before ".") also
        has a file; use wait_messages(n) to read only after n are done."""
        if not self.dump_dir:
            raise RuntimeError("SmtpSink was not started with dump=True")
        out = []
        for name in os.listdir(self.dump_dir):
            p = os.path.join(self.dump_dir, name)
            try:
                st = os.stat(p)
                with open(p, "rb") as f:
                    out.append((st.st_mtime_ns, name, SinkMessage(p, f.read())))
            except FileNotFoundError:  # aborted meanwhile
                continue
        return [m for _, _, m in sorted(out, key=lambda t: t[:2])]

    def wait_messages(self, n, timeout=5.0):
        """wait_messages - wait until n messages completed, return messages()"""
        end = time.monotonic() + timeout
        while self.message_count() < n:
            if time.monotonic() > end:
                raise TimeoutError("smtp-sink has %d of %d messages"
                                   % (self.message_count(), n))
            time.sleep(0.02)
        return self.messages()


# ---------------------------------------------------------------- Postfix

class PostfixMessage(_Message):
    """One message accepted by PostfixSmtpd, read from its hold queue.

    queue_id, sender, recipients (list)
    client_address  as Postfix recorded it (after XCLIENT / PROXY); after
                    XCLIENT ADDR=IPV6:x it keeps the "IPv6:" prefix
    client_ip       client_address without an "IPv6:" prefix
    client_port     str, "" when unknown
    client_name     verified name ("unknown" with peername lookups off)
    helo            HELO/EHLO argument (after XCLIENT HELO= if given)
    protocol        SMTP / ESMTP / ESMTPS ...
    attrs           every named_attribute from the queue file (dict)
    received        Postfix's own (first) Received: header, unfolded
    data            message content as queued (LF line ends, includes
                    Postfix's Received: header)
    headers, body   split from data
    """

    def __init__(self, queue_id, postcat_text):
        self.queue_id = queue_id
        self.postcat = postcat_text
        self.attrs = {}
        self.recipients = []
        self.sender = None
        section = None
        content = []
        for line in postcat_text.split("\n"):
            if line.startswith("*** ") and line.endswith(" ***"):
                section = line
                continue
            if section is None:
                continue
            if "ENVELOPE RECORDS" in section:
                key, _, val = line.partition(": ")
                if key == "named_attribute":
                    k, _, v = val.partition("=")
                    self.attrs[k] = v
                elif key == "sender":
                    self.sender = val
                elif key == "recipient":
                    self.recipients.append(val)
            elif "MESSAGE CONTENTS" in section:
                content.append(line)
            elif "HEADER EXTRACTED" in section:
                key, _, val = line.partition(": ")
                if key == "recipient":
                    self.recipients.append(val)
        a = self.attrs
        self.client_address = a.get("log_client_address",
                                    a.get("client_address"))
        self.client_ip = _bare_ip(self.client_address)
        self.client_port = a.get("log_client_port", a.get("client_port", ""))
        self.client_name = a.get("log_client_name", a.get("client_name"))
        self.helo = a.get("log_helo_name", a.get("helo_name"))
        self.protocol = a.get("log_protocol_name", a.get("protocol_name"))
        self.data = "\n".join(content).encode("utf-8", "surrogateescape")
        self.headers, self.body = _split_headers(self.data)
        self.received = self.header("Received")

    def __repr__(self):
        return "<PostfixMessage %s client=%s:%s helo=%s>" % (
            self.queue_id, self.client_address, self.client_port, self.helo)


class PostfixSmtpd:
    """A private Postfix instance whose only listener is smtpd on host:port.

    mode="plain"   ordinary smtpd
    mode="xclient" smtpd_authorized_xclient_hosts = 127.0.0.0/8 [::1]/128
                   (XCLIENT is answered with a new 220 greeting; the client
                   must send EHLO again)
    mode="proxy"   smtpd_upstream_proxy_protocol = haproxy: every connection
                   must start with a PROXY v1 or v2 header; no banner is
                   sent before it, and after proxy_timeout the connection
                   is dropped

    All recipients are accepted (no relay control, no recipient maps) and
    every accepted message is put on the hold queue (HOLD action at RCPT),
    so nothing is ever delivered; messages() reads them back with postcat.
    Reverse DNS is off by default (client_name "unknown") so addresses like
    192.0.2.7 cause no DNS traffic; XCLIENT NAME= still sets the name.
    The log goes to <workdir>/maillog (postlogd); see log().

    main: extra main.cf settings {param: value}, e.g.
      {"smtpd_forbid_bare_newline": "yes"}  (bare-LF smuggling defence)
      {"message_size_limit": 1000}
    smtpd_options: extra "-o" settings for the smtpd service only.
    ehlo_discard: EHLO keywords to hide, e.g. ("CHUNKING", "PIPELINING")
    (Postfix advertises PIPELINING SIZE VRFY ETRN ENHANCEDSTATUSCODES
    8BITMIME DSN SMTPUTF8 CHUNKING, and XCLIENT in xclient mode.)
    Must run as root: master needs it, children run as user postfix.
    """

    MODES = ("plain", "xclient", "proxy")

    def __init__(self, mode="plain", host="127.0.0.1", port=None, *,
                 hostname="mx.mailshaper.test", main=None,
                 smtpd_options=None, ehlo_discard=(), proxy_timeout="5s",
                 peername_lookup=False):
        if mode not in self.MODES:
            raise ValueError("mode must be one of %s" % (self.MODES,))
        check_loopback(host)
        self.mode = mode
        self.host = host
        self.port = port or free_port(host)
        self.hostname = hostname
        self.main_extra = dict(main or {})
        self.smtpd_options = dict(smtpd_options or {})
        self.ehlo_discard = tuple(ehlo_discard)
        self.proxy_timeout = proxy_timeout
        self.peername_lookup = peername_lookup
        self.workdir = None
        self.started = False

    # -- configuration

    def _main_cf(self):
        w = self.workdir
        p = {
            "compatibility_level": "3.6",
            "config_directory": self.conf_dir,
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "daemon_directory": POSTFIX_DAEMON_DIR,
            "command_directory": "/usr/sbin",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": self.hostname,
            "mydomain": "mailshaper.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            # every domain is a relay domain: all recipients pass
            # reject_unauth_destination (smtpd refuses to run without it)
            "relay_domains": "static:all",
            "local_recipient_maps": "",
            "relay_recipient_maps": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "all",
            "mynetworks": "127.0.0.0/8 [::1]/128",
            "smtpd_banner": "$myhostname ESMTP mailshaper-test",
            "smtpd_relay_restrictions": "reject_unauth_destination",
            "smtpd_recipient_restrictions":
                "check_client_access static:HOLD, permit",
            "smtpd_client_port_logging": "yes",
            # when a test sets smtpd_forbid_bare_newline, apply it to
            # loopback clients too (the default exempts $mynetworks)
            "smtpd_forbid_bare_newline_exclusions": "",
            "smtpd_peername_lookup": "yes" if self.peername_lookup else "no",
            "maillog_file": os.path.join(w, "maillog"),
            "maillog_file_prefixes": w,
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "append_dot_mydomain": "no",
            "smtp_dns_support_level": "disabled",
            "default_transport": "discard:mailshaper test instance",
            "relay_transport": "discard:mailshaper test instance",
            "local_transport": "discard:mailshaper test instance",
        }
        if self.mode == "xclient":
            p["smtpd_authorized_xclient_hosts"] = "127.0.0.0/8 [::1]/128"
        if self.ehlo_discard:
            p["smtpd_discard_ehlo_keywords"] = " ".join(self.ehlo_discard)
        p.update(self.main_extra)
        return "".join("%s = %s\n" % kv for kv in p.items())

    def _master_cf(self):
        opts = dict(self.smtpd_options)
        if self.mode == "proxy":
            opts.setdefault("smtpd_upstream_proxy_protocol", "haproxy")
            opts.setdefault("smtpd_upstream_proxy_timeout",
                            self.proxy_timeout)
        o = "".join("\n  -o %s=%s" % kv for kv in opts.items())
        # service type private unpriv chroot wakeup maxproc command
        return (
            "%-20s inet  n - n - - smtpd%s\n" % (hostport(self.host,
                                                          self.port), o) +
            "pickup    unix  n - n 60 1 pickup\n"
            "cleanup   unix  n - n - 0 cleanup\n"
            "qmgr      unix  n - n 300 1 qmgr\n"
            "rewrite   unix  - - n - - trivial-rewrite\n"
            "bounce    unix  - - n - 0 bounce\n"
            "defer     unix  - - n - 0 bounce\n"
            "trace     unix  - - n - 0 bounce\n"
            "verify    unix  - - n - 1 verify\n"
            "flush     unix  n - n 1000? 0 flush\n"
            "proxymap  unix  - - n - - proxymap\n"
            "anvil     unix  - - n - 1 anvil\n"
            "scache    unix  - - n - 1 scache\n"
            "showq     unix  n - n - - showq\n"
            "error     unix  - - n - - error\n"
            "retry     unix  - - n - - error\n"
            "discard   unix  - - n - - discard\n"
            "tlsmgr    unix  - - n 1000? 1 tlsmgr\n"   # only when TLS is on
            "postlog   unix-dgram n - n - 1 postlogd\n")

    # -- life cycle

    def _postfix(self, *args, check=True, timeout=20):
        env = dict(os.environ, MAIL_CONFIG=self.conf_dir)
        r = subprocess.run([POSTFIX, "-c", self.conf_dir] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, env=env,
                           timeout=timeout)
        out = r.stdout.decode("utf-8", "replace")
        if check and r.returncode != 0:
            raise RuntimeError("postfix %s failed (%d):\n%s\n%s"
                               % (" ".join(args), r.returncode, out,
                                  self.log()))
        return r.returncode, out

    def start(self, timeout=15.0):
        """start - write the config, 'postfix -c DIR start', wait for smtpd"""
        if self.started:
            raise RuntimeError("PostfixSmtpd already started")
        if not is_root():
            raise RuntimeError("PostfixSmtpd needs root")
        self.workdir = _workdir("mailshaper-postfix-")
        self.conf_dir = os.path.join(self.workdir, "etc")
        self.queue_dir = os.path.join(self.workdir, "spool")
        self.data_dir = os.path.join(self.workdir, "data")
        os.mkdir(self.conf_dir, 0o755)
        os.mkdir(self.queue_dir, 0o755)
        os.mkdir(self.data_dir, 0o700)
        os.chown(self.data_dir, _uid("postfix"), 0)
        with open(os.path.join(self.conf_dir, "main.cf"), "w") as f:
            f.write(self._main_cf())
        with open(os.path.join(self.conf_dir, "master.cf"), "w") as f:
            f.write(self._master_cf())
        self.started = True
        _live.add(self)
        try:
            self._postfix("start", timeout=timeout)
            self._wait_ready(timeout)
        except Exception:
            log = self.log()
            self.stop()
            raise RuntimeError("private Postfix did not start; log:\n" + log)
        return self

    def _wait_ready(self, timeout):
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            try:
                c = RawSmtp(self.host, self.port, timeout=1)
                try:
                    if self.mode == "proxy":
                        c.send(b"PROXY TCP4 127.0.0.1 127.0.0.1 1 2\r\n")
                    c.expect(220)
                    c.send(b"QUIT\r\n")
                    return
                finally:
                    c.close()
            except (OSError, SmtpError) as e:
                last = e
                fatal = re.search(r".*(fatal|panic): .*", self.log())
                if fatal:
                    raise RuntimeError("Postfix: " + fatal.group(0))
                time.sleep(0.05)
        raise TimeoutError("no smtpd banner on %s: %s"
                           % (hostport(self.host, self.port), last))

    def master_pid(self):
        """master_pid - pid of this instance's master, or None"""
        try:
            with open(os.path.join(self.queue_dir, "pid",
                                   "master.pid")) as f:
                pid = int(f.read().split()[0])
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError, IndexError, AttributeError):
            return None

    def _our_pids(self):
        """_our_pids - processes whose environment names our config dir"""
        want = ("MAIL_CONFIG=" + self.conf_dir).encode()
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    if want in f.read().split(b"\0"):
                        pids.append(int(d))
            except OSError:
                continue
        return pids

    def stop(self):
        """stop - 'postfix stop', kill any leftover, remove files"""
        _live.discard(self)
        if self.started:
            self.started = False
            pid = self.master_pid()
            try:
                self._postfix("stop", check=False, timeout=10)
            except subprocess.TimeoutExpired:
                pass
            end = time.monotonic() + 5
            while pid and time.monotonic() < end:
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.05)
            for p in ([pid] if pid else []) + self._our_pids():
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def address(self):
        """address - (host, port) to connect to"""
        return (self.host, self.port)

    # -- what it received

    def log(self):
        """log - this instance's maillog so far"""
        try:
            with open(os.path.join(self.workdir, "maillog"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, TypeError, AttributeError):
            return ""

    def queue_ids(self):
        """queue_ids - ids of the messages on the hold queue"""
        d = os.path.join(self.queue_dir, "hold")
        try:
            return sorted(os.listdir(d),
                          key=lambda n: (os.stat(os.path.join(d, n))
                                         .st_mtime_ns, n))
        except FileNotFoundError:
            return []

    def message_count(self):
        """message_count - messages accepted (and held) so far"""
        return len(self.queue_ids())

    def messages(self):
        """messages - every accepted message, oldest first"""
        out = []
        for qid in self.queue_ids():
            path = os.path.join(self.queue_dir, "hold", qid)
            r = subprocess.run([POSTCAT, "-c", self.conf_dir, path],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=10)
            if r.returncode != 0:
                continue  # vanished or still being written
            out.append(PostfixMessage(
                qid, r.stdout.decode("utf-8", "surrogateescape")))
        return out

    def wait_messages(self, n, timeout=5.0):
        """wait_messages - wait until n messages were accepted, return them"""
        end = time.monotonic() + timeout
        while True:
            msgs = self.messages()
            if len(msgs) >= n:
                return msgs
            if time.monotonic() > end:
                raise TimeoutError("Postfix holds %d of %d messages; log:\n%s"
                                   % (len(msgs), n, self.log()))
            time.sleep(0.05)


def _uid(user):
    import pwd
    return pwd.getpwnam(user).pw_uid


# ---------------------------------------------------------------- swaks

def swaks(server, port, *args, timeout=30, source=None, helo="client.test",
          sender="sender@client.test", to="rcpt@example.test"):
    """swaks - run swaks against server:port, return (returncode, transcript).

    args are passed through (e.g. "--pipeline", "--body", "hi",
    "--xclient-addr", "192.0.2.7", "--quit-after", "RCPT").  source picks
    the loopback address swaks connects from (--local-interface).  helo,
    sender and to fill --helo/--from/--to unless args already give them;
    pass None to leave one out.  The transcript is stdout+stderr, with
    swaks' markers: "<-" server, " ->" client, "<~"/" ~>" under TLS,
    "***" errors."""
    check_loopback(server)
    argv = [SWAKS, "--server", server, "--port", str(port),
            "--timeout", str(max(1, int(timeout) - 1))]
    given = set(a for a in args if isinstance(a, str) and a.startswith("-"))
    for opt, alts, val in (("--helo", ("--helo", "--ehlo", "--lhlo"), helo),
                           ("--from", ("--from", "-f"), sender),
                           ("--to", ("--to", "-t"), to)):
        if val is not None and not given.intersection(alts):
            argv += [opt, val]
    if source is not None:
        check_loopback(source)
        argv += ["--local-interface", source]
    argv += [str(a) for a in args]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace")


# ---------------------------------------------------------------- raw SMTP

class SmtpError(Exception):
    """An unexpected reply, a timeout or a closed connection in RawSmtp."""


class RawSmtp:
    """Byte-exact SMTP client over a plain socket.

    c = RawSmtp("127.0.0.1", port, source="127.0.0.5")
    c.expect(220)                      # banner
    c.send(b"EHLO x\\r\\n"); lines = c.expect(250)
    c.send(b"MAIL FROM:<a@b>\\r\\nRCPT TO:<c@d>\\r\\n")   # pipelined
    c.expect(250); c.expect(250)

    send() writes exactly the bytes given.  reply() reads one (possibly
    multi-line) reply and returns (code, [line text without "NNN-"]).
    expect(code) raises SmtpError unless the code matches (code may be an
    int, a 1-digit class like 2, or a tuple of ints).  closed() tells
    whether the peer closed the connection.
    """

    def __init__(self, host, port, *, source=None, source_port=0,
                 timeout=10.0):
        check_loopback(host)
        self.timeout = timeout
        self.buf = b""
        self.log = []  # [("<" | ">", bytes)] everything exchanged
        self.sock = socket.socket(_family(host), socket.SOCK_STREAM)
        try:
            self.sock.settimeout(timeout)
            if source is not None or source_port:
                src = source or ("::1" if ":" in host else "127.0.0.1")
                check_loopback(src)
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR,
                                     1)
                self.sock.bind((src, source_port))
            self.sock.connect((host, port))
        except OSError:
            self.sock.close()
            raise

    def local_address(self):
        """local_address - (addr, port) of our end"""
        return self.sock.getsockname()[:2]

    def send(self, data):
        """send - write data (bytes, sent as is)"""
        if isinstance(data, str):
            data = data.encode()
        self.log.append((">", data))
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise SmtpError("timeout after %.1fs; got so far %r"
                            % (timeout, self.buf))
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise SmtpError("connection closed; got so far %r" % (self.buf,))
        self.log.append(("<", chunk))
        self.buf += chunk

    def readline(self, timeout=None):
        """readline - one line from the server, CRLF/LF stripped (bytes)"""
        t = self.timeout if timeout is None else timeout
        end = time.monotonic() + t
        while b"\n" not in self.buf:
            self._fill(max(0.01, end - time.monotonic()))
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def reply(self, timeout=None):
        """reply - (code, [text lines]) of the next complete reply"""
        lines = []
        while True:
            line = self.readline(timeout)
            if len(line) < 3 or not line[:3].isdigit():
                raise SmtpError("malformed reply line %r" % (line,))
            lines.append(line[4:].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                return int(line[:3]), lines

    def expect(self, code, timeout=None):
        """expect - read a reply, raise SmtpError unless code matches"""
        got, lines = self.reply(timeout)
        if isinstance(code, (tuple, list, set, frozenset)):
            ok = got in code
        elif code < 10:
            ok = got // 100 == code
        else:
            ok = got == code
        if not ok:
            raise SmtpError("expected %s, got %d %s" % (code, got,
                                                        " / ".join(lines)))
        return lines

    def cmd(self, line, code=None, timeout=None):
        """cmd - send one command line (CRLF added), return reply()/expect()"""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        if code is None:
            return self.reply(timeout)
        return self.expect(code, timeout)

    def closed(self, timeout=1.0):
        """closed - true if the peer closes (EOF/RST) within timeout"""
        if self.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        if chunk:
            self.log.append(("<", chunk))
            self.buf += chunk
            return False
        return True

    def close(self):
        """close - close the socket (idempotent)"""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def proxy_v2_header(src, sport, dst, dport, command="PROXY"):
    """proxy_v2_header - PROXY protocol v2 header bytes (TCP over v4/v6).

    command="LOCAL" builds a LOCAL header (no addresses)."""
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    if command == "LOCAL":
        return sig + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if s.version != d.version:
        raise ValueError("src and dst must be the same family")
    fam = 0x11 if s.version == 4 else 0x21  # AF_INET/AF_INET6, STREAM
    body = s.packed + d.packed + struct.pack("!HH", sport, dport)
    return sig + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


def proxy_v1_header(src, sport, dst, dport):
    """proxy_v1_header - PROXY protocol v1 text header bytes"""
    v = "TCP4" if ipaddress.ip_address(src).version == 4 else "TCP6"
    return ("PROXY %s %s %s %d %d\r\n" % (v, src, dst, sport, dport)).encode()
