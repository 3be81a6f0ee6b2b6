"""The device key on the host: a file holding 64 hex digits (32 bytes) and a newline, readable by
its owner only. `ovenctl deploy --key FILE` creates it (if missing) and provisions the device
with it; `ovenctl verify --key FILE` checks a log's seal with it. The key itself is never
printed: tools name it by its key id (docs/LOGFORMAT.md §10)."""
import hashlib
import os
import secrets
import stat
import sys

from ovenctl.errors import UserError

KEY_BYTES = 32


def key_id(key):
    """Same as firmware/oven/store/seal.py key_id: 16 hex digits naming the key."""
    return hashlib.sha256(b"oven-key-id:" + bytes(key)).hexdigest()[:16]


def load_key(path):
    """The 32-byte key in path. UserError (exit 2) names what is wrong; the message never
    contains the key."""
    try:
        with open(path, "rb") as f:
            raw = f.read(4096)
    except FileNotFoundError:
        raise UserError("--key: %s does not exist (create one with `ovenctl deploy --key %s`)" % (path, path))
    except OSError as e:
        raise UserError("--key: cannot read %s: %s" % (path, e.strerror or e))
    text = raw.strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = None
    if key is None or len(key) != KEY_BYTES:
        raise UserError("--key: %s is not a device key file (expected %d hex digits on one line)"
                        % (path, 2 * KEY_BYTES))
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = 0
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        print("warning: the key file %s can be read by other users: chmod 600 %s" % (path, path),
              file=sys.stderr)
    return key


def create_key(path):
    """Write a new random key to path (mode 0600; refuses to overwrite). Returns the key."""
    key = secrets.token_bytes(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    except FileExistsError:
        raise UserError("--key: %s exists already" % path)
    except OSError as e:
        raise UserError("--key: cannot create %s: %s" % (path, e.strerror or e))
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key


def load_or_create(path):
    """(key, created): the key in path, or a new one written there."""
    if os.path.exists(path):
        return load_key(path), False
    return create_key(path), True
