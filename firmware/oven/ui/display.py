# Operator screens on the 128x64 SSD1306 (Screen draws into an injected framebuf) and the
# Refresher that sends them without delaying the control tick: tick() is O(1) and allocation-free,
# service(budget_ms)/idle() do one bounded piece of work each. Screens and timing rule:
# docs/MODULES.md "oven.ui.display".
from micropython import const
import framebuf

from oven.core import codes as C
from oven.core import verdict as V
from oven.ui import texts as ui

W = const(128)
H = const(64)
PAGES = const(8)

from oven.core.codes import (PR_LOAD, PR_LEAK, PR_ABORT, PH_IDLE, PH_TARE, PH_LOAD, PH_INITIAL_WEIGH, PH_SOAK,
                   PH_FINAL_WEIGH, PH_LEAK_CHECK, PH_VERDICT, PH_DONE, PH_ABORTED, PH_PREHEAT, MODE_BLANK)
_PROMPT_NAMES = {"load": PR_LOAD, "leak": PR_LEAK, "abort": PR_ABORT}

PAGE_MS = const(4)          # one page over I2C at 400 kHz: 3.3 ms, rounded up
REDRAW_MS = const(40)       # full redraw budget: RP2040 estimate (the WebAssembly VM on a PC: ~1 ms)
IDLE_BUDGET_MS = const(50)  # display work allowed after each control tick
EVERY_TICKS = const(2)      # periodic redraw: every 2 control ticks (2 s)
_VERDICT_FLIP = const(2)    # 3-4 cells: the verdict screen changes page every 2 redraws
# weighing window states (weigh.W_FILLING, W_SETTLING, W_STABLE, errors)
_WSTATE = ("fill", "settle", "STABLE", "error")
_WSTATE_LONG = ("filling", "settling", "STABLE", "ERROR")


def leak_cell(c):
    """The cell the leak question is about: the first without an answer. Allocation-free."""
    for i in range(c.n):
        if c.leak[i] is None:
            return i
    return c.n - 1


def screen_key(c, ask=0):
    """A small integer that changes whenever the screen to draw changes. Allocation-free."""
    k = c.phase | (ask << 4)
    if c.phase == PH_LEAK_CHECK:
        k |= leak_cell(c) << 6
    if c.fault:
        k |= 1 << 9
    return k


class Screen:
    def __init__(self, fb, width=W, height=H):
        self.fb = fb
        self.w = width
        self.h = height
        self._gbuf = bytearray(8)
        self._gfb = framebuf.FrameBuffer(self._gbuf, 8, 8, framebuf.MONO_VLSB)
        self.page = 0           # verdict page (3-4 cells: two cells per page)

    # ------------------------------------------------------------ primitives
    def text(self, s, x, y, col=1):
        self.fb.text(s, x, y, col)

    def big(self, s, x, y, sx, sy, col=1):
        """Text at sx x sy scale: each glyph rendered into the 8x8 scratch framebuffer, each
        vertical run of set pixels drawn as one fill_rect."""
        fb = self.fb
        g = self._gbuf
        gfb = self._gfb
        for ch in s:
            gfb.fill(0)
            gfb.text(ch, 0, 0, 1)
            for j in range(8):
                v = g[j]
                r = 0
                while v:
                    if v & 1:
                        r0 = r
                        while v & 1:
                            v >>= 1
                            r += 1
                        fb.fill_rect(x + j * sx, y + r0 * sy, sx, (r - r0) * sy, col)
                    else:
                        v >>= 1
                        r += 1
            x += 8 * sx

    @staticmethod
    def fit(s, width, smax):
        """Largest scale (sx, sy) for s in `width` pixels: sx = sy up to smax; a word too long
        for that keeps the height (up to 3x its width scale): tall, narrow, still the biggest."""
        n = len(s) if s else 1
        sx = width // (8 * n)
        if sx > smax:
            sx = smax
        if sx < 1:
            sx = 1
        sy = smax if smax < 3 * sx else 3 * sx
        return sx, sy

    def center(self, s, y, sx=1, sy=1, col=1, x0=0, width=0):
        if not width:
            width = self.w - x0
        x = x0 + (width - 8 * sx * len(s)) // 2
        if x < x0:
            x = x0
        if sx == 1 and sy == 1:
            self.fb.text(s, x, y, col)
        else:
            self.big(s, x, y, sx, sy, col)

    def right(self, s, y, col=1):
        self.fb.text(s, self.w - 8 * len(s), y, col)

    def title(self, s, right=""):
        """Inverted title bar, rows 0..8: white bar, black text."""
        self.fb.fill_rect(0, 0, self.w, 9, 1)
        self.fb.text(s, 1, 1, 0)
        if right:
            self.fb.text(right, self.w - 8 * len(right) - 1, 1, 0)

    def button(self, s, x, y, w):
        """A button label: outlined box, double-size text centred in it (19 pixels high)."""
        self.fb.rect(x, y, w, 19, 1)
        sx, sy = self.fit(s, w - 4, 2)
        self.center(s, y + 2, sx, sy, 1, x, w)

    # ------------------------------------------------------------ screens
    def draw_idle(self, method):
        fb = self.fb
        fb.fill(0)
        self.title("READY", "method")
        name = method["name"]
        sx, sy = self.fit(name, self.w, 2)
        self.center(name, 12, sx, sy)
        y = 29
        for ln in ui.method_lines(method):
            self.text(ln[:ui.LINE], 0, y)
            y += 9
        fb.fill_rect(0, 55, self.w, 9, 1)
        self.text("START=go NO=next", 0, 56, 0)

    def draw_status(self, c):
        fb = self.fb
        fb.fill(0)
        ph = c.phase
        m = c.m
        label = ui.PHASE_LABELS[ph] if ph < len(ui.PHASE_LABELS) else "PHASE %d" % ph
        if c.mode == MODE_BLANK:
            label = "BLANK " + label
        self.title(label[:11], ui.hm(c.t_s()))
        # oven temperature: the biggest number on the screen
        if c.tc_status == C.OK:
            self.big(ui.temp(c.temp_c_x100), 0, 12, 2, 2)
        else:
            self.big("T ----", 0, 12, 2, 2)
        if ph == PH_SOAK:
            self.right("OK" if c.in_spec else "OUT", 12)
        elif c.setpoint_c_x100 > 0:
            self.right("SP", 12)
            self.right("%d" % ((c.setpoint_c_x100 + 50) // 100), 20)
        # pressure
        if c.p_status == C.OK:
            self.text("p " + ui.kpa(c.pressure_pa), 0, 30)
        else:
            self.text("p ----", 0, 30)
        if c.pump:
            self.right("PUMP", 30)
        elif c.vent:
            self.right("VENT", 30)
        # soak time left (only in-spec time counts)
        need_s = m["blank_soak_s"] if c.mode == MODE_BLANK else m["soak_s"]
        if ph == PH_PREHEAT and c._probe is not None:
            # heating in air until the cell (the probe) is in the pre-heat band: show the cell
            self.text("cell " + (ui.temp(c.probe_c_x100) if c.probe_status == C.OK else "----"), 0, 39)
        elif ph < PH_SOAK or ph == PH_PREHEAT:
            self.text("soak " + ui.hm(need_s) + " to go", 0, 39)
        elif ph == PH_SOAK:
            self.text("left " + ui.hms(need_s - c.soak_in_spec_ms // 1000), 0, 39)
        else:
            self.text("soak done " + ui.hm(c.soak_in_spec_ms // 1000), 0, 39)
        # per cell: the weighing window's state, or the live loss estimate
        n = c.n
        if n > 4:
            n = 4
        weighing = ph == PH_TARE or ph == PH_INITIAL_WEIGH or ph == PH_FINAL_WEIGH
        live = ph >= PH_SOAK and ph != PH_PREHEAT and c.mode != MODE_BLANK
        if n <= 2:
            fb.hline(0, 49, self.w, 1)
        for i in range(n):
            if ph == PH_INITIAL_WEIGH and not c._weighing:
                t = "settle"            # creep: waiting settle_s before the m0 window
            elif weighing:
                st = c.windows[i].state
                t = _WSTATE[st if st < 3 else 3]
                if n == 1:
                    t = _WSTATE_LONG[st if st < 3 else 3]
            elif live:
                t = ui.ppm_pct(c.live_ppm[i])
                if c.early_fail[i]:
                    t = t + "!"
            else:
                t = "--"
            if n == 1:
                self.text(("weigh " if weighing else "live loss ") + t, 0, 53)
            elif n == 2:
                self.text("%d %s" % (i + 1, t), i * 64, 53)
            else:
                self.text("%d %s" % (i + 1, t), (i % 2) * 64, 49 + (i // 2) * 8)

    def draw_prompt(self, kind, cell=0):
        if kind in _PROMPT_NAMES:
            kind = _PROMPT_NAMES[kind]
        fb = self.fb
        fb.fill(0)
        if kind == PR_LOAD:
            self.title("LOAD CELLS")
            self.text("Place the cells", 0, 12)
            self.text("on the pans and", 0, 21)
            self.text("close the door.", 0, 30)
            self.button("START", 0, 45, 88)
            self.text("STOP", 96, 46)
            self.text("quit", 96, 55)
        elif kind == PR_LEAK:
            self.title("LEAK CHECK")
            self.center("CELL %d" % (cell + 1), 11, 2, 2)
            self.center("visible liquid", 28)
            self.center("leakage?", 36)
            self.button("YES", 0, 45, 60)
            self.button("NO", 68, 45, 60)
        else:
            self.title("STOP THE TEST?")
            self.center("ABORT?", 11, 2, 2)
            self.center("the result will", 28)
            self.center("be ABORTED", 36)
            self.button("YES", 0, 45, 60)
            self.button("NO", 68, 45, 60)

    def verdict_pages(self, c):
        n = c.n
        return 1 if n <= 2 or c.results[0] is None else (n + 1) // 2

    def draw_verdict(self, c):
        fb = self.fb
        fb.fill(0)
        fv = c.final_verdict()
        m = c.m
        if c.results[0] is None or fv == V.V_ABORTED:
            # no per-cell results: the run's verdict and why
            word = V.VERDICT_NAMES[fv]
            sx, sy = self.fit(word, self.w, 3)
            self.center(word, 0, sx, sy)
            code = c.fault if c.fault else c.invalid
            y = 8 * sy + 3
            if code:
                name, todo = ui.fault_info(code)
                self.center(name, y)
                y += 9
                for ln in ui.wrap(todo)[:(self.h - y) // 8]:
                    self.text(ln, 0, y)
                    y += 8
            return
        n = c.n
        if n == 1:
            self._verdict_one(c, m, fv)
            return
        pages = (n + 1) // 2
        p = self.page % pages
        for k in range(2):
            i = 2 * p + k
            if i < n:
                self._verdict_band(c, i, k * 27)
        fb.hline(0, 54, self.w, 1)
        if pages > 1:
            self.text(ui.limit(m), 0, 56)
            self.right("page %d/%d" % (p + 1, pages), 56)
        else:
            self.text((m["name"][:8] + " " + ui.limit(m))[:ui.LINE], 0, 56)

    def _verdict_one(self, c, m, fv):
        r = c.results[0]
        word = V.VERDICT_NAMES[r.verdict]
        sx, sy = self.fit(word, self.w, 3)
        self.center(word, 0, sx, sy)
        y = 8 * sy + 3
        self.text("loss " + ui.pct(r.loss_pct_x100), 0, y)
        self.text("U " + ui.pct(r.u_pct_x100), 0, y + 9)
        self.right("k=2", y + 9)
        why = self._no_pass_name(c, 0, r)
        if why:
            # INCONCLUSIVE because the cell could not PASS (so no leak was seen): say why
            self.text(("why: " + why)[:ui.LINE], 0, y + 18)
        else:
            self.text("leakage: YES" if r.flags & V.FL_LEAK else "leakage: no", 0, y + 18)
        self.fb.hline(0, 54, self.w, 1)
        self.text((m["name"][:8] + " " + ui.limit(m))[:ui.LINE], 0, 56)

    @staticmethod
    def _no_pass_name(c, i, r):
        # the first reason the cell could not PASS, shown on an INCONCLUSIVE verdict (codes.NP_*)
        np_ = getattr(c, "no_pass", None)
        if r.verdict != V.V_INCONCLUSIVE or not np_ or not np_[i]:
            return ""
        return C.NO_PASS_NAMES[np_[i][0]]

    def _verdict_band(self, c, i, y):
        r = c.results[i]
        self.big("%d" % (i + 1), 0, y, 2, 2)
        self.fb.vline(17, y, 24, 1)
        word = V.VERDICT_NAMES[r.verdict]
        sx, sy = self.fit(word, self.w - 20, 2)
        self.big(word, 20, y, sx, sy)
        why = self._no_pass_name(c, i, r)
        if r.flags & V.FL_LEAK:
            t = "LEAK " + ui.pct(r.loss_pct_x100)
        elif why:
            t = why
        else:
            t = ui.pct(r.loss_pct_x100) + " U" + ui.pct(r.u_pct_x100)
        self.text(t[:13], 20, y + 17)

    def draw_fault(self, c):
        fb = self.fb
        fb.fill(0)
        code = c.fault if c.fault else c.invalid
        name, todo = ui.fault_info(code)
        self.title("FAULT", "code %d" % code)
        sx, sy = self.fit(name, self.w, 2)
        self.center(name, 11, sx, sy)
        y = 29
        for ln in ui.wrap(todo)[:3]:
            self.text(ln, 0, y)
            y += 8
        fb.hline(0, 54, self.w, 1)
        # where and when: the phase the fault ended (the one before ABORTED), run time h:mm
        ph = c.phases[-2][0] if len(c.phases) >= 2 else ""
        t = c.faults[0][1] if c.faults else c.t_s()
        self.text(("in %s %s" % (ph, ui.hm(t)))[:ui.LINE] if ph else "outputs off", 0, 56)

    def draw(self, c, ask=0, ask_cell=0):
        """The screen for the controller's state (a pending confirmation `ask` first)."""
        if ask:
            self.draw_prompt(ask, ask_cell)
            return
        ph = c.phase
        if ph == PH_ABORTED:
            self.draw_fault(c)
        elif ph == PH_DONE or ph == PH_VERDICT:
            self.draw_verdict(c)
        elif ph == PH_LOAD:
            self.draw_prompt(PR_LOAD, 0)
        elif ph == PH_LEAK_CHECK:
            self.draw_prompt(PR_LEAK, leak_cell(c))
        elif ph == PH_IDLE:
            self.draw_idle(c.m)
        else:
            self.draw_status(c)


class Refresher:
    """Redraws at most once per `every` ticks (or at a screen change) and moves the frame to the
    panel one page per service() call. See the timing rule at the top of this module."""

    def __init__(self, screen, panel, every=EVERY_TICKS, redraw_ms=REDRAW_MS, page_ms=PAGE_MS):
        self.screen = screen
        self.panel = panel          # .send_page(p): SSD1306Pages, MemDisplay
        self.every = every
        self.redraw_ms = redraw_ms
        self.page_ms = page_ms
        self.c = None
        self.ask = 0                # a confirmation prompt over the controller's screen
        self.ask_cell = 0
        self._due = 0
        self._count = 0
        self._key = -1
        self._next = PAGES          # next page to send; PAGES = the frame is on the panel
        self._frames = 0
        self.redraws = 0
        self.pages_sent = 0

    def confirm(self, kind, cell=0):
        """Show a prompt (PR_ABORT, ...) until confirm(0)."""
        self.ask = kind
        self.ask_cell = cell

    def tick(self, c):
        self.c = c
        self._count += 1
        if self._count >= self.every or screen_key(c, self.ask) != self._key:
            self._due = 1

    def service(self, budget_ms):
        if self._next < PAGES:
            if budget_ms < self.page_ms:
                return -1
            self.panel.send_page(self._next)
            self._next += 1
            self.pages_sent += 1
            return 1 if (self._next < PAGES or self._due) else 0
        if self._due:
            if budget_ms < self.redraw_ms:
                return -1
            self.redraw()
            return 1
        return 0

    def redraw(self):
        c = self.c
        if c is None:
            return
        self._due = 0
        self._count = 0
        self._key = screen_key(c, self.ask)
        scr = self.screen
        if c.phase == PH_DONE:
            self._frames += 1
            scr.page = (self._frames // _VERDICT_FLIP) % scr.verdict_pages(c)
        scr.draw(c, self.ask, self.ask_cell)
        self._next = 0
        self.redraws += 1

    def idle(self, ticks_ms, ticks_diff, budget_ms=IDLE_BUDGET_MS):
        t0 = ticks_ms()
        while self.service(budget_ms - ticks_diff(ticks_ms(), t0)) > 0:
            pass


class SSD1306Pages:
    """Page-wise transfer for micropython-lib's ssd1306 driver (SSD1306_I2C / SSD1306_SPI): the
    driver is the FrameBuffer the Screen draws into; send_page(p) writes page p (128 bytes) the
    way the driver's show() writes the whole frame. Allocation-free with the I2C driver."""

    def __init__(self, drv):
        self.d = drv
        w = drv.width
        mv = memoryview(drv.buffer)
        self._views = [mv[p * w:(p + 1) * w] for p in range(drv.pages)]
        self._x0 = (128 - w) // 2
        self._x1 = self._x0 + w - 1

    def send_page(self, p):
        d = self.d
        d.write_cmd(0x21)       # SET_COL_ADDR
        d.write_cmd(self._x0)
        d.write_cmd(self._x1)
        d.write_cmd(0x22)       # SET_PAGE_ADDR
        d.write_cmd(p)
        d.write_cmd(p)
        d.write_data(self._views[p])


class MemDisplay(framebuf.FrameBuffer):
    """A display in RAM (the simulated bench's board.display): the framebuffer `buffer`, and
    `panel`, what the OLED would show, updated by show() or page by page by send_page(p)."""

    def __init__(self, width=W, height=H):
        self.width = width
        self.height = height
        self.pages = height // 8
        self.buffer = bytearray(self.pages * width)
        super().__init__(self.buffer, width, height, framebuf.MONO_VLSB)
        self.panel = bytearray(self.pages * width)
        self.shows = 0

    def show(self):
        self.panel[:] = self.buffer
        self.shows += 1

    def send_page(self, p):
        b = self.buffer
        d = self.panel
        w = self.width
        for i in range(p * w, (p + 1) * w):
            d[i] = b[i]


class Capture:
    """Screenshots for the simulated bench (`ovenctl sim --screens`): the framebuffer's bytes
    each time the screen changes (phase, prompt, fault) and the final verdict screen(s). Draws
    into the board's own display, so the shots are that framebuffer's real bytes."""

    def __init__(self, disp, method):
        import binascii
        self._hex = binascii.hexlify
        self.d = disp
        self.screen = Screen(disp)
        self.shots = []
        self._key = -1
        self.screen.draw_idle(method)
        self.shot("00-IDLE")

    def shot(self, name):
        self.shots.append({"name": name, "fb_hex": self._hex(bytes(self.d.buffer)).decode()})

    def check(self, c):
        k = screen_key(c)
        if k == self._key:
            return
        self._key = k
        self.screen.page = 0
        self.screen.draw(c)
        ph = c.phase
        name = "%02d-%s" % (ph, c.phases[-1][0] if c.phases else "IDLE")
        if ph == PH_LEAK_CHECK:
            name += "-cell%d" % (leak_cell(c) + 1)
        self.shot(name)

    def final(self, c):
        scr = self.screen
        for p in range(scr.verdict_pages(c)):
            scr.page = p
            scr.draw_verdict(c)
            self.shot("99-verdict" if p == 0 else "99-verdict-%d" % (p + 1))
        scr.page = 0
