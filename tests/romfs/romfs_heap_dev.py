# The MicroPython side of tests/romfs/romfs_heap.py (unix port, vfs.VfsRom): import modules
# from .mpy files on the filesystem or from a ROMFS image mounted at /rom, and print the heap
# they hold after gc.collect().
#
#   micropython -X heapsize=N romfs_heap_dev.py mpy|romfs LIB_DIR|IMAGE STUB_DIR MODULES_FILE
#
# STUB_DIR holds a stand-in `machine` (the board modules import it at import time), imported
# before the first measurement so that it counts in neither figure. With romfs, the image is
# read into the heap (on a board it is memory-mapped flash) before the first measurement too:
# the figure is what importing the modules adds. Prints one line: "@@H " + JSON.
import gc
import json
import sys
import vfs

mode, where, stub, mods_file = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
with open(mods_file) as f:
    mods = f.read().split()
sys.path[:] = [stub]
import machine  # noqa: E402,F401

image = None
if mode == "romfs":
    with open(where, "rb") as f:
        image = f.read()
    vfs.mount(vfs.VfsRom(image), "/rom")
    sys.path.insert(0, "/rom/lib")
else:
    sys.path.insert(0, where)
gc.collect()
before = gc.mem_alloc()
for m in mods:
    __import__(m)
gc.collect()
after = gc.mem_alloc()
files = {m: getattr(sys.modules[m], "__file__", None) for m in mods}
print("@@H " + json.dumps({"mode": mode, "before": before, "after": after, "bytes": after - before, "files": files,
                            "total": gc.mem_alloc() + gc.mem_free()}))
