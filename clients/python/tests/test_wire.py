"""test_wire.py — the wire format without a daemon: frames grow by
appending (a HELLO_OK without max_batch_statements or an ERROR without
vendor_code from an older daemon, fields appended by a newer one), values
encode as protocol.md's example says, malformed frames are refused."""
import struct
import unittest

from dbpool import wire


def s(b):
    return struct.pack(">I", len(b)) + b


class Wire(unittest.TestCase):
    def test_query_frame(self):
        # protocol.md's example statement; its length fields there (0x16, 0x0e)
        # do not add up: type 1 + str 4+15 + nparams 2 + INT64 9 = 31 = 0x1f.
        frame = wire.frame(wire.QUERY, wire.query_payload(b"SELECT ?+1 AS n", (41,)))
        self.assertEqual(frame.hex(), "0000001f" "51" "0000000f" + b"SELECT ?+1 AS n".hex()
                         + "0001" "01" "0000000000000029")

    def test_hello_ok_old_and_new(self):
        base = (struct.pack(">H", 1) + s(b"sqlite") + s(b"dbpoold 1")
                + struct.pack(">IH", 1 << 20, 100))
        self.assertEqual(wire.get_hello_ok(base, 0, len(base)),
                         ("sqlite", "dbpoold 1", 1 << 20, 100, 0))
        newer = base + struct.pack(">H", 50) + b"future fields"
        self.assertEqual(wire.get_hello_ok(newer, 0, len(newer))[4], 50)

    def test_error_old_and_new(self):
        old = struct.pack(">H", 5) + s(b"23505") + s(b"dup") + b"T" + struct.pack(">i", -1)
        self.assertEqual(wire.get_error(old, 0, len(old)), (5, "23505", "dup", "T", -1, 0))
        new = old + struct.pack(">i", 1555) + b"more"
        self.assertEqual(wire.get_error(new, 0, len(new))[5], 1555)

    def test_row_values(self):
        payload = (struct.pack(">H", 6) + b"\x00" + struct.pack(">Bq", 1, -5)
                   + struct.pack(">Bd", 2, 0.5) + b"\x03" + s("é".encode())
                   + b"\x04" + s(b"\x00\xff")
                   + b"\x05\x01")
        self.assertEqual(wire.get_row(payload, 0, len(payload)),
                         [None, -5, 0.5, "é", b"\x00\xff", True])

    def test_malformed_rows(self):
        for payload in (struct.pack(">H", 1) + b"\x05\x02",          # BOOL 2
                        struct.pack(">H", 1) + b"\x09",              # unknown tag
                        struct.pack(">H", 1) + b"\x00\x00"):         # trailing byte
            with self.assertRaises(wire.Malformed):
                wire.get_row(payload, 0, len(payload))

    def test_encode_limits(self):
        with self.assertRaises(wire.EncodeError):
            wire.encode_value(1 << 63)
        with self.assertRaises(wire.UnsupportedType):
            wire.encode_params([1, {}])
        self.assertEqual(wire.encode_value(True), b"\x05\x01")
        self.assertEqual(wire.encode_value(None), b"\x00")


if __name__ == "__main__":
    unittest.main()
