# The heap gate's board module (deployed in the guest as /lib/gate_board.mpy): what
# boards/<board>/board.py is to start.autostart(board_mod) -- DEFAULTS and make_board() -- for the
# simulated bench. The board is the simulated bench's SimBoard (built by the gate before main.py
# runs, so that its heap can be measured apart: tests/heap/README.md) with what a real board adds:
# an SSD1306 display (a stand-in with the micropython-lib driver's RAM: its 1 KB framebuffer and
# its I2C write list) and an operator who presses START at the idle screen.
import framebuf
from oven.core import codes as C
from sim.board import SimOperator

DEFAULTS = {"wdt_ms": 8000}
BOARD = None            # set by the gate: the SimBoard
NAME = "sim"


class SSD1306Stub(framebuf.FrameBuffer):
    """micropython-lib's SSD1306_I2C as far as RAM goes (buffer, temp, write_list) and the two
    calls display.SSD1306Pages makes; the bytes go nowhere (there is no I2C bus here)."""

    def __init__(self, width=128, height=64):
        self.width = width
        self.height = height
        self.external_vcc = False
        self.pages = height // 8
        self.buffer = bytearray(self.pages * width)
        super().__init__(self.buffer, width, height, framebuf.MONO_VLSB)
        self.temp = bytearray(2)
        self.write_list = [b"\x40", None]
        self.writes = 0

    def write_cmd(self, cmd):
        self.temp[0] = 0x80
        self.temp[1] = cmd
        self.writes += 1

    def write_data(self, buf):
        self.write_list[1] = buf
        self.writes += 1

    def show(self):
        self.writes += 1


class GateOperator(SimOperator):
    """The simulated technician, who also presses START once at the idle screen."""

    def __init__(self, board):
        SimOperator.__init__(self, board)
        self.started = False

    def poll(self):
        if not self.started:
            self.started = True
            return C.EV_START
        return SimOperator.poll(self)


def make_board(cfg):
    b = BOARD
    if b.operator.__class__ is not GateOperator:
        b.operator = GateOperator(b)
    if getattr(b, "display", None) is None:
        b.display = SSD1306Stub()
    b.name = NAME
    return b
