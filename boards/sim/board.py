# The simulated bench as a board object (docs/BOARD_API.md): the firmware's real drivers
# (MAX31855 decoding, pressure transducer conversion) read the physical model's signals, and
# time is the model's clock, advanced by wait_until_ms() without sleeping.
from oven.core import codes as C
from oven.drivers.max31855 import MAX31855
from oven.drivers.pressure import PressureTransducer
from sim import model as M

PR_LOAD = C.PR_LOAD
PR_LEAK = C.PR_LEAK


class _Pin:
    def __init__(self):
        self.v = 1

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v


class _TcSpi:
    # SPI bus with one MAX31855 on it: a read clocks out the model's current frame.
    def __init__(self, bench):
        self.bench = bench

    def readinto(self, buf, write=0):
        self.bench.tc_frame_into(buf)


class _ProbeSpi:
    # A second SPI bus (its own chip select) with the reference probe's MAX31855 on it.
    def __init__(self, bench):
        self.bench = bench

    def readinto(self, buf, write=0):
        self.bench.probe_frame_into(buf)


class _Adc:
    def __init__(self, bench):
        self.bench = bench

    def read_u16(self):
        return self.bench.pressure_adc_u16()


class _LcTemp:
    def __init__(self, bench):
        self.bench = bench
        self.temp_c_x100 = 0

    def read(self):
        self.temp_c_x100 = int(self.bench.lc_temp_c() * 100.0 + 0.5)
        return C.OK


class _LoadCell:
    # HX711 channel: ready when a new conversion is due (10 SPS), raw signed 24-bit counts.
    def __init__(self, bench, i):
        self.bench = bench
        self.i = i
        self.raw = 0

    def ready(self):
        return self.bench.loadcell_ready(self.i)

    def read(self):
        self.raw = self.bench.loadcell_raw(self.i)
        return C.OK


class SimOperator:
    """Answers the controller's prompts like a lab technician would, after a short delay:
    places the cells and presses START, answers the leak question from the scenario."""

    def __init__(self, board):
        self.board = board
        self._due_ms = -1
        self._event = C.EV_NONE
        self.answers = []

    def prompt(self, code, cell):
        b = self.board
        now = b.bench.t_ms
        if code == PR_LOAD:
            b.bench.load_cells(1)
            self._event = C.EV_START
            self._due_ms = now + 20000
        elif code == PR_LEAK:
            self._event = C.EV_YES if b.bench.leak_visible(cell) else C.EV_NO
            self._due_ms = now + 45000       # looking at a cell for leakage takes a while
            self.answers.append([cell, self._event == C.EV_YES])

    def poll(self):
        if self._due_ms >= 0 and self.board.bench.t_ms >= self._due_ms:
            self._due_ms = -1
            ev = self._event
            self._event = C.EV_NONE
            return ev
        return C.EV_NONE


class WatchdogReset(BaseException):
    """The simulated hardware watchdog fired: the MCU resets. A BaseException so that nothing in
    the firmware catches it: on a board no code at all runs after the reset."""


class SimBoard:
    """rtc: the board has a battery-backed clock (rtc_s() is the model's clock, which keeps
    running across a simulated power cut as long as the Bench object lives); without it rtc_s()
    is None. wdt_ms: the hardware watchdog, armed (like machine.WDT) when not 0: if the firmware
    lets wait_until_ms() go more than wdt_ms past its last wdt_feed(), the board resets: the
    outputs drop to their power-on state (everything off, contactor open) at that model time,
    and WatchdogReset is raised."""
    name = "sim"

    def __init__(self, bench, rtc=False, wdt_ms=0):
        self.bench = bench
        self.n_cells = bench.n_cells
        self.tc = MAX31855(_TcSpi(bench), _Pin())
        # reference probe in a dummy cell (scenario "probe"), or None when not fitted
        self.probe = MAX31855(_ProbeSpi(bench), _Pin()) if bench.probe_fitted else None
        self.pressure = PressureTransducer(_Adc(bench), M.PRESSURE_ADC_ZERO,
                                           M.PRESSURE_ADC_ZERO + M.PRESSURE_ADC_SPAN, span_pa=M.PRESSURE_FS_PA)
        self.lc_temp = _LcTemp(bench)
        self.loadcells = [_LoadCell(bench, i) for i in range(bench.n_cells)]
        self.operator = SimOperator(self)
        self.counts_per_g = int(bench.lc_counts_per_g + 0.5)
        self.wdt_feeds = 0
        self.buzzer = 0
        self.safe_calls = []        # model times (ms) of outputs_safe()
        self.heater_on_ms = -1
        self.has_rtc = rtc
        self.wdt_ms = wdt_ms
        self._wdt_fed_ms = bench.t_ms
        self.wdt_resets = 0
        self.reset_at_ms = -1

    def ticks_ms(self):
        return self.bench.t_ms

    def ticks_diff(self, a, b):
        return a - b

    def wait_until_ms(self, t_ms):
        if self.wdt_ms and t_ms - self._wdt_fed_ms > self.wdt_ms:
            reset_ms = self._wdt_fed_ms + self.wdt_ms
            if reset_ms > self.bench.t_ms:
                self.bench.advance(reset_ms - self.bench.t_ms)
            self._wdt_reset()
            raise WatchdogReset("watchdog: not fed for %d ms" % self.wdt_ms)
        dt = t_ms - self.bench.t_ms
        if dt > 0:
            self.bench.advance(dt)

    def rtc_s(self):
        return self.bench.t_ms // 1000 if self.has_rtc else None

    def power_on_state(self):
        """What a reset or a power cut leaves: every output de-energised."""
        b = self.bench
        b.heater_duty_ppm = 0
        b.heater_contactor = 0
        b.pump_on = 0
        b.vent_open = 0
        self.buzzer = 0

    def _wdt_reset(self):
        self.power_on_state()
        self.wdt_resets += 1
        self.reset_at_ms = self.bench.t_ms
        self.wdt_ms = 0             # disarmed until the firmware arms it again after the reset

    def wdt_start(self, wdt_ms):
        self.wdt_ms = wdt_ms
        self._wdt_fed_ms = self.bench.t_ms

    def outputs_safe(self):
        b = self.bench
        b.heater_duty_ppm = 0
        b.heater_contactor = 0
        b.pump_on = 0
        b.vent_open = 0
        self.safe_calls.append(b.t_ms)

    def heater_enable(self, on):
        self.bench.heater_contactor = 1 if on else 0

    def heater_set_duty_ppm(self, d):
        self.bench.heater_duty_ppm = d

    def pump_set(self, on):
        self.bench.pump_on = 1 if on else 0

    def vent_set(self, op):
        self.bench.vent_open = 1 if op else 0

    def buzzer_set(self, on):
        self.buzzer = on

    def wdt_feed(self):
        self.wdt_feeds += 1
        self._wdt_fed_ms = self.bench.t_ms
