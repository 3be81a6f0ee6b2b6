"""`ovenctl deploy`: put the firmware on a board (or the virtual device), verified."""
import json
import sys

from ovenctl import deploy as D


def add_parser(sub):
    p = sub.add_parser("deploy", help="copy the firmware to a board: compile, copy, install dependencies, verify",
                       description="Compiles every firmware module with mpy-cross (plain bytecode .mpy: runs on every "
                                   "port, no -march needed as the firmware has no native code) and copies them "
                                   "with mpremote into /lib on the device on PORT, with the board's files "
                                   "(board.py, pins.py, board_select.py, mcu_board.py; for sim the simulated bench), /main.py "
                                   "(source) and /deploy.json (what was deployed). Installs the board's mip "
                                   "dependencies (firmware/package.json: the SSD1306 driver) first, so a "
                                   "dependency that cannot be fetched leaves the device unchanged. Removes stale "
                                   "files (a module's other .py/.mpy variant, files of the previous deploy), then "
                                   "compares the sha256 of every file computed on the device with the local one "
                                   "and soft-resets the device so that main.py starts the new firmware. Refused "
                                   "while a test is running, and on a board whose free heap after boot is below what "
                                   "the firmware needs (HEAP_NEED_KB in deploy.py, docs/FIT.md). Identical files are "
                                   "not copied again.")
    p.add_argument("--board", required=True, choices=sorted(D.BOARDS),
                   help="pico (RP2040), esp32 (WROOM-32) or sim (the virtual device of `ovenctl vdev`)")
    p.add_argument("--port", required=True, metavar="PORT", help="serial port (see `ovenctl ports`)")
    p.add_argument("--no-compile", action="store_true", help="copy the .py sources instead of compiled .mpy files")
    p.add_argument("--config", metavar="FILE",
                   help="also write FILE as /config.json (method, board settings, blank_run, counts_per_g, cells: "
                        "see firmware/oven/run/plan.py); checked before anything is copied")
    p.add_argument("--index", metavar="URL|DIR",
                   help="mip package index for the dependencies (default micropython-lib's "
                        "https://micropython.org/pi/v2; a local directory with the same layout works offline)")
    p.add_argument("--no-deps", action="store_true", help="skip the mip dependencies (the display stays off "
                                                            "unless the driver is already on the device)")
    p.add_argument("--no-reset", action="store_true", help="do not soft-reset the device at the end")
    p.add_argument("--romfs", action="store_true",
                   help="put the compiled modules in the board's ROMFS partition as one image (mpremote romfs; "
                        "checked to fit with `mpremote romfs query`): they run in place from flash and leave the "
                        "heap free. Needs MicroPython >= 1.25 built with MICROPY_VFS_ROM and a ROMFS partition: the "
                        "standard Pico and ESP32 downloads from micropython.org have none (refused, nothing "
                        "changed). main.py and board_select stay on the filesystem")
    p.add_argument("--force", action="store_true",
                   help="deploy even if the device's sys.platform does not match --board, or its free heap after "
                        "boot is below what the firmware needs (a warning)")
    p.add_argument("--key", metavar="FILE",
                   help="provision the device key that seals every run log (docs/LOGFORMAT.md §10): FILE is "
                        "created with a new random key if it does not exist (keep it safe: `ovenctl verify --key "
                        "FILE` needs it). Without --key the device keeps the key it has")
    p.add_argument("--replace-key", action="store_true",
                   help="allow --key to replace a different key already on the device")
    p.add_argument("--json", action="store_true", help="print one JSON object (progress goes to stderr)")
    p.epilog = ("exit status: 0 deployed and verified, 1 failed or refused (a test is running, too little heap, no "
                "ROMFS partition or an image too big for it), 2 usage")
    p.set_defaults(func=run)


def run(args):
    from ovenctl.cli import UserError

    def log(msg):
        print(msg, file=sys.stderr if args.json else sys.stdout, flush=True)

    try:
        config = D.check_config(args.config) if args.config else None
    except D.DeployError as e:
        raise UserError(str(e), code=2)
    key = None
    if args.key:
        from ovenctl import keyfile
        key, created = keyfile.load_or_create(args.key)
        if created:
            log("new device key %s written to %s (keep this file: it verifies the device's logs)"
                % (keyfile.key_id(key), args.key))
    elif args.replace_key:
        raise UserError("--replace-key needs --key FILE")
    if args.romfs and args.no_compile:
        raise UserError("--romfs holds compiled modules (.mpy, run in place from the ROM): it cannot be used with "
                        "--no-compile", code=2)
    try:
        res = D.deploy(args.board, args.port, compile_mpy=not args.no_compile, deps=not args.no_deps,
                       index=args.index, config=config, reset=not args.no_reset, force=args.force, log=log,
                       key=key, replace_key=args.replace_key, romfs=args.romfs)
    except D.DeployError as e:
        raise UserError(str(e), code=1)
    if args.json:
        print(json.dumps(res))
    else:
        log("deploy: done in %.1f s. Check with: mpremote connect %s fs ls :/lib" % (res["wall_s"], args.port))
    return 0
