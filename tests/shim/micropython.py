"""CPython stand-in for MicroPython's built-in `micropython` module, so that firmware modules
import unchanged under CPython tests. Only what the firmware uses; heap_lock is a no-op here
(allocation-freedom is proven in the VM, not in CPython)."""


def const(x):
    return x


def heap_lock():
    return 0


def heap_unlock():
    return 0


def kbd_intr(ch):
    return None


def native(f):
    return f


viper = native
