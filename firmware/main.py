# Device entry point (MicroPython runs /main.py after boot.py on a power-on or a friendly-REPL
# soft reset). Board-agnostic: everything board-specific comes from the module `board_select`
# (docs/PROTOCOL.md, "Device entry point"), which the deployment puts next to the firmware:
#
#   board_select.outputs_off()   heater, pump off and vent closed, with nothing but `machine`
#   board_select.autostart()     a run plan (start a test now) or None (stay idle at the REPL)
#   board_select.link_rx()       the serial link's byte source (link.StdinIO on a board)
#   board_select.link_tx()       the serial link's bytes writer (link.stdout_tx() on a board)
#   board_select.HOST_DRIVEN     True on the virtual device: the host calls Session.advance()
#
# Order matters: the outputs go safe FIRST, before any import that could fail (a missing or
# broken firmware module must not leave a heater on: GPIO levels survive a soft reset).
try:
    import board_select
except ImportError:
    board_select = None
if board_select is not None:
    try:
        board_select.outputs_off()
    except Exception as _e:          # noqa: BLE001  keep going: the REPL must stay reachable
        print("main.py: outputs_off failed:", _e)


# the firmware proper, precompiled (session.py): main.Session, main.recover, main.main for tools
from oven.run.session import Session, recover, main   # noqa: E402,F401

if __name__ == "__main__":
    main()
