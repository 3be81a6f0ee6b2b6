"""An in-memory flash filesystem with littlefs semantics, for the reliability campaign.

What it models (the same rules as the virtual device's flash mirror, host_tools/ovenctl/vm/vdev.mjs):
- file data becomes durable at flush()/close() (lfs_file_sync); a power cut keeps exactly what was
  synced (`power_cut()`), or with `torn=True` a random prefix of the unsynced bytes as well (a
  filesystem whose sync is not atomic, or a cut in the middle of one);
- directory operations (create at open, mkdir, remove, rename over an existing file) are
  durable at once and atomic;
- capacity: writes beyond it raise OSError(ENOSPC) (optionally after a partial write);
- injected I/O errors: the k-th write or flush raises OSError(EIO), once or from then on;
- a cut armed at the k-th write or flush (`cut_at_write`/`cut_at_flush`) raises PowerCut from
  inside that call, before or after the data reaches the file.

`fs.os` is an `os`-like object (listdir, mkdir, remove, rename, stat, statvfs) and `fs.open` the
`open` builtin's replacement; the campaign installs them as main.os / main.open.
"""
import errno


class PowerCut(BaseException):
    """Raised from inside a file operation when an armed cut fires (nothing catches it, like a
    power loss)."""


class _Node:
    __slots__ = ("data", "synced")

    def __init__(self):
        self.data = bytearray()
        self.synced = 0


class _Handle:
    def __init__(self, fs, path, node, mode):
        self.fs = fs
        self.path = path
        self.node = node
        self.mode = mode
        self.pos = len(node.data) if "a" in mode else 0
        self.closed = False
        self.gen = fs.generation

    def _check(self):
        if self.closed or self.gen != self.fs.generation:
            raise OSError(errno.EBADF, "stale file handle")

    # ---- writing
    def write(self, buf, off=0, n=-1):
        self._check()
        if "r" in self.mode and "+" not in self.mode:
            raise OSError(errno.EBADF, "not open for writing")
        mv = memoryview(buf)
        if n < 0:
            n = len(mv) - off
        data = bytes(mv[off:off + n])
        fs = self.fs
        fs.writes += 1
        cut = fs.cut_at_write is not None and fs.writes >= fs.cut_at_write
        if cut and not fs.cut_after:
            fs.fire_cut()
        if fs._fail("write"):
            fs._error()
            raise OSError(errno.EIO, "injected write error")
        room = fs.capacity - fs.used()
        if len(data) > room:
            fs._error()
            if fs.partial_writes and room > 0:
                self._put(data[:room])
            raise OSError(errno.ENOSPC, "no space left on device")
        self._put(data)
        if cut:
            fs.fire_cut()
        return len(data)

    def _put(self, data):
        d = self.node.data
        if "a" in self.mode:
            self.pos = len(d)
        end = self.pos + len(data)
        if end > len(d):
            d.extend(b"\0" * (end - len(d)))
        d[self.pos:end] = data
        self.pos = end

    def flush(self):
        self._check()
        fs = self.fs
        fs.flushes += 1
        cut = fs.cut_at_flush is not None and fs.flushes >= fs.cut_at_flush
        if cut and not fs.cut_after:
            fs.fire_cut()
        if fs._fail("flush"):
            fs._error()
            raise OSError(errno.EIO, "injected sync error")
        self.node.synced = len(self.node.data)
        if cut:
            fs.fire_cut()

    def close(self):
        if self.closed:
            return
        if self.gen == self.fs.generation and ("w" in self.mode or "a" in self.mode or "+" in self.mode):
            self.flush()
        self.closed = True

    # ---- reading
    def read(self, n=-1):
        self._check()
        d = self.node.data
        if n is None or n < 0:
            n = len(d) - self.pos
        b = bytes(d[self.pos:self.pos + n])
        self.pos += len(b)
        return b

    def readinto(self, buf):
        b = self.read(len(buf))
        buf[:len(b)] = b
        return len(b)

    def seek(self, pos, whence=0):
        self._check()
        if whence == 0:
            self.pos = pos
        elif whence == 1:
            self.pos += pos
        else:
            self.pos = len(self.node.data) + pos
        return self.pos

    def tell(self):
        return self.pos

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class _Os:
    def __init__(self, fs):
        self._fs = fs

    def listdir(self, path="/"):
        return self._fs.listdir(path)

    def mkdir(self, path):
        self._fs.mkdir(path)

    def remove(self, path):
        self._fs.remove(path)

    def rename(self, a, b):
        self._fs.rename(a, b)

    def stat(self, path):
        return self._fs.stat(path)

    def statvfs(self, path):
        return self._fs.statvfs(path)


class MemFS:
    BLOCK = 4096

    def __init__(self, capacity=16 << 20, partial_writes=False):
        self.files = {}             # path -> _Node
        self.dirs = {"/"}
        self.capacity = capacity
        self.partial_writes = partial_writes
        self.generation = 0         # bumped at a power cut: old handles go stale
        self.writes = 0
        self.flushes = 0
        self.cut_at_write = None
        self.cut_at_flush = None
        self.cut_after = False
        self.fail_write_at = None   # k-th write raises EIO (permanent: every later one too)
        self.fail_flush_at = None
        self.fail_permanent = False
        self.on_error = None        # called at every injected error or refused write
        self.os = _Os(self)

    def _error(self):
        if self.on_error is not None:
            self.on_error()

    @staticmethod
    def _norm(path):
        if not path.startswith("/"):
            path = "/" + path
        while "//" in path:
            path = path.replace("//", "/")
        return path.rstrip("/") or "/"

    def _parent(self, path):
        i = path.rfind("/")
        return path[:i] or "/"

    def used(self):
        n = 0
        for node in self.files.values():
            n += len(node.data)
        return n

    def _fail(self, what):
        k = self.writes if what == "write" else self.flushes
        at = self.fail_write_at if what == "write" else self.fail_flush_at
        if at is None:
            return False
        return k == at or (self.fail_permanent and k >= at)

    # ---- os
    def listdir(self, path):
        path = self._norm(path)
        if path not in self.dirs:
            raise OSError(errno.ENOENT, path)
        pre = "" if path == "/" else path
        out = []
        for p in list(self.files) + list(self.dirs):
            if p != path and self._parent(p) == path and p.startswith(pre + "/"):
                out.append(p[len(pre) + 1:])
        return sorted(out)

    def mkdir(self, path):
        path = self._norm(path)
        if path in self.dirs or path in self.files:
            raise OSError(errno.EEXIST, path)
        if self._parent(path) not in self.dirs:
            raise OSError(errno.ENOENT, path)
        self.dirs.add(path)

    def remove(self, path):
        path = self._norm(path)
        if path not in self.files:
            raise OSError(errno.ENOENT, path)
        del self.files[path]

    def rename(self, a, b):
        a = self._norm(a)
        b = self._norm(b)
        if a not in self.files:
            raise OSError(errno.ENOENT, a)
        node = self.files.pop(a)
        # littlefs syncs an open file's data before the rename is committed; our writers close first
        self.files[b] = node

    def stat(self, path):
        path = self._norm(path)
        if path in self.dirs:
            return (0o040000, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        if path not in self.files:
            raise OSError(errno.ENOENT, path)
        return (0o100000, 0, 0, 0, 0, 0, len(self.files[path].data), 0, 0, 0)

    def statvfs(self, path):
        free = max(0, self.capacity - self.used()) // self.BLOCK
        return (self.BLOCK, self.BLOCK, self.capacity // self.BLOCK, free, free, 0, 0, 0, 0, 255)

    # ---- open
    def open(self, path, mode="r", *args, **kw):
        path = self._norm(path)
        if "b" not in mode:
            raise ValueError("the firmware opens its logs in binary mode (%r)" % mode)
        if "w" in mode or "a" in mode:
            if self._parent(path) not in self.dirs:
                raise OSError(errno.ENOENT, path)
            if path not in self.files or "w" in mode:
                # littlefs commits the new (empty) directory entry at open
                self.files[path] = _Node()
        elif path not in self.files:
            raise OSError(errno.ENOENT, path)
        return _Handle(self, path, self.files[path], mode)

    # ---- power
    def fire_cut(self):
        self.cut_at_write = None
        self.cut_at_flush = None
        raise PowerCut("power cut inside a file operation")

    def synced_image(self):
        """{path: bytes that are durable now}."""
        return {p: bytes(n.data[:n.synced]) for p, n in self.files.items()}

    def power_cut(self, torn=False, rng=None):
        """Everything not synced is lost (torn: a random prefix of it survives). Open handles go
        stale. Returns {path: durable bytes} as they are after the cut."""
        for node in self.files.values():
            keep = node.synced
            if torn and rng is not None and len(node.data) > node.synced:
                keep += rng.randrange(0, len(node.data) - node.synced + 1)
            del node.data[keep:]
            node.synced = len(node.data)
        self.generation += 1
        self.cut_at_write = None
        self.cut_at_flush = None
        self.fail_write_at = None
        self.fail_flush_at = None
        return {p: bytes(n.data) for p, n in self.files.items()}

    def read(self, path):
        return bytes(self.files[self._norm(path)].data)
