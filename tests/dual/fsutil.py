# A fresh, empty scratch directory for the dual tests (CPython and the MicroPython VM, whose
# filesystem has no tempfile module): /tmp/<prefix><pid>_<name>, emptied (one level of
# subdirectories too) when it exists.
import os


def fresh_dir(prefix, name):
    pid = os.getpid() if hasattr(os, "getpid") else 0
    d = "/tmp/%s%d_%s" % (prefix, pid, name)
    try:
        os.mkdir("/tmp")
    except OSError:
        pass
    try:
        names = os.listdir(d)
    except OSError:
        os.mkdir(d)
        return d
    for f in names:
        try:
            os.remove(d + "/" + f)
        except OSError:             # a directory (calib/)
            for g in os.listdir(d + "/" + f):
                os.remove(d + "/" + f + "/" + g)
            os.rmdir(d + "/" + f)
    return d
