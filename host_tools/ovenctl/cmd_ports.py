"""`ovenctl ports`: serial ports that look like MicroPython boards, and running virtual devices."""
import json

# USB vendor IDs of boards that run MicroPython and of the USB-UART bridges on ESP32 boards
USB_VIDS = {
    0x2E8A: "Raspberry Pi (RP2040/RP2350)",
    0x303A: "Espressif (native USB)",
    0x10C4: "Silicon Labs CP210x bridge",
    0x1A86: "WCH CH340/CH9102 bridge",
    0x0403: "FTDI bridge",
}


def add_parser(sub):
    p = sub.add_parser("ports", help="list serial ports that look like MicroPython boards",
                       description="Lists serial ports whose USB vendor ID is a MicroPython board's "
                                   "(Raspberry Pi RP2040 2E8A, Espressif 303A) or a common USB-UART bridge "
                                   "(CP210x 10C4, CH340 1A86, FTDI 0403), plus the pseudo-terminals of "
                                   "running `ovenctl vdev` virtual devices. Nothing is opened or sent.")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.add_argument("--all", action="store_true", help="list every serial port, not only likely boards")
    p.set_defaults(func=run)


def find_ports(include_all=False):
    """[{"port", "kind", "description", "vid", "pid", "serial"}], boards first, then virtual devices."""
    out = []
    try:
        from serial.tools import list_ports
        infos = list_ports.comports()
    except ImportError:
        infos = []
    for p in sorted(infos, key=lambda i: i.device):
        vid = getattr(p, "vid", None)
        if vid in USB_VIDS or include_all:
            out.append({"port": p.device, "kind": USB_VIDS.get(vid, "serial port"),
                        "description": p.description or "", "vid": vid, "pid": getattr(p, "pid", None),
                        "serial": getattr(p, "serial_number", None)})
    from ovenctl.vdev import advertised
    for st in advertised():
        desc = "ovenctl vdev (pid %s, flash %s" % (st.get("pid"), st.get("fs"))
        if st.get("scenario") is not None:
            desc += ", scenario seed %s" % st.get("scenario")
        out.append({"port": st["port"], "kind": "virtual device", "description": desc + ")",
                    "vid": None, "pid": None, "serial": None})
    return out


def run(args):
    ports = find_ports(args.all)
    if args.json:
        print(json.dumps(ports))
        return 0
    if not ports:
        print("no MicroPython-like serial ports found (connect a board, or start `ovenctl vdev`)")
        return 0
    w = max(len(p["port"]) for p in ports)
    for p in ports:
        ids = " %04X:%04X" % (p["vid"], p["pid"] or 0) if p["vid"] is not None else ""
        print("%-*s  %-28s%s  %s" % (w, p["port"], p["kind"], ids, p["description"]))
    return 0
