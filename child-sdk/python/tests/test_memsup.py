"""Unit tests of the Python SDK's pure parts; tests/conformance/ checks it
against the protocol, tests/it_sdks.c under the real memsup."""
import json
import os
import socket
import struct
import threading
import tracemalloc
import unittest

import memsup


def frame(obj, version=1, kind=b"J"):
    payload = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
    return b"ms" + bytes([version]) + kind + struct.pack(">I", len(payload)) + payload


class Crc32c(unittest.TestCase):
    def test_check_value_matches_memsup(self):
        self.assertEqual(memsup.crc32c(b"123456789"), 0xE3069283)

    def test_continues_from_a_previous_crc(self):
        whole = memsup.crc32c(b"hello world")
        self.assertEqual(memsup.crc32c(b" world", memsup.crc32c(b"hello")), whole)


class WithoutMemsup(unittest.TestCase):
    def test_every_call_is_a_no_op(self):
        self.assertNotIn("MEMSUP_FD", os.environ)
        self.assertFalse(memsup.init())
        self.assertFalse(memsup.active())
        self.assertIsNone(memsup.restore())
        self.assertEqual(memsup.restore_status(), "none")
        self.assertFalse(memsup.ready())
        self.assertFalse(memsup.checkpoint())
        self.assertFalse(memsup.report())
        self.assertFalse(memsup.process())
        self.assertFalse(memsup.start_thread())
        self.assertEqual(memsup.fileno(), -1)

    def test_heap_is_tracemallocs_figure_while_tracing(self):
        tracemalloc.start()
        try:
            base = memsup.heap()["allocated"]
            blob = b"x" * (4 << 20)
            grown = memsup.heap()["allocated"]
            traced = tracemalloc.get_traced_memory()[0]
            self.assertGreaterEqual(grown - base, len(blob))
            # Tracing counts only what was allocated since it started.
            self.assertLess(abs(grown - traced), 64 << 10)
            del blob
        finally:
            tracemalloc.stop()

    def test_heap_figures_are_read(self):
        h = memsup.heap()
        self.assertGreater(h["allocated"], 0)
        self.assertLessEqual(h["allocated"], h["resident"] + h["allocated"])


class Gauges(unittest.TestCase):
    def test_bad_names_and_values_are_refused(self):
        for name, value in (("", 1), ("x" * 64, 1), ("ok", float("nan")),
                            ("ok", float("inf"))):
            with self.assertRaises(ValueError):
                memsup.gauge_set(name, value)
        memsup.gauge_set("ok", 2)


class Frames(unittest.TestCase):
    def parse(self, data):
        sdk = memsup._Sdk()
        sdk.inbuf += data
        out = []
        while True:
            m = sdk.next_frame()
            if m is None:
                return out, bytes(sdk.inbuf)
            out.append(m)

    def test_garbage_other_versions_and_kinds_are_skipped(self):
        data = (b"xyz" + frame({"t": "save", "seq": 1}, version=2) +
                frame({"t": "save", "seq": 2}, kind=b"B") +
                frame(b"not json") + frame({"t": "purge", "seq": 3}))
        msgs, rest = self.parse(data)
        self.assertEqual(msgs, [{}, {"t": "purge", "seq": 3}])
        self.assertEqual(rest, b"")

    def test_partial_frame_waits_for_more(self):
        f = frame({"t": "save", "seq": 9})
        msgs, rest = self.parse(f[:-1])
        self.assertEqual(msgs, [])
        self.assertEqual(rest, f[:-1])

    def test_oversized_header_is_dropped(self):
        big = b"ms\x01J" + struct.pack(">I", 65537)
        msgs, _ = self.parse(big + frame({"t": "purge", "seq": 4}))
        self.assertEqual(msgs, [{"t": "purge", "seq": 4}])


class Fork(unittest.TestCase):
    """A child forked from a connected worker must not use its channel."""

    def tearDown(self):
        self.memsup_end.close()
        memsup.process()  # sees the end of the channel and lets it go
        memsup._g = memsup._Sdk()

    def test_forked_child_forgets_the_channel(self):
        self.memsup_end, worker_end = socket.socketpair()
        os.environ["MEMSUP_FD"] = str(worker_end.detach())

        def welcome():
            self.memsup_end.recv(4096)  # the hello
            self.memsup_end.sendall(frame({"t": "welcome", "v": 1, "gen": 1,
                                           "interval_ms": 50, "state": None}))

        t = threading.Thread(target=welcome)
        t.start()
        self.assertTrue(memsup.init())
        t.join()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(w, b"%d" % memsup.active())
            os._exit(0)
        os.close(w)
        self.assertEqual(os.read(r, 8), b"0")
        os.close(r)
        os.waitpid(pid, 0)
        self.assertTrue(memsup.active())


if __name__ == "__main__":
    unittest.main()
