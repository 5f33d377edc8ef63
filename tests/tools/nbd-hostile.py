#!/usr/bin/env python3
"""nbd-hostile.py SOCKET CASE [ARG...]: one hostile NBD client scenario.

Speaks the NBD protocol by hand over a raw unix socket (or tcp:HOST:PORT)
and checks that the server answers each malformed message with an error
reply or a closed connection, as the case expects.  Exit status 0 when
the server behaved, 1 (with the reason on stderr) when it did not.

Cases (EXPORT is the export name, SIZE its size in bytes):
  option-bad-magic        option header with a wrong magic: closed
  client-flags            unknown client flags: closed
  option-unknown          unknown option: ERR_UNSUP, then ABORT works
  option-too-big          a 1 MiB option: ERR_TOO_BIG or closed, closed
  option-short            disconnect in the middle of an option
  starttls                STARTTLS: ERR_POLICY
  go-malformed EXPORT     GO with lengths that lie: ERR_INVALID each,
                          unknown export: ERR_UNKNOWN, then GO works
  meta-malformed EXPORT   SET_META_CONTEXT before structured replies
                          and with lying query lengths: ERR_INVALID
  list EXPORT...          OPT_LIST names exactly these exports
  requests EXPORT SIZE    bad requests in transmission, each answered
                          with the right error, the connection stays up
  request-bad-magic EXPORT      bad request magic: closed
  write-too-big EXPORT          WRITE of 4 GiB - 1: EINVAL and closed
  write-short EXPORT            disconnect in the middle of a payload
  garbage EXPORT SEED           random bytes after GO: closed or errors
  deep EXPORT SIZE              200 reads on the wire at once (replies
                                read meanwhile): each handle answered once
  big EXPORT                    8 writes of 32 MiB (the limit) at once,
                                more than the server buffers: all done,
                                then a 32 MiB read returns one of them
  export-name EXPORT SIZE       the old way in (NBD_OPT_EXPORT_NAME, no
                                NO_ZEROES: 124 zero bytes follow), then
                                simple replies; an unknown name: closed
  readonly EXPORT               writes, trims, zeroes: EPERM
  hold EXPORT SIZE FLAGFILE     a well-behaved client: writes a pattern,
                                waits for FLAGFILE, reads it back
  flood EXPORT MAX              MAX+4 idle connections: those past MAX
                                are closed unanswered; once the idle ones
                                go, a client is served again
  stall EXPORT                  sends 1 MiB reads and never reads a reply,
                                until its requests no longer go out; then
                                holds the connection (run it in the
                                background; it prints "stalled")
  retire EXPORT CONTROL         remove-disk EXPORT through the control
                                socket while connected: the reply is ok,
                                then requests get ESHUTDOWN or the
                                connection is closed
"""
import os
import random
import socket
import struct
import sys
import time

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPMAGIC = 0x3E889045565A9
REQMAGIC = 0x25609513
SIMPLE = 0x67446698
STRUCT = 0x668E33EF

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS = 1, 2, 3, 5
OPT_INFO, OPT_GO, OPT_SR, OPT_LIST_META, OPT_SET_META = 6, 7, 8, 9, 10
REP_ACK, REP_SERVER, REP_INFO, REP_META = 1, 2, 3, 4
ERR = 1 << 31
ERR_UNSUP, ERR_POLICY, ERR_INVALID = ERR + 1, ERR + 2, ERR + 3
ERR_UNKNOWN, ERR_TOO_BIG = ERR + 6, ERR + 9

CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM = 0, 1, 2, 3, 4
CMD_CACHE, CMD_WZ, CMD_BS = 5, 6, 7
F_FUA, F_NO_HOLE, F_DF, F_REQ_ONE, F_FAST_ZERO = 1, 2, 4, 8, 16
EPERM, EIO, EINVAL, ENOSPC, EOVERFLOW = 1, 5, 22, 28, 75

TIMEOUT = 30


class Fail(Exception):
    pass


class Closed(Exception):
    pass


def connect(addr):
    if addr.startswith("tcp:"):
        host, port = addr[4:].rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    else:
        if addr.startswith("unix:"):
            addr = addr[5:]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect(addr)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        try:
            chunk = s.recv(n - len(buf))
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def expect_closed(s, what):
    """The server hangs up (it may send some replies first)."""
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return
        except socket.timeout:
            break
        if not chunk:
            return
    raise Fail("%s: the server did not close the connection" % what)


def greet(s, cflags=3):
    magic, opt, hflags = struct.unpack(">QQH", recv_exact(s, 18))
    if magic != NBDMAGIC or opt != IHAVEOPT:
        raise Fail("bad greeting %x %x" % (magic, opt))
    if hflags != 3:
        raise Fail("handshake flags %#x, expected FIXED_NEWSTYLE|NO_ZEROES" % hflags)
    s.sendall(struct.pack(">I", cflags))


def send_opt(s, opt, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)


def read_rep(s, opt):
    magic, ropt, rtype, rlen = struct.unpack(">QIII", recv_exact(s, 20))
    if magic != REPMAGIC or ropt != opt:
        raise Fail("bad option reply magic %x option %d (sent %d)" % (magic, ropt, opt))
    if rlen > 1 << 20:
        raise Fail("option reply of %d bytes" % rlen)
    return rtype, recv_exact(s, rlen)


def expect_rep(s, opt, want, what):
    rtype, data = read_rep(s, opt)
    if rtype != want:
        raise Fail("%s: reply type %#x, expected %#x (%r)" % (what, rtype, want, data))
    return data


def go_data(name, infos=()):
    n = name.encode()
    return struct.pack(">I", len(n)) + n + struct.pack(">H", len(infos)) + b"".join(
        struct.pack(">H", i) for i in infos)


def meta_data(name, queries):
    n = name.encode()
    d = struct.pack(">I", len(n)) + n + struct.pack(">I", len(queries))
    for q in queries:
        d += struct.pack(">I", len(q)) + q
    return d


class Conn:
    """A client in transmission: structured replies and base:allocation."""

    def __init__(self, addr, export, structured=True, meta=True):
        self.s = connect(addr)
        greet(self.s)
        self.structured = structured
        if structured:
            send_opt(self.s, OPT_SR)
            expect_rep(self.s, OPT_SR, REP_ACK, "structured reply")
            if meta:
                send_opt(self.s, OPT_SET_META, meta_data(export, [b"base:allocation"]))
                d = expect_rep(self.s, OPT_SET_META, REP_META, "set meta context")
                self.meta_id = struct.unpack(">I", d[:4])[0]
                if d[4:] != b"base:allocation":
                    raise Fail("context %r" % d[4:])
                expect_rep(self.s, OPT_SET_META, REP_ACK, "set meta context end")
        send_opt(self.s, OPT_GO, go_data(export))
        self.size = None
        while True:
            rtype, d = read_rep(self.s, OPT_GO)
            if rtype == REP_ACK:
                break
            if rtype != REP_INFO:
                raise Fail("GO %s: reply %#x %r" % (export, rtype, d))
            if struct.unpack(">H", d[:2])[0] == 0:
                self.size, self.tflags = struct.unpack(">QH", d[2:])
        if self.size is None:
            raise Fail("GO: no NBD_INFO_EXPORT")
        self.handle = 100

    def send(self, cmd, offset, length, flags=0, payload=b"", handle=None):
        if handle is None:
            self.handle += 1
            handle = self.handle
        self.s.sendall(struct.pack(">IHHQQI", REQMAGIC, flags, cmd, handle,
                                   offset, length) + payload)
        return handle

    def reply(self, read_len=None):
        """One whole reply: (handle, error, data, extents)."""
        magic = struct.unpack(">I", recv_exact(self.s, 4))[0]
        if magic == SIMPLE:
            err, handle = struct.unpack(">IQ", recv_exact(self.s, 12))
            data = b""
            if err == 0 and read_len:
                data = recv_exact(self.s, read_len)
            return handle, err, data, []
        if magic != STRUCT:
            raise Fail("bad reply magic %#x" % magic)
        err, data, ext, handle = 0, b"", [], None
        while True:
            flags, rtype, h, length = struct.unpack(">HHQI", recv_exact(self.s, 16))
            handle = h
            payload = recv_exact(self.s, length)
            if rtype == 1:
                data += payload[8:]
            elif rtype == 2:
                data += bytes(struct.unpack(">QI", payload)[1])
            elif rtype == 5:
                for i in range(4, len(payload), 8):
                    ext.append(struct.unpack(">II", payload[i:i + 8]))
            elif rtype & 0x8000:
                err = struct.unpack(">I", payload[:4])[0]
                if err == 0:
                    raise Fail("error chunk with error 0")
            elif rtype != 0:
                raise Fail("unknown chunk type %d" % rtype)
            if flags & 1:
                return handle, err, data, ext
            magic = struct.unpack(">I", recv_exact(self.s, 4))[0]
            if magic != STRUCT:
                raise Fail("bad chunk magic %#x" % magic)

    def call(self, cmd, offset, length, flags=0, payload=b""):
        h = self.send(cmd, offset, length, flags, payload)
        rh, err, data, ext = self.reply(length if cmd == CMD_READ else None)
        if rh != h:
            raise Fail("reply for handle %d, expected %d" % (rh, h))
        return err, data, ext


def expect_err(c, what, want, cmd, offset, length, flags=0, payload=b""):
    err, _, _ = c.call(cmd, offset, length, flags, payload)
    if err != want:
        raise Fail("%s: error %d, expected %d" % (what, err, want))


def case_option_bad_magic(addr):
    s = connect(addr)
    greet(s)
    s.sendall(struct.pack(">QII", 0x1122334455667788, OPT_GO, 0))
    expect_closed(s, "bad option magic")


def case_client_flags(addr):
    s = connect(addr)
    greet(s, cflags=0x80000001)
    expect_closed(s, "unknown client flags")


def case_option_unknown(addr):
    s = connect(addr)
    greet(s)
    send_opt(s, 0x7777, b"junk")
    expect_rep(s, 0x7777, ERR_UNSUP, "unknown option")
    send_opt(s, 4)  # PEEK_EXPORT, withdrawn
    expect_rep(s, 4, ERR_UNSUP, "withdrawn option")
    send_opt(s, OPT_ABORT)
    expect_rep(s, OPT_ABORT, REP_ACK, "abort")
    expect_closed(s, "after abort")


def case_option_too_big(addr):
    s = connect(addr)
    greet(s)
    s.sendall(struct.pack(">QII", IHAVEOPT, OPT_GO, 1 << 20))
    try:
        expect_rep(s, OPT_GO, ERR_TOO_BIG, "1 MiB option")
    except Closed:
        pass
    expect_closed(s, "1 MiB option")


def case_option_short(addr):
    s = connect(addr)
    greet(s)
    s.sendall(struct.pack(">QII", IHAVEOPT, OPT_GO, 100) + b"x" * 10)
    s.close()


def case_starttls(addr):
    s = connect(addr)
    greet(s)
    send_opt(s, OPT_STARTTLS)
    expect_rep(s, OPT_STARTTLS, ERR_POLICY, "starttls")


def case_go_malformed(addr, export):
    s = connect(addr)
    greet(s)
    n = export.encode()
    bad = [
        ("name length past the option", struct.pack(">I", 1000) + n + b"\0\0"),
        ("name length 2^32-1", struct.pack(">I", 0xFFFFFFFF) + b"\0\0"),
        ("too short", b"\0\0\0"),
        ("info count too large", struct.pack(">I", len(n)) + n + struct.pack(">H", 50)),
        ("trailing bytes", go_data(export) + b"zz"),
        ("NUL in the name", go_data(export + "\0junk")),
    ]
    for what, data in bad:
        for opt in (OPT_INFO, OPT_GO):
            send_opt(s, opt, data)
            expect_rep(s, opt, ERR_INVALID, what)
    for opt in (OPT_INFO, OPT_GO):
        send_opt(s, opt, go_data("no-such-export"))
        expect_rep(s, opt, ERR_UNKNOWN, "unknown export")
    send_opt(s, OPT_LIST, b"x")
    expect_rep(s, OPT_LIST, ERR_INVALID, "LIST with data")
    send_opt(s, OPT_SR, b"x")
    expect_rep(s, OPT_SR, ERR_INVALID, "STRUCTURED_REPLY with data")
    # INFO with every item asked: the export, its name and block sizes.
    send_opt(s, OPT_INFO, go_data(export, (0, 1, 2, 3)))
    seen = set()
    while True:
        rtype, d = read_rep(s, OPT_INFO)
        if rtype == REP_ACK:
            break
        if rtype != REP_INFO:
            raise Fail("INFO: reply %#x" % rtype)
        info = struct.unpack(">H", d[:2])[0]
        seen.add(info)
        if info == 1 and d[2:] != n:
            raise Fail("INFO_NAME %r" % d[2:])
        if info == 3 and struct.unpack(">III", d[2:]) != (1, 4096, 32 << 20):
            raise Fail("INFO_BLOCK_SIZE %r" % (struct.unpack(">III", d[2:]),))
    if not {0, 1, 2, 3} <= seen:
        raise Fail("INFO items %r" % seen)
    send_opt(s, OPT_GO, go_data(export))
    while read_rep(s, OPT_GO)[0] != REP_ACK:
        pass


def case_meta_malformed(addr, export):
    s = connect(addr)
    greet(s)
    send_opt(s, OPT_SET_META, meta_data(export, [b"base:allocation"]))
    expect_rep(s, OPT_SET_META, ERR_INVALID, "meta context before structured replies")
    send_opt(s, OPT_SR)
    expect_rep(s, OPT_SR, REP_ACK, "structured reply")
    n = export.encode()
    bad = [
        ("query length past the option",
         struct.pack(">I", len(n)) + n + struct.pack(">II", 1, 500) + b"base:allocation"),
        ("query count past the option",
         struct.pack(">I", len(n)) + n + struct.pack(">I", 0xFFFFFFFF)),
        ("name length past the option", struct.pack(">II", 0xFFFFFFF0, 0)),
        ("trailing bytes", meta_data(export, [b"base:allocation"]) + b"z"),
    ]
    for what, data in bad:
        for opt in (OPT_LIST_META, OPT_SET_META):
            send_opt(s, opt, data)
            expect_rep(s, opt, ERR_INVALID, what)
    send_opt(s, OPT_SET_META, meta_data("no-such-export", [b"base:allocation"]))
    expect_rep(s, OPT_SET_META, ERR_UNKNOWN, "meta context of an unknown export")
    # Unknown namespaces are ignored, not refused.
    send_opt(s, OPT_LIST_META, meta_data(export, [b"x-nope:thing"]))
    expect_rep(s, OPT_LIST_META, REP_ACK, "unknown namespace")
    send_opt(s, OPT_LIST_META, meta_data(export, []))
    d = expect_rep(s, OPT_LIST_META, REP_META, "list all contexts")
    if d[4:] != b"base:allocation":
        raise Fail("listed %r" % d)
    expect_rep(s, OPT_LIST_META, REP_ACK, "list end")


def case_list(addr, *exports):
    s = connect(addr)
    greet(s)
    send_opt(s, OPT_LIST)
    names = []
    while True:
        rtype, d = read_rep(s, OPT_LIST)
        if rtype == REP_ACK:
            break
        if rtype != REP_SERVER:
            raise Fail("LIST reply %#x" % rtype)
        ln = struct.unpack(">I", d[:4])[0]
        names.append(d[4:4 + ln].decode())
    if sorted(names) != sorted(exports):
        raise Fail("LIST gave %r, expected %r" % (names, list(exports)))


def case_requests(addr, export, size):
    size = int(size)
    for structured in (True, False):
        c = Conn(addr, export, structured=structured)
        ro = c.tflags & 2
        expect_err(c, "read past the end", EINVAL, CMD_READ, size - 512, 4096)
        expect_err(c, "read at 2^64-512", EINVAL, CMD_READ, (1 << 64) - 512, 4096)
        expect_err(c, "read of 64 MiB", EINVAL, CMD_READ, 0, 64 << 20)
        expect_err(c, "read of 0 bytes", EINVAL, CMD_READ, 0, 0)
        expect_err(c, "unknown command", EINVAL, 99, 0, 512)
        expect_err(c, "unknown flag", EINVAL, CMD_READ, 0, 512, flags=0x4000)
        expect_err(c, "REQ_ONE on a read", EINVAL, CMD_READ, 0, 512, flags=F_REQ_ONE)
        expect_err(c, "trim past the end", EPERM if ro else EINVAL, CMD_TRIM, size, 4096)
        expect_err(c, "cache past the end", EINVAL, CMD_CACHE, size - 1, 2)
        if not ro:
            expect_err(c, "write past the end", ENOSPC, CMD_WRITE, size, 512,
                       payload=b"x" * 512)
            expect_err(c, "zeroes past the end", ENOSPC, CMD_WZ, size - 512, 1024)
        if structured:
            expect_err(c, "block status past the end", EINVAL, CMD_BS, size, 512)
            expect_err(c, "block status overflow", EINVAL, CMD_BS, (1 << 64) - 1, 2)
            expect_err(c, "block status of 0 bytes", EINVAL, CMD_BS, 0, 0)
            err, _, ext = c.call(CMD_BS, 0, min(size, 1 << 30), flags=F_REQ_ONE)
            if err or len(ext) != 1 or ext[0][0] > min(size, 1 << 30):
                raise Fail("block status REQ_ONE: error %d, extents %r" % (err, ext))
        else:
            expect_err(c, "block status without a context", EINVAL, CMD_BS, 0, 512)
            expect_err(c, "DF without structured replies", EINVAL, CMD_READ, 0, 512,
                       flags=F_DF)
        # After all that, the connection still works.
        err, data, _ = c.call(CMD_READ, size - 512, 512)
        if err or len(data) != 512:
            raise Fail("read after the errors: error %d, %d bytes" % (err, len(data)))
        err, _, _ = c.call(CMD_CACHE, 0, min(size, 3 << 20))
        if err:
            raise Fail("cache: error %d" % err)
        err, _, _ = c.call(CMD_FLUSH, 0, 0)
        if err:
            raise Fail("flush: error %d" % err)
        c.send(CMD_DISC, 0, 0)
        expect_closed(c.s, "after NBD_CMD_DISC")


def case_request_bad_magic(addr, export):
    c = Conn(addr, export)
    c.s.sendall(struct.pack(">IHHQQI", 0xDEADBEEF, 0, CMD_READ, 1, 0, 512))
    expect_closed(c.s, "bad request magic")


def case_write_too_big(addr, export):
    c = Conn(addr, export)
    h = c.send(CMD_WRITE, 0, 0xFFFFFFFF, payload=b"x" * 4096)
    try:
        rh, err, _, _ = c.reply()
        if rh != h or err != EINVAL:
            raise Fail("4 GiB write: handle %d error %d" % (rh, err))
    except Closed:
        pass
    expect_closed(c.s, "4 GiB write")


def case_write_short(addr, export):
    c = Conn(addr, export)
    c.send(CMD_WRITE, 0, 65536, payload=b"y" * 1000)
    c.s.close()


def case_garbage(addr, export, seed):
    rnd = random.Random(int(seed))
    c = Conn(addr, export)
    try:
        for _ in range(20):
            n = rnd.randrange(1, 200)
            c.s.sendall(bytes(rnd.randrange(256) for _ in range(n)))
    except (BrokenPipeError, ConnectionResetError):
        return
    c.s.shutdown(socket.SHUT_WR)
    expect_closed(c.s, "garbage")


def case_deep(addr, export, size):
    """200 reads on the wire at once.  Replies are read by a second
    thread while the requests go out: a client that never reads stalls
    its own connection (the server buffers only so much), which is fair,
    but not what this case is about."""
    import threading
    size = int(size)
    c = Conn(addr, export)
    rnd = random.Random(5)
    handles = set()
    result = {}

    def reader():
        got = set()
        try:
            for _ in range(200):
                h, err, data, _ = c.reply(4096)
                if h in got:
                    raise Fail("handle %d answered twice" % h)
                if err or len(data) != 4096:
                    raise Fail("read %d: error %d, %d bytes" % (h, err, len(data)))
                got.add(h)
        except (Fail, Closed, OSError) as e:
            result["error"] = e
        result["got"] = got

    t = threading.Thread(target=reader)
    t.start()
    for _ in range(200):
        off = rnd.randrange(0, size // 4096) * 4096
        handles.add(c.send(CMD_READ, off, 4096))
    t.join(TIMEOUT)
    if t.is_alive():
        raise Fail("replies did not all come")
    if "error" in result:
        raise Fail(str(result["error"]))
    if result["got"] != handles:
        raise Fail("answered handles differ from those sent")


def case_big(addr, export):
    import threading
    c = Conn(addr, export)
    n, size = 8, 32 << 20
    result = {}

    def reader():
        try:
            for _ in range(n):
                h, err, _, _ = c.reply()
                if err:
                    raise Fail("32 MiB write %d: error %d" % (h, err))
        except (Fail, Closed, OSError) as e:
            result["error"] = e

    t = threading.Thread(target=reader)
    t.start()
    for i in range(n):
        c.send(CMD_WRITE, 0, size, payload=bytes([0x40 + i]) * size)
    t.join(TIMEOUT * 4)
    if t.is_alive() or "error" in result:
        raise Fail(str(result.get("error", "replies did not all come")))
    err, data, _ = c.call(CMD_READ, 0, size)
    if err or len(data) != size or data.count(data[:1]) != size or \
            not 0x40 <= data[0] < 0x40 + n:
        raise Fail("32 MiB read back: error %d" % err)


def case_export_name(addr, export, size):
    s = connect(addr)
    greet(s, cflags=1)
    send_opt(s, OPT_EXPORT_NAME, b"no-such-export")
    expect_closed(s, "EXPORT_NAME of an unknown export")
    s = connect(addr)
    greet(s, cflags=1)
    send_opt(s, OPT_EXPORT_NAME, export.encode())
    got_size, tflags = struct.unpack(">QH", recv_exact(s, 10))
    if got_size != int(size) or not tflags & 1:
        raise Fail("EXPORT_NAME: size %d flags %#x" % (got_size, tflags))
    if recv_exact(s, 124) != bytes(124):
        raise Fail("EXPORT_NAME: the 124 bytes are not zeros")
    s.sendall(struct.pack(">IHHQQI", REQMAGIC, 0, CMD_READ, 7, 0, 512))
    magic, err, handle = struct.unpack(">IIQ", recv_exact(s, 16))
    if magic != SIMPLE or err or handle != 7:
        raise Fail("simple reply %#x error %d handle %d" % (magic, err, handle))
    recv_exact(s, 512)


def case_readonly(addr, export):
    c = Conn(addr, export)
    if not c.tflags & 2:
        raise Fail("NBD_FLAG_READ_ONLY is not set")
    expect_err(c, "write", EPERM, CMD_WRITE, 0, 512, payload=b"z" * 512)
    expect_err(c, "write zeroes", EPERM, CMD_WZ, 0, 512)
    expect_err(c, "trim", EPERM, CMD_TRIM, 0, 512)
    err, _, _ = c.call(CMD_READ, 0, 512)
    if err:
        raise Fail("read on a read-only disk: error %d" % err)


def case_hold(addr, export, size, flagfile):
    size = int(size)
    c = Conn(addr, export)
    pattern = bytes((i * 7 + 3) & 0xFF for i in range(65536))
    off = size - 65536
    err, _, _ = c.call(CMD_WRITE, off, 65536, flags=F_FUA, payload=pattern)
    if err:
        raise Fail("hold: write error %d" % err)
    deadline = time.time() + 120
    while not os.path.exists(flagfile):
        if time.time() > deadline:
            raise Fail("hold: %s never appeared" % flagfile)
        time.sleep(0.05)
    err, data, _ = c.call(CMD_READ, off, 65536)
    if err or data != pattern:
        raise Fail("hold: read back error %d, data differs: %s" % (err, data != pattern))
    c.send(CMD_DISC, 0, 0)


def case_flood(addr, export, limit):
    limit = int(limit)
    idle = []
    for _ in range(limit):
        s = connect(addr)
        recv_exact(s, 18)  # greeted, then silent
        idle.append(s)
    for _ in range(4):
        s = connect(addr)
        try:
            data = s.recv(18)
        except ConnectionResetError:
            data = b""
        if data:
            raise Fail("connection %d past the limit %d was served" % (len(idle) + 1, limit))
        s.close()
    for s in idle:
        s.close()
    deadline = time.time() + TIMEOUT
    while True:
        try:
            c = Conn(addr, export)
            break
        except (Closed, Fail, OSError):
            if time.time() > deadline:
                raise Fail("no client served after the flood ended")
            time.sleep(0.1)
    err, _, _ = c.call(CMD_READ, 0, 512)
    if err:
        raise Fail("read after the flood: error %d" % err)


def case_stall(addr, export):
    c = Conn(addr, export)
    c.s.settimeout(3)
    try:
        for _ in range(100000):
            c.send(CMD_READ, 0, 1 << 20)
    except socket.timeout:
        pass
    print("stalled", flush=True)
    time.sleep(600)


def case_retire(addr, export, control):
    c = Conn(addr, export)
    err, _, _ = c.call(CMD_READ, 0, 512)
    if err:
        raise Fail("read before remove-disk: error %d" % err)
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ctl.settimeout(TIMEOUT)
    ctl.connect(control)
    ctl.sendall(b'{"cmd":"remove-disk","name":"%s"}\n' % export.encode())
    line = b""
    while not line.endswith(b"\n"):
        chunk = ctl.recv(4096)
        if not chunk:
            raise Fail("control socket closed")
        line += chunk
    if b'"ok":true' not in line.replace(b" ", b""):
        raise Fail("remove-disk: %r" % line)
    try:
        err, _, _ = c.call(CMD_READ, 0, 512)
    except (Closed, BrokenPipeError, ConnectionResetError):
        return
    if err != 108:
        raise Fail("read after remove-disk: error %d, expected ESHUTDOWN" % err)
    expect_closed(c.s, "after ESHUTDOWN")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    addr, case = sys.argv[1], sys.argv[2].replace("-", "_")
    fn = globals().get("case_" + case)
    if not fn:
        sys.exit("unknown case %s" % sys.argv[2])
    try:
        fn(addr, *sys.argv[3:])
    except (Fail, Closed, OSError) as e:
        print("%s: %s" % (sys.argv[2], e), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
