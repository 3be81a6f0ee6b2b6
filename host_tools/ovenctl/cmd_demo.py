"""`ovenctl demo`: the verdict core inside the MicroPython VM on a generated weighing sequence."""
import os

from ovenctl import vmrun


def add_parser(sub):
    p = sub.add_parser("demo", help="run the verdict core in the MicroPython VM on a generated weighing",
                       description="Tare, m0 and m1 weighings of a 45 g cell losing 0.32 %% go through the "
                                   "firmware's weighing window and verdict core inside the real MicroPython VM.")
    p.set_defaults(func=run)


def run(args):
    from ovenctl.cli import UserError
    try:
        rc, err = vmrun.stream(os.path.join(vmrun.VM_SCRIPTS, "demo_core.py"),
                               lambda line: None if line.startswith("@@") else print(line, flush=True))
    except vmrun.VMUnavailable as e:
        raise UserError(str(e))
    if rc != 0:
        raise UserError("the firmware failed in the VM: " + err.strip(), code=1)
    return 0
