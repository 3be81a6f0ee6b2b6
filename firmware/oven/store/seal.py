# Tamper evidence for run logs: a keyed hash chain over the records (docs/LOGFORMAT.md §10).
#
#   c[-1] = 32 zero bytes
#   c[n]  = HMAC-SHA256(key, c[n-1] + frame[n])     frame[n]: record n's complete frame bytes
#
# The device writes the first 8 bytes of each c[n] into SEAL records and the full c of the last
# record before the verdict into the VERDICT. Changing, removing, inserting or reordering any
# record changes every c from there on; without the key nobody can compute the new tags.
#
# hashlib's digest() allocates, so nothing here runs on the control tick: RunLog.seal() calls it
# between ticks (docs/APP.md "Allocation"). update() alone allocates nothing.
import hashlib

KEY_BYTES = 32
TAG_BYTES = 8
_BLOCK = 64


def key_id(key):
    """A public name for a key (16 hex digits): tells which key file a log needs, reveals nothing."""
    h = hashlib.sha256(b"oven-key-id:")
    h.update(key)
    return "".join("%02x" % x for x in h.digest()[:8])


def check_key(key):
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
        raise ValueError("device key must be %d bytes" % KEY_BYTES)


class Chain:
    """The running chain value; record(frame) advances it and returns the new 32-byte value."""

    def __init__(self, key, c=None):
        check_key(key)
        ipad = bytearray(_BLOCK)
        opad = bytearray(_BLOCK)
        for i in range(_BLOCK):
            k = key[i] if i < len(key) else 0
            ipad[i] = k ^ 0x36
            opad[i] = k ^ 0x5C
        self._ipad = bytes(ipad)
        self._opad = bytes(opad)
        self.c = bytes(c) if c is not None else bytes(32)

    def begin(self):
        """An inner hash already fed with the pad and the previous value: feed() the frame (in
        pieces if it is large), then end()."""
        h = hashlib.sha256(self._ipad)
        h.update(self.c)
        return h

    def end(self, h):
        o = hashlib.sha256(self._opad)
        o.update(h.digest())
        self.c = o.digest()
        return self.c

    def record(self, frame):
        h = self.begin()
        h.update(frame)
        return self.end(h)
