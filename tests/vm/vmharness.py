# Runs inside the MicroPython VM: imports the test modules named in hostargs.arg (comma separated)
# and calls every test_* function, printing one machine-readable line per test.
import sys
import io
import hostargs


def _run(modname):
    try:
        mod = __import__(modname)
    except Exception as e:
        buf = io.StringIO()
        sys.print_exception(e, buf)
        print("@@T", modname, "<import>", "FAIL", repr(buf.getvalue()))
        return
    names = [n for n in dir(mod) if n.startswith("test_")]
    names.sort()
    for n in names:
        fn = getattr(mod, n)
        if not callable(fn):
            continue
        try:
            fn()
            print("@@T", modname, n, "OK")
        except Exception as e:
            buf = io.StringIO()
            sys.print_exception(e, buf)
            print("@@T", modname, n, "FAIL", repr(buf.getvalue()))


for m in hostargs.arg.split(","):
    if m:
        _run(m)
print("@@DONE")
