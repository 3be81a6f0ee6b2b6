"""ovenctl command line: one subcommand per module `ovenctl/cmd_*.py` (each has add_parser/run)."""
import argparse
import sys

from ovenctl import __version__
from ovenctl import cmd_demo, cmd_sim

COMMANDS = (cmd_sim, cmd_demo)


class UserError(Exception):
    """A user mistake or bad input: printed as one clear message, exit code `code`."""

    def __init__(self, msg, code=2):
        super().__init__(msg)
        self.code = code


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
