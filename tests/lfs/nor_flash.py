# The Raspberry Pi Pico's flash as a MicroPython block device (the extended interface littlefs
# uses: readblocks/writeblocks with an offset, ioctl erase), for the power-cut harnesses
# tests/lfs/lfs_device.py (run log) and tests/lfs/lfs_calib.py (calibration, audit trail).
# Runs in the MicroPython unix port. NOR semantics: an erase sets a 4 kB block to 0xFF, a program
# only clears bits. A power cut at the cut_at-th write (program or erase): a prefix of the page
# programmed or of the block erased, then PowerCut raised.
from array import array

BLOCK = 4096          # RP2040 flash sector (erase unit)
PROG = 256            # RP2040 flash page (program unit); MicroPython's rp2 mounts with progsize=256
N_BLOCKS = 352        # the Pico's 1408 kB filesystem (MicroPython's rp2 default for a 2 MB Pico)
FF = b"\xff" * BLOCK


class PowerCut(BaseException):
    """The power went: raised from inside a flash operation; nothing in the firmware catches it."""


DEAD = PowerCut()     # raised without allocating (a finaliser runs with the heap locked)


class Flash:
    """NOR flash: erase sets a 4 kB block to 0xFF, a program can only clear bits (AND), in whole
    256-byte pages at most. A cut during a program leaves a prefix of the page programmed; a cut
    during an erase leaves the block partly erased. Counts erases per block and programs.

    After a cut: with halt, every later operation (read, program, erase) raises PowerCut too,
    until the harness sets dead (the CPU stopped with the power: a `finally` or `with` that
    closes a file on the way out writes nothing); with dead, programs and erases do nothing and
    reads read nothing (the cut-off mount's leftovers, finalisers, reach no flash)."""

    def __init__(self, n_blocks=N_BLOCKS, seed=1, halt=False, mem=None, erased=True):
        self.n = n_blocks
        if mem is None:
            mem = bytearray(b"\xff" * (n_blocks * BLOCK))
        elif erased:
            # a buffer reused from trial to trial (a fresh 1.4 MB one each time fragments the heap)
            ff = b"\xff" * BLOCK
            for i in range(n_blocks):
                mem[i * BLOCK:(i + 1) * BLOCK] = ff
        self.mem = mem
        self.erases = array("I", [0] * n_blocks)
        self.programs = 0
        self.prog_bytes = 0
        self.ops = 0
        self.cut_at = 0           # 0: never
        self.cut_done = False
        self.rng = seed & 0x7FFFFFFF or 1
        self.overwrites = 0       # programs of bytes that were not erased (littlefs never does it)
        self.dead = False
        self.halt = halt

    def _rand(self, n):
        # xorshift31: deterministic, allocation-light
        x = self.rng
        x ^= (x << 13) & 0x7FFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0x7FFFFFFF
        self.rng = x or 1
        return self.rng % n

    def _halted(self):
        return self.halt and self.cut_done and not self.dead

    def _op(self):
        self.ops += 1
        return self.cut_at and self.ops == self.cut_at

    def readblocks(self, blk, buf, off=0):
        if self._halted():
            raise PowerCut()
        a = blk * BLOCK + off
        if self.dead:
            # the cut-off mount's leftovers (a finaliser closing a file, with the heap locked:
            # nothing may be allocated) stop at their first read
            raise DEAD
        buf[:] = self.mem[a:a + len(buf)]

    def writeblocks(self, blk, buf, off=None):
        if off is None:
            # the simple block interface (erase + write) is not what littlefs uses
            self.ioctl(6, blk)
            off = 0
        if self.dead:
            return
        if self._halted():
            raise PowerCut()
        a = blk * BLOCK + off
        n = len(buf)
        cut = self._op()
        if cut:
            n = self._rand(n + 1)          # a torn program: a prefix of the bytes made it
        m = self.mem
        if m[a:a + n] == FF[:n]:
            # all erased (what littlefs always programs): the AND is the data itself
            m[a:a + n] = buf if n == len(buf) else buf[:n]
        else:
            for i in range(n):
                if m[a + i] != 0xFF:
                    self.overwrites += 1
                m[a + i] &= buf[i]
        self.programs += 1
        self.prog_bytes += n
        if cut:
            self.cut_done = True
            raise PowerCut()

    def ioctl(self, op, arg):
        if op == 4:
            return self.n
        if op == 5:
            return BLOCK
        if op == 6:
            if self.dead:
                return 0
            if self._halted():
                raise PowerCut()
            cut = self._op()
            a = arg * BLOCK
            n = BLOCK if not cut else self._rand(BLOCK + 1)
            self.mem[a:a + n] = b"\xff" * n
            self.erases[arg] += 1
            if cut:
                self.cut_done = True
                raise PowerCut()
            return 0
        return 0

    def revive(self):
        """The same flash content after the power is back, as a new device (the cut-off one
        stays dead: its mount's leftovers write nothing)."""
        self.dead = True
        fl = Flash(self.n, halt=self.halt, mem=self.mem, erased=False)
        fl.overwrites = self.overwrites
        return fl
