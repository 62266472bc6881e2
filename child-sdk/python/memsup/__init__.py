"""memsup: the child SDK for Python workers (standard library only).

The worker's end of the channel to memsup, as the C SDK (child-sdk/memsup.c)
is for C: the handshake, stats reports (heap figures and gauges), answers to
save and purge requests, checkpoints and the verified restore of a saved
state.  docs/protocol.md is the wire protocol this module speaks.

A process not started by memsup (no MEMSUP_FD) runs exactly as before: every
call is then a cheap no-op, restore() returns None.  The SDK never exits,
raises a signal or prints in the worker; once memsup has gone (EOF, EPIPE)
reporting is switched off and the calls return False.

Heap-in-use ("allocated" in stats):
  * tracemalloc tracing (tracemalloc.start() or PYTHONTRACEMALLOC=1): the
    bytes of Python allocations it traces, tracemalloc.get_traced_memory()[0].
    Exact for Python's own allocations; reading it is O(1), but tracing makes
    every allocation slower (typically 1.5-2x) and costs memory per block.
  * otherwise: glibc malloc's own statistics, mallinfo2() through ctypes
    (uordblks + hblkhd: bytes in use from malloc).  That covers objects over
    512 bytes (bytes, big lists and dicts), buffers and C extensions, but not
    pymalloc's small-object arenas, which CPython maps itself; their block
    count is the "py.blocks" gauge (sys.getallocatedblocks()).  mallinfo2()
    walks malloc's free lists, so a report costs a few microseconds on a
    tidy heap, more on a fragmented one.
Default gauges (each O(1)): "py.gc.gen0".."py.gc.gen2" (gc.get_count(): the
objects allocated minus freed since each generation was last collected),
"py.gc.collections" (collections so far, all generations), "py.blocks".

State: the save callback's bytes go into a sealed memfd, checksummed with
CRC-32C in pure Python (about 10 MB/s: a 10 MiB state costs a second on
save and again on restore), so keep the state compact.

Threading: one channel per process and a lock around it; all calls are
thread-safe.  The save callback runs on the thread that calls process() (the
event loop with serve(), the helper thread with start_thread()).
"""

import array
import ctypes
import ctypes.util
import errno
import fcntl
import gc
import json
import math
import mmap
import os
import select
import socket
import struct
import sys
import threading
import time
import tracemalloc

__all__ = [
    "init", "active", "on_save", "restore", "restore_status", "ready",
    "checkpoint", "gauge_set", "report", "heap", "fileno", "interval_ms",
    "process", "serve", "start_thread", "crc32c", "CorruptState",
    "WIRE_VERSION", "__version__",
]

__version__ = "0.1.0"
WIRE_VERSION = 1
FD_ENV = "MEMSUP_FD"
FRAME_HDR = 8
FRAME_MAX = 64 * 1024
FRAME_JSON = ord("J")
_HDR = struct.Struct(">2sBBI")
_WELCOME_TIMEOUT = 2.0
_DEFAULT_INTERVAL_MS = 50
_GAUGES_MAX = 64
_GAUGE_NAME_MAX = 64

# Linux values, used when the running Python lacks the names (F_ADD_SEALS
# and F_SEAL_* came with Python 3.8's fcntl, MFD_* with 3.8's os; the
# numbers are the kernel ABI: include/uapi/linux/fcntl.h, memfd.h).
_F_ADD_SEALS = getattr(fcntl, "F_ADD_SEALS", 1033)
_F_SEAL_SEAL = getattr(fcntl, "F_SEAL_SEAL", 0x1)
_F_SEAL_SHRINK = getattr(fcntl, "F_SEAL_SHRINK", 0x2)
_F_SEAL_GROW = getattr(fcntl, "F_SEAL_GROW", 0x4)
_F_SEAL_WRITE = getattr(fcntl, "F_SEAL_WRITE", 0x8)
_MFD_CLOEXEC = getattr(os, "MFD_CLOEXEC", 0x1)
_MFD_ALLOW_SEALING = getattr(os, "MFD_ALLOW_SEALING", 0x2)
_SEALS = _F_SEAL_WRITE | _F_SEAL_SHRINK | _F_SEAL_GROW | _F_SEAL_SEAL
_MSG_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0x4000)
_MSG_CMSG_CLOEXEC = getattr(socket, "MSG_CMSG_CLOEXEC", 0x40000000)


class CorruptState(ValueError):
    """The state memsup handed over failed its size or CRC-32C check."""


# CRC-32C (Castagnoli), reflected, init and final xor 0xFFFFFFFF: the same
# as memsup_crc32c() in child-sdk/wire.c.  Pure Python runs a table lookup
# per byte (~10-20 MB/s), so a worker with a large state should keep it
# compact; the C SDK uses SSE4.2 instead.
def _make_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return tuple(table)


_CRC_TABLE = _make_table()


def crc32c(data, crc=0):
    """CRC-32C of a bytes-like object, continuing from crc (start with 0)."""
    t = _CRC_TABLE
    c = crc ^ 0xFFFFFFFF
    for b in memoryview(data).cast("B"):
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


class _Glibc:
    """mallinfo2() and malloc_trim() through ctypes, when libc has them."""

    class _Mallinfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
            "fsmblks", "uordblks", "fordblks", "keepcost")]

    def __init__(self):
        self.mallinfo2 = self.malloc_trim = None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            self.mallinfo2 = libc.mallinfo2  # glibc >= 2.33
            self.mallinfo2.restype = self._Mallinfo2
            self.mallinfo2.argtypes = []
            self.malloc_trim = libc.malloc_trim
            self.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            pass

    def read(self):
        if self.mallinfo2 is None:
            return None
        mi = self.mallinfo2()
        return mi


class _Sdk:
    def __init__(self):
        self.lock = threading.Lock()       # channel, gauges, settings
        self.proc_lock = threading.Lock()  # input buffer, saves (taken first)
        self.local = threading.local()
        self.sock = None
        self.gone = False
        self.interval_ms = _DEFAULT_INTERVAL_MS
        self.limit = 0
        self.gen = 0
        self.metric = ""
        self.save_fn = None
        self.gauges = {}
        self.last_report = 0.0
        self.inbuf = bytearray()
        self.state_fd = -1
        self.has_state = False
        self.state_bytes = 0
        self.state_crc = 0
        self.restore_called = False
        self.restore_result = "none"
        self.restored_unix_us = 0
        self.restored_bytes = None
        self.thread = None
        self.glibc = None

    # -- channel -----------------------------------------------------------
    def disable(self, gone):
        """Stops using the channel.  Caller holds lock."""
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.gone = self.gone or gone

    def send(self, msg, pass_fd=-1, nonblock=False):
        """Sends msg (a dict) as one frame.  With nonblock a full socket
        drops the frame; a frame once started is always finished, or the
        stream would lose its framing.  Returns True when sent.  Caller
        holds lock."""
        if self.sock is None:
            return False
        payload = json.dumps(msg, separators=(",", ":")).encode()
        if len(payload) > FRAME_MAX:
            return False
        data = memoryview(_HDR.pack(b"ms", WIRE_VERSION, FRAME_JSON,
                                    len(payload)) + payload)
        sent = 0
        while sent < len(data):
            anc = []
            if sent == 0 and pass_fd >= 0:
                # The descriptor rides on the frame's first byte.
                anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                        array.array("i", [pass_fd]))]
            try:
                sent += self.sock.sendmsg(
                    [data[sent:]], anc, _MSG_NOSIGNAL | socket.MSG_DONTWAIT)
            except InterruptedError:
                continue
            except BlockingIOError:
                if nonblock and sent == 0:
                    return False
                # memsup pauses reading a flood; wait until it reads again.
                select.select([], [self.sock], [])
            except OSError:  # EPIPE, ECONNRESET: memsup has gone
                self.disable(True)
                return False
        return True

    def recv_some(self, keep_fd=False):
        """Reads what the socket holds into inbuf.  A descriptor that
        arrives is kept as the state fd when keep_fd and none is held,
        closed otherwise.  Returns bytes read (0: nothing waiting) or -1
        when memsup has gone.  Caller holds proc_lock and lock."""
        if self.sock is None:
            return -1
        try:
            data, anc, _flags, _addr = self.sock.recvmsg(
                FRAME_HDR + FRAME_MAX, socket.CMSG_SPACE(4 * 4),
                socket.MSG_DONTWAIT | _MSG_CMSG_CLOEXEC)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            data, anc = b"", []
        for level, kind, cdata in anc:
            if level != socket.SOL_SOCKET or kind != socket.SCM_RIGHTS:
                continue
            fds = array.array("i")
            fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
            for fd in fds:
                if keep_fd and self.state_fd < 0:
                    self.state_fd = fd
                else:
                    os.close(fd)
        if not data:
            self.disable(True)
            return -1
        self.inbuf += data
        return len(data)

    def next_frame(self):
        """Removes and returns the next whole frame's decoded JSON object
        ({} for a payload that is not one), or None when more bytes are
        needed.  Skips garbage, oversized headers and frames of another
        version or kind, as the C SDK does.  Caller holds proc_lock."""
        buf = self.inbuf
        while True:
            if not buf:
                return None
            if buf[0] != 0x6D or (len(buf) > 1 and buf[1] != 0x73):
                m = buf.find(b"m", 1)
                del buf[:m if m > 0 else len(buf)]
                continue
            if len(buf) < FRAME_HDR:
                return None
            _magic, version, kind, length = _HDR.unpack_from(buf)
            if length > FRAME_MAX:
                del buf[:FRAME_HDR]
                continue
            if len(buf) < FRAME_HDR + length:
                return None
            payload = bytes(buf[FRAME_HDR:FRAME_HDR + length])
            del buf[:FRAME_HDR + length]
            if version != WIRE_VERSION or kind != FRAME_JSON:
                continue
            try:
                obj = json.loads(payload)
            except ValueError:
                return {}
            return obj if isinstance(obj, dict) else {}

    # -- heap and stats ------------------------------------------------------
    def read_heap(self):
        if self.glibc is None:
            self.glibc = _Glibc()
        h = {"allocated": 0, "active": 0, "resident": 0, "retained": 0,
             "mapped": 0}
        mi = self.glibc.read()
        if mi is not None:
            used = mi.uordblks + mi.hblkhd
            h.update(allocated=used, active=used,
                     resident=mi.arena + mi.hblkhd, retained=mi.fordblks,
                     mapped=mi.arena + mi.hblkhd)
        if tracemalloc.is_tracing():
            h["allocated"] = tracemalloc.get_traced_memory()[0]
        return h

    def default_gauges(self):
        g0, g1, g2 = gc.get_count()
        return {
            "py.gc.gen0": g0, "py.gc.gen1": g1, "py.gc.gen2": g2,
            "py.gc.collections": sum(s.get("collections", 0)
                                     for s in gc.get_stats()),
            "py.blocks": sys.getallocatedblocks(),
        }

    def report_locked(self):
        self.last_report = time.monotonic()
        gauges = self.default_gauges()
        gauges.update(self.gauges)
        return self.send({"t": "stats", "heap": self.read_heap(),
                          "gauges": gauges}, nonblock=True)

    # -- requests -----------------------------------------------------------
    def take_welcome(self, w):
        """Settings and the state announcement from a welcome; False when it
        speaks another protocol version.  Caller holds lock."""
        if w.get("v") != WIRE_VERSION:
            return False
        iv = w.get("interval_ms")
        if isinstance(iv, (int, float)) and 1 <= iv <= 3600000:
            self.interval_ms = int(iv)
        self.limit = _uint(w.get("limit"))
        self.gen = _uint(w.get("gen"))
        if isinstance(w.get("metric"), str):
            self.metric = w["metric"]
        st = w.get("state")
        if isinstance(st, dict):
            # A state announced without its memfd is lost: restore() then
            # reports it corrupt.
            self.has_state = True
            self.state_bytes = _uint(st.get("bytes"))
            self.state_crc = _uint(st.get("crc32c"))
        elif self.state_fd >= 0:
            os.close(self.state_fd)
            self.state_fd = -1
        return True

    def save(self, seq, kind, reply_failure):
        """Runs the save callback into a sealed memfd and sends "state"; on
        failure sends "save_failed" when reply_failure, and re-raises the
        callback's exception when not (a checkpoint).  Caller holds
        proc_lock."""
        with self.lock:
            fn = self.save_fn
        fd = -1
        err = None
        try:
            if fn is None:
                raise LookupError("no save callback registered")
            self.local.in_save = True
            try:
                data = fn()
            finally:
                self.local.in_save = False
            view = memoryview(data).cast("B")
            fd = os.memfd_create("memsup-state",
                                 _MFD_CLOEXEC | _MFD_ALLOW_SEALING)
            off = 0
            while off < len(view):
                off += os.write(fd, view[off:])
            # Sealed, the bytes cannot change under memsup or the next
            # worker.
            fcntl.fcntl(fd, _F_ADD_SEALS, _SEALS)
            msg = {"t": "state", "seq": seq, "kind": kind,
                   "bytes": len(view), "crc32c": crc32c(view)}
        except Exception as e:  # the callback is the user's code
            if not reply_failure:
                if fd >= 0:
                    os.close(fd)
                raise
            err = e
            msg = {"t": "save_failed", "seq": seq,
                   "error": ("%s: %s" % (type(e).__name__, e))[:127]}
        try:
            with self.lock:
                return self.send(msg, fd if err is None else -1) and not err
        finally:
            if fd >= 0:
                os.close(fd)

    def purge(self, seq):
        with self.lock:
            before = self.read_heap()
            # Unreachable cycles first, then the freed memory back to the
            # system: what malloc_trim(0) is in the C SDK.
            gc.collect()
            if self.glibc.malloc_trim is not None:
                self.glibc.malloc_trim(0)
            after = self.read_heap()
            ok = self.send({"t": "purged", "seq": seq,
                            "resident_before": before["resident"],
                            "resident_after": after["resident"]})
            # memsup judges the purge by the next figures: send them now.
            return ok and self.report_locked()

    def handle(self, msg):
        t = msg.get("t")
        if t == "save":
            self.save(_uint(msg.get("seq")), "save", True)
        elif t == "purge":
            self.purge(_uint(msg.get("seq")))
        # Unknown types are ignored, so a newer memsup can talk to us.


def _uint(v):
    """A non-negative integer member, or 0 when absent or malformed."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return 0
    if isinstance(v, float) and (not math.isfinite(v) or v != int(v)):
        return 0
    return int(v) if 0 <= v < 2 ** 64 else 0


_g = _Sdk()


def _after_fork_in_child():
    """A forked child (multiprocessing, os.fork) is not the worker memsup
    started: it must not talk on the worker's channel, and locks another
    thread held at the fork would never be released in it.  It forgets the
    channel (closing only its own copy of the descriptor)."""
    global _g
    old = _g
    _g = _Sdk()
    _g.save_fn = old.save_fn
    if old.sock is not None:
        try:
            old.sock.close()
        except OSError:
            pass
    if old.state_fd >= 0:
        try:
            os.close(old.state_fd)
        except OSError:
            pass


os.register_at_fork(after_in_child=_after_fork_in_child)


def init(timeout=_WELCOME_TIMEOUT):
    """Connects to memsup when $MEMSUP_FD is set: sends hello and waits at
    most timeout seconds for the welcome (with the saved state, if any).
    Returns True when connected, False when not under memsup or when the
    channel is unusable (a bad MEMSUP_FD, no welcome, another protocol
    version)."""
    env = os.environ.get(FD_ENV)
    with _g.proc_lock, _g.lock:
        if _g.sock is not None:
            return True
        if env is None:
            return False
        # Our children must not inherit the channel or its name.
        del os.environ[FD_ENV]
        try:
            fd = int(env)
            if fd < 0:
                raise ValueError(env)
            sock = socket.socket(fileno=fd)
        except (ValueError, OSError):
            return False  # not a socket: some other file of the worker's
        if sock.family != socket.AF_UNIX:
            sock.detach()
            return False
        os.set_inheritable(fd, False)
        _g.sock = sock
        _g.glibc = _Glibc()
        hello = {"t": "hello", "v": WIRE_VERSION, "pid": os.getpid(),
                 "allocator": "python", "sdk": "python-" + __version__}
        ok = _g.send(hello) and _wait_welcome(timeout)
        if not ok:
            _g.disable(False)
            if _g.state_fd >= 0:
                os.close(_g.state_fd)
            _g.state_fd = -1
            _g.has_state = False
        return ok


def _wait_welcome(timeout):
    """Reads frames until the welcome; later frames stay buffered for
    process().  Caller holds both locks."""
    deadline = time.monotonic() + timeout
    while True:
        while True:
            msg = _g.next_frame()
            if msg is None:
                break
            if msg.get("t") == "welcome":
                return _g.take_welcome(msg)
        left = deadline - time.monotonic()
        if left <= 0 or _g.sock is None:
            return False
        select.select([_g.sock], [], [], left)
        if _g.recv_some(keep_fd=True) < 0:
            return False


def active():
    """True while connected to memsup."""
    with _g.lock:
        return _g.sock is not None


def fileno():
    """The channel's descriptor for an event loop (-1 when not active)."""
    with _g.lock:
        return _g.sock.fileno() if _g.sock is not None else -1


def interval_ms():
    """How often memsup wants stats (and process() called), in ms."""
    with _g.lock:
        return _g.interval_ms


def on_save(fn):
    """Registers fn() -> bytes-like, called when memsup asks for the state
    (and by checkpoint()).  An exception from fn tells memsup the save
    failed; memsup then keeps the last good state.  Usable as a decorator."""
    with _g.lock:
        _g.save_fn = fn
    return fn


def restore():
    """The state memsup handed over, verified (size and CRC-32C), as bytes;
    None when there is none (first start, not under memsup) or when it
    failed the check (restore_status() then says "corrupt")."""
    with _g.lock:
        if not _g.has_state:
            return None
        if _g.restore_called:
            return _g.restored_bytes
        _g.restore_called = True
        data = None
        try:
            if _g.state_fd < 0 or os.fstat(_g.state_fd).st_size != _g.state_bytes:
                raise CorruptState("size")
            if _g.state_bytes == 0:
                data = b""
            else:
                with mmap.mmap(_g.state_fd, _g.state_bytes,
                               prot=mmap.PROT_READ) as m:
                    data = bytes(m)
            if crc32c(data) != _g.state_crc:
                raise CorruptState("crc32c")
            _g.restore_result = "restored"
            _g.restored_unix_us = time.time_ns() // 1000
        except (CorruptState, OSError, ValueError):
            data = None
            _g.restore_result = "corrupt"
        _g.restored_bytes = data
        return data


def restore_status():
    """"restored", "corrupt" or "none": what ready() tells memsup."""
    with _g.lock:
        if _g.has_state and _g.restore_called:
            return _g.restore_result
        return "none"


def ready():
    """Tells memsup the worker is up (state restored or not) and releases
    the handed-over state.  Call it once, after restore()."""
    how = restore_status()
    with _g.lock:
        if _g.state_fd >= 0:
            os.close(_g.state_fd)
        _g.state_fd = -1
        _g.has_state = False
        _g.restored_bytes = None
        if _g.sock is None:
            return False
        # Stats first, so memsup's "after" figures (taken when ready
        # arrives) include heap-in-use after the restore.
        _g.report_locked()
        msg = {"t": "ready", "restore": how}
        if _g.restored_unix_us:
            msg["restored_unix_us"] = _g.restored_unix_us
        return _g.send(msg)


def checkpoint():
    """Calls the save callback now and hands the result to memsup as the
    state to restore if the worker later crashes.  Returns True when sent;
    an exception from the callback propagates."""
    if getattr(_g.local, "in_save", False):
        return False  # called from the save callback itself
    with _g.proc_lock:
        with _g.lock:
            if _g.sock is None:
                return False
        return _g.save(0, "checkpoint", False)


def gauge_set(name, value):
    """Sets a named gauge sent with every stats report.  Raises ValueError
    for an empty or too long name, a non-finite value, or a 65th gauge."""
    value = float(value)
    if not isinstance(name, str) or not name or not math.isfinite(value):
        raise ValueError("gauge needs a name and a finite value")
    if len(name.encode()) >= _GAUGE_NAME_MAX:
        raise ValueError("gauge name longer than %d bytes" % (_GAUGE_NAME_MAX - 1))
    with _g.lock:
        if name not in _g.gauges and len(_g.gauges) >= _GAUGES_MAX:
            raise ValueError("more than %d gauges" % _GAUGES_MAX)
        _g.gauges[name] = value


def report():
    """Sends a stats report now.  True when sent."""
    with _g.lock:
        return _g.sock is not None and _g.report_locked()


def heap():
    """The heap figures a report would send, as a dict."""
    with _g.lock:
        if _g.glibc is None:
            _g.glibc = _Glibc()
        return _g.read_heap()


def process():
    """One pass of the SDK's work, for event loops: call it when fileno()
    is readable and at least every interval_ms().  Reads what memsup sent,
    answers save and purge, and reports when the interval has passed.
    Never waits for input.  Returns active()."""
    if getattr(_g.local, "in_save", False):
        return active()
    with _g.proc_lock:
        # Bounded, so a flood from memsup cannot keep the caller here.
        for _ in range(64):
            with _g.lock:
                n = _g.recv_some()
            while True:
                msg = _g.next_frame()
                if msg is None:
                    break
                _g.handle(msg)
            if n <= 0:
                break
        with _g.lock:
            if (_g.sock is not None and (time.monotonic() - _g.last_report)
                    * 1000 >= _g.interval_ms):
                _g.report_locked()
            return _g.sock is not None


async def serve():
    """asyncio helper: run as a task (asyncio.create_task(memsup.serve()))
    after init().  Calls process() when memsup writes and every
    interval_ms(); the save callback runs on the event loop.  Returns when
    memsup has gone or was never there."""
    import asyncio
    loop = asyncio.get_running_loop()
    fd = fileno()
    if fd < 0:
        return
    wake = asyncio.Event()
    loop.add_reader(fd, wake.set)
    try:
        while process():
            try:
                await asyncio.wait_for(wake.wait(), interval_ms() / 1000.0)
            except asyncio.TimeoutError:
                pass
            wake.clear()
    finally:
        loop.remove_reader(fd)


def _thread_main():
    while True:
        fd = fileno()
        if fd < 0:
            return
        try:
            select.select([fd], [], [], interval_ms() / 1000.0)
        except (OSError, ValueError):
            pass  # closed under us: process() notices
        if not process():
            return


def start_thread():
    """For blocking workers: a daemon thread that does the polling and
    reporting; the save callback then runs on it.  True when running."""
    with _g.lock:
        if _g.sock is None:
            return False
        if _g.thread is None:
            _g.thread = threading.Thread(target=_thread_main,
                                         name="memsup", daemon=True)
            _g.thread.start()
        return True
