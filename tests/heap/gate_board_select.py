# board_select for the heap gate (deployed in the guest as /lib/board_select.mpy; the contract of
# docs/PROTOCOL.md §9). Like the real boards' (boards/mcu/mcu_board.py) it runs start.autostart()
# with a board module -- here tests/heap/gate_board.py on the simulated bench -- but the run is
# driven by the gate (HOST_DRIVEN), which advances main.py's Session and plays the host's part
# of the serial link: request lines pushed into RX, responses counted and dropped by tx.
from oven import link

HOST_DRIVEN = True
host_session = None
RX = link.RxRing(512)
TX = [0, 0]             # bytes, writes


def outputs_off():
    pass


def autostart():
    import gate_board
    from oven.run import start
    return start.autostart(gate_board, say=_say)


def _say(msg):
    print("board_select: " + msg)


def link_rx():
    return RX


def _tx(b):
    TX[0] += len(b)
    TX[1] += 1
    return len(b)


def link_tx():
    return _tx
