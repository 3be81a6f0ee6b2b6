"""ovenctl command line: one subcommand per module `ovenctl/cmd_*.py` (each has add_parser/run)."""
import argparse
import sys

from ovenctl import __version__
from ovenctl.errors import UserError  # noqa: F401  (re-exported for the command modules)
from ovenctl import cmd_demo, cmd_export, cmd_report, cmd_sim, cmd_verify
from ovenctl import cmd_deploy, cmd_ports, cmd_pull, cmd_status, cmd_vdev
from ovenctl import cmd_autotune, cmd_calibrate, cmd_prepare

COMMANDS = (cmd_sim, cmd_demo, cmd_verify, cmd_export, cmd_report, cmd_vdev, cmd_ports, cmd_status, cmd_pull, cmd_deploy,
            cmd_calibrate, cmd_autotune, cmd_prepare)


def build_parser():
    p = argparse.ArgumentParser(prog="ovenctl", description="Host tools for the in-oven weighing controller "
                                "(solid-state battery vacuum mass-loss test).")
    p.add_argument("--version", action="version", version="ovenctl " + __version__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in COMMANDS:
        mod.add_parser(sub)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except UserError as e:
        print("ovenctl %s: error: %s" % (args.command, e), file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("ovenctl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
