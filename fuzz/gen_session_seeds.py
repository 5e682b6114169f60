#!/usr/bin/python3
"""gen_session_seeds - seeds for fuzz/fuzz_session.c (run by fuzz/Makefile).

    gen_session_seeds.py OUTDIR

Writes one file per dialogue in the input format that fuzz_session.c's
header comment describes: the reproduced failures of issue 10 ("Make the
class impossible"), then complete transactions with DATA and with BDAT in
every class and backend identity, so that coverage starts deep.
"""
import os
import ssl
import sys

# Canned command lines: indexes into canned() in fuzz_session.c.
EHLO, HELO, MAIL, RCPT, DATA, BDAT3, BDAT12LAST, RSET, NOOP, QUIT, \
    STARTTLS, HELP, VRFY, DOT, BODY, MAILNULL, RCPT2, BDAT0LAST, XCLIENT, \
    EHLOBARE, MAILPART, CRLF, LF, DATALF, CRLFDOT, AUTH, MAILBIG, \
    BDATMAX, BDAT70M = range(29)

CLASSES = {"trusted": 0, "normal": 1, "suspect": 2, "hostile": 3,
           "tempfail": 4, "reject": 5, "rated": 6, "unmapped": 7}
IDENT = {"xclient": 0, "proxy": 1, "none": 2}


class Seed:
    """One input: the header, then operations."""

    def __init__(self, cls="normal", v6=False, auto_backend=True,
                 auto_time=True, syn=None, tls=False, chunking=True,
                 pipelining=True, size=False, eightbit=True, utf8=False,
                 enhanced=True, ident="xclient", bare_reject=False,
                 small_size=False, short_lines=False, observe=False,
                 few_errors=False, one_backend=False):
        h0 = CLASSES[cls] | (8 if v6 else 0) | (16 if auto_backend else 0) \
            | (32 if auto_time else 0) | (64 if syn is not None else 0) \
            | (128 if tls else 0)
        h1 = (1 if chunking else 0) | (2 if pipelining else 0) \
            | (4 if size else 0) | (8 if eightbit else 0) \
            | (16 if utf8 else 0) | (32 if enhanced else 0)
        h2 = IDENT[ident] | (4 if bare_reject else 0) \
            | (8 if small_size else 0) | (16 if short_lines else 0) \
            | (32 if observe else 0) | (64 if few_errors else 0) \
            | (128 if one_backend else 0)
        self.b = bytearray([h0, h1, h2])
        if syn is not None:
            self.b += bytes([len(syn)]) + syn

    def raw(self, data):
        """client bytes (op 0), split into pieces of at most 256"""
        if isinstance(data, str):
            data = data.encode()
        for i in range(0, len(data), 256):
            piece = data[i:i + 256]
            self.b += bytes([0, len(piece) - 1]) + piece
        return self

    def line(self, *idx):
        for i in idx:
            self.b += bytes([1, i])
        return self

    def fill(self, kind, count):
        self.b += bytes([2, kind, count])
        return self

    def backend(self, sel=0):
        self.b += bytes([3, sel])
        return self

    def backend_close(self):
        self.b += bytes([4])
        return self

    def fire(self, rounds=1, keepalive=False):
        self.b += bytes([5, (rounds - 1) | (64 if keepalive else 0)])
        return self

    def shut(self):
        self.b += bytes([6])
        return self

    def reconnect(self):
        self.b += bytes([7])
        return self

    def toggle_read(self):
        self.b += bytes([8])
        return self

    def backend_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.b += bytes([9, len(data) - 1]) + data
        return self

    def toggle_auto_backend(self):
        self.b += bytes([10])
        return self

    def toggle_auto_time(self):
        self.b += bytes([11])
        return self

    def hold(self):
        self.b += bytes([14])
        return self

    def smuggle(self, rcpt=False):
        self.b += bytes([15, 1 if rcpt else 0])
        return self


def client_hello():
    """a real TLS ClientHello from Python's ssl, over memory BIOs"""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="mx.fuzz.example")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def txn(s, msg=b"Subject: t\r\n\r\nhello\r\n"):
    """a complete DATA transaction, one command at a time"""
    s.line(MAIL, RCPT, DATA).raw(msg + b".\r\n")
    return s


def seeds():
    out = {}
    hello = client_hello()

    # (1) EHLO, MAIL, then BDAT 3 ".\r\n" with no RCPT.
    out["i01-bdat-no-rcpt"] = Seed().line(EHLO, MAIL).raw("BDAT 3\r\n.\r\n")
    out["i01b-bdat-no-rcpt-last"] = Seed().line(EHLO, MAIL).raw(
        "BDAT 3 LAST\r\n.\r\n").line(QUIT)
    out["i01c-bdat-no-rcpt-nochunking"] = Seed(chunking=False).line(
        EHLO, MAIL).raw("BDAT 3\r\n.\r\n").line(RSET, QUIT)
    # (2) BDAT 70000000 and MBs of data; BDAT LONG_MAX, data, pipelined MAIL.
    s = Seed().line(EHLO, MAIL, RCPT, BDAT70M)
    for _ in range(4):
        s.fill(0x81, 15)
    out["i02-bdat-70m"] = s
    out["i02b-bdat-longmax"] = Seed().line(EHLO, MAIL, RCPT).hold().raw(
        "BDAT 9223372036854775807\r\n" + "x" * 200 +
        "\r\nMAIL FROM:<s9@smuggle.example>\r\n").hold().fill(0x81, 3)
    out["i02c-bdat-longmax-norcpt"] = Seed().line(EHLO).hold().raw(
        "BDAT 9223372036854775807\r\nabc\r\nMAIL FROM:<a@b>\r\n").hold()
    # (3) a refused BDAT chunk with an end-of-data look-alike and a MAIL.
    chunk = "x\r\n.\r\nMAIL FROM:<s1@smuggle.example>\r\n"
    out["i03-refused-chunk"] = Seed().line(EHLO).raw(
        "BDAT %d\r\n%s" % (len(chunk), chunk)).line(RCPT, QUIT)
    out["i03b-refused-chunk-after-mail"] = Seed().line(EHLO, MAIL).raw(
        "BDAT %d\r\n%s" % (len(chunk), chunk)).line(RCPT, DATA).raw(
        "hi\r\n.\r\n").line(QUIT)
    out["i03c-refused-chunk-nochunking"] = Seed(chunking=False).line(
        EHLO, MAIL, RCPT).raw("BDAT %d LAST\r\n%s" % (len(chunk), chunk)
                              ).line(QUIT)
    chunk2 = "x\r\n.\r\nRSET\r\nMAIL FROM:<s2@smuggle.example>\r\n"
    out["i03e-refused-chunk-rset-mail"] = Seed().line(EHLO).raw(
        "BDAT %d\r\n%s" % (len(chunk2), chunk2)).line(RCPT, QUIT)
    out["i03d-chunk-before-ehlo"] = Seed().raw(
        "BDAT %d\r\n%s" % (len(chunk), chunk)).line(EHLO, QUIT)
    # (4) DATA after BDAT.
    out["i04-data-after-bdat"] = Seed().line(EHLO, MAIL, RCPT).raw(
        "BDAT 5\r\nhello").line(DATA).raw("more\r\n.\r\n").line(QUIT)
    out["i04b-data-after-bdat-pipelined"] = Seed().line(EHLO, MAIL, RCPT
                                                        ).hold().raw(
        "BDAT 5\r\nhelloDATA\r\nx\r\n.\r\nQUIT\r\n").hold()
    # (5) a flood of pipelined HELP.
    s = Seed(cls="suspect").line(EHLO).hold()
    s.raw("HELP\r\n" * 600)
    out["i05-help-flood"] = s.hold()
    s = Seed(cls="normal", auto_time=False).line(EHLO).toggle_read().hold()
    s.raw("HELP\r\n" * 1200)
    out["i05b-help-flood-not-reading"] = s.hold().fire(8).toggle_read()
    # (6) STARTTLS then half a ClientHello.
    out["i06-starttls-half-hello"] = Seed(tls=True).line(
        EHLO, STARTTLS).raw(hello[:len(hello) // 2])
    out["i06b-starttls-half-hello-close"] = Seed(tls=True).line(
        EHLO, STARTTLS).raw(hello[:len(hello) // 2]).shut()
    out["i06c-starttls-pipelined"] = Seed(tls=True).line(EHLO).hold().line(
        STARTTLS, MAIL).hold().raw(hello)
    # (7) the backend does not answer a keepalive NOOP while the client
    # sends the next command; then it fails, or answers late.
    for name, sel in (("fail", 0x81), ("close", 0x85), ("421", 0x80),
                      ("late", 0x00), ("garbage", 0x84)):
        s = Seed().line(EHLO, MAIL, RCPT).toggle_auto_backend()
        s.fire(1, keepalive=True).line(RCPT2).line(DATA).raw(
            "x\r\n.\r\n").backend(sel).backend().backend().backend()
        s.toggle_auto_backend()
        out["i07-keepalive-" + name] = s.line(QUIT)
    s = Seed().line(EHLO, MAIL, RCPT, DATA).raw("x\r\n.\r\n")
    s.toggle_auto_backend().fire(1, keepalive=True).line(MAIL).backend(0x81)
    out["i07b-keepalive-between-messages"] = s.toggle_auto_backend()
    # (8) a big DATA without the final dot.
    s = Seed().line(EHLO, MAIL, RCPT, DATA)
    for _ in range(4):
        s.fill(0x81, 15)
    out["i08-big-data-no-dot"] = s.shut()
    out["i08b-big-data-small-limit"] = Seed(small_size=True).line(
        EHLO, MAIL, RCPT, DATA).fill(1, 20).raw(".\r\n").line(QUIT)
    # (9) a 1 MB line in two reads.
    out["i09-long-line"] = Seed().line(EHLO).fill(0x80, 7).fill(
        0x80, 7).line(CRLF, NOOP, QUIT)
    out["i09b-long-line-short-limit"] = Seed(short_lines=True).line(
        EHLO).fill(0, 0).raw("\r\n").line(MAIL, RCPT, DATA).raw(
        "x\r\n.\r\n")
    # (10) DATA trickled, byte by byte, with time passing.
    for cls in ("suspect", "hostile", "normal"):
        s = Seed(cls=cls).line(EHLO, MAIL, RCPT, DATA)
        for ch in b"Subject: trickle\r\n\r\nbody\r\n.\r\n":
            s.raw(bytes([ch])).fire(1)
        out["i10-trickle-" + cls] = s.line(QUIT)
    # More of issue 10's class: pregreet, 250 to DATA, backend gone in DATA,
    # half-close after pipelined commands, one backend for two sessions.
    out["i11-pregreet"] = Seed(cls="suspect", auto_time=False).raw(
        "EHLO early\r\n").fire(4).line(EHLO, QUIT)
    out["i12-backend-250-to-data"] = Seed().line(EHLO, MAIL, RCPT, DATA
                                                 ).toggle_auto_backend(
    ).raw("x\r\n.\r\n").backend(0x88).toggle_auto_backend().line(QUIT)
    out["i12b-backend-token-to-data"] = Seed().line(
        EHLO, MAIL, RCPT, DATA).toggle_auto_backend().raw(
        "x\r\n.\r\n").backend(0x8f).toggle_auto_backend().line(QUIT)
    out["i13-backend-closes-in-data"] = Seed().line(
        EHLO, MAIL, RCPT, DATA).toggle_auto_backend().raw(
        "x\r\n.\r\n").backend().backend_close().toggle_auto_backend(
    ).line(MAIL, QUIT)
    out["i14-halfclose-pipelined"] = Seed().hold().line(
        EHLO, MAIL, RCPT, DATA).raw("x\r\n.\r\n").line(QUIT).hold().shut()
    s = Seed(ident="none", one_backend=True)
    txn(s.line(EHLO)).line(QUIT).reconnect()
    out["i15-pooled-backend"] = txn(s.line(EHLO)).line(QUIT)

    # Complete transactions, so that coverage starts deep.
    for cls in CLASSES:
        for ident in IDENT:
            s = Seed(cls=cls, ident=ident)
            txn(s.line(EHLO)).line(MAIL, RCPT, RCPT2, BDAT3).raw(
                "abc").line(BDAT12LAST).raw("def\r\nghi\r\n").line(QUIT)
            out["ok-%s-%s" % (cls, ident)] = s
    s = Seed(cls="normal", v6=True, syn=bytes.fromhex(
        "4500003c1c4640004006b1e6c0a80001c0a800c7"
        "a0d20019000000000000000050022000917c0000"
        "020405b40402080a00000000000000000103030700"[:120]))
    out["ok-v6-syn"] = txn(s.line(EHLO)).line(QUIT)
    s = Seed(tls=True, auto_backend=False)
    s.line(HELO, MAIL).backend().backend().backend().backend().backend()
    s.line(RCPT).backend().line(DATA).backend().raw("x\r\n.\r\n").backend()
    out["ok-manual-backend"] = s.line(RSET).line(QUIT)
    s = Seed(cls="suspect").hold().line(EHLO, MAIL, RCPT, RCPT2, DATA)
    out["ok-pipelined"] = s.raw("body\r\n.\r\n").line(QUIT).hold()
    s = Seed().line(EHLO, MAIL, RCPT, DATA).raw("a\r\n").smuggle().smuggle(
        True).raw(".\r\n").line(EHLO, MAIL, RCPT).raw("BDAT 78 LAST\r\n")
    out["ok-markers-in-content"] = s.smuggle().smuggle(True).raw(
        "x" * 16).line(QUIT)
    return out


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    all_ = seeds()
    for name, s in sorted(all_.items()):
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(bytes(s.b))
    print("fuzz seeds: %d session dialogues" % len(all_))


if __name__ == "__main__":
    main()
