# Operator screens (firmware/oven/ui/display.py) asserted from the framebuffer's pixels, and the
# Refresher's timing rule: redraw cadence, one page per service() call, whole frames only, the
# budget, and an allocation-free path when nothing is due. Runs in CPython (framebuf stand-in in
# tests/shim) and in the MicroPython VM (built-in framebuf); tests/host/test_screens.py checks
# that both give byte-identical framebuffers (render_all(), primitives()).
import framebuf

from oven.run import app
from oven.core import codes as C
from oven.core import verdict as V
from oven.core import methods
from oven.ui import display
from oven.ui import texts as ui

_FONT = {}


def new_fb():
    buf = bytearray(1024)
    return buf, framebuf.FrameBuffer(buf, 128, 64, framebuf.MONO_VLSB)


# ---------------------------------------------------------------- reading text back from pixels
def _glyphs():
    if not _FONT:
        g = bytearray(8)
        gfb = framebuf.FrameBuffer(g, 8, 8, framebuf.MONO_VLSB)
        for ch in range(32, 127):
            gfb.fill(0)
            gfb.text(chr(ch), 0, 0, 1)
            k = bytes(g)
            if k not in _FONT:
                _FONT[k] = chr(ch)
    return _FONT


def glyph_bytes(ch):
    """The 8 column bytes text() draws for character code ch (0..255) at (0, 0)."""
    g = bytearray(8)
    framebuf.FrameBuffer(g, 8, 8, framebuf.MONO_VLSB).text(chr(ch), 0, 0, 1)
    return bytes(g)


def cell(fb, x, y, sx, sy):
    """The 8x8 glyph cell at (x, y) drawn at scale sx x sy, as 8 column bytes; None when a
    sx x sy block is not uniform (not text at that scale)."""
    out = bytearray(8)
    for j in range(8):
        v = 0
        for r in range(8):
            p = fb.pixel(x + j * sx, y + r * sy)
            for dy in range(sy):
                for dx in range(sx):
                    if fb.pixel(x + j * sx + dx, y + r * sy + dy) != p:
                        return None
            if p:
                v |= 1 << r
        out[j] = v
    return bytes(out)


def decode(fb, x, y, sx, sy, n):
    """Read n characters of sx x sy text at (x, y) by matching each cell with the font's glyphs."""
    font = _glyphs()
    s = ""
    for k in range(n):
        c = cell(fb, x + 8 * sx * k, y, sx, sy)
        s += font.get(c, "?") if c is not None else "?"
    return s


def same_region(fb1, fb2, x, y, w, h):
    for yy in range(y, y + h):
        for xx in range(x, x + w):
            if fb1.pixel(xx, yy) != fb2.pixel(xx, yy):
                return False
    return True


def lit(fb, x, y, w, h):
    n = 0
    for yy in range(y, y + h):
        for xx in range(x, x + w):
            if fb.pixel(xx, yy):
                n += 1
    return n


class RecFB:
    """Forwards to a FrameBuffer and records the 1x text calls."""

    def __init__(self, fb):
        self.fb = fb
        self.texts = []

    def text(self, s, x, y, col=1):
        self.texts.append((s, x, y))
        self.fb.text(s, x, y, col)

    def fill(self, col):
        self.fb.fill(col)

    def fill_rect(self, x, y, w, h, col):
        self.fb.fill_rect(x, y, w, h, col)

    def rect(self, x, y, w, h, col, f=False):
        self.fb.rect(x, y, w, h, col, f)

    def hline(self, x, y, w, col):
        self.fb.hline(x, y, w, col)

    def vline(self, x, y, h, col):
        self.fb.vline(x, y, h, col)

    def pixel(self, x, y, col=None):
        if col is None:
            return self.fb.pixel(x, y)
        self.fb.pixel(x, y, col)


class RecScreen(display.Screen):
    """Records every scaled text: (string, x, y, sx, sy)."""

    def __init__(self, fb):
        super().__init__(fb)
        self.bigs = []

    def big(self, s, x, y, sx, sy, col=1):
        self.bigs.append((s, x, y, sx, sy))
        display.Screen.big(self, s, x, y, sx, sy, col)


# ---------------------------------------------------------------- controllers in known states
class _Board:
    def __init__(self, n):
        self.n_cells = n

    def ticks_diff(self, a, b):
        return a - b


_LIVE = (1234, 17020, 456, -30)


def controller(n=1, phase=app.PH_SOAK, method="gb-2026"):
    c = app.Controller(_Board(n), methods.preset(method))
    c.phase = phase
    c.phases = [[name, 0, 0] for name in app.PHASE_NAMES[1:phase + 1]]
    c.now_ms = 3 * 3600000 + 25 * 60000
    c.temp_c_x100 = 12003
    c.setpoint_c_x100 = 12000
    c.pressure_pa = 2150
    c.pump = 1
    c.in_spec = 1
    c.soak_in_spec_ms = 8130000         # 2:15:30 in spec: 3:44:30 left of 6 h
    for i in range(n):
        c.live_ppm[i] = _LIVE[i]
    return c


def result(verdict, loss_x100, u_x100, flags=0):
    r = V.Result()
    r.verdict = verdict
    r.loss_pct_x100 = loss_x100
    r.loss_ppm = loss_x100 * 100
    r.u_pct_x100 = u_x100
    r.u_ppm = u_x100 * 100
    r.flags = flags
    return r


def finished(results, method="gb-2026"):
    c = controller(len(results), app.PH_DONE, method)
    c.results = list(results)
    c.leak = [1 if r.flags & V.FL_LEAK else 0 for r in results]
    c.verdict = V.overall([r.verdict for r in results])
    return c


def aborted(code, phase=app.PH_SOAK):
    c = controller(1, phase)
    c.fault = code
    c.faults = [[code, 10800]]
    c.phases.append(["ABORTED", 10800, 10800])
    c.phase = app.PH_ABORTED
    return c


# ---------------------------------------------------------------- every screen, for VM vs CPython
def screens():
    """(name, function drawing into a Screen) for every screen and variant."""
    out = []
    for name in ("gb-2026", "tcsae-434-2025"):
        out.append(("idle-" + name, lambda s, m=methods.preset(name): s.draw_idle(m)))
    for n in (1, 2, 3, 4):
        for ph in (app.PH_PRECHECK, app.PH_TARE, app.PH_PREHEAT, app.PH_PUMPDOWN, app.PH_HEATUP, app.PH_SOAK, app.PH_COOLDOWN,
                   app.PH_VENT, app.PH_FINAL_WEIGH):
            out.append(("status-%d-%s" % (n, app.PHASE_NAMES[ph]), lambda s, n=n, ph=ph: s.draw_status(_status(n, ph))))
    out.append(("status-blank", lambda s: s.draw_status(_blank_status())))
    out.append(("status-tc-bad", lambda s: s.draw_status(_tc_bad())))
    out.append(("prompt-load", lambda s: s.draw_prompt(display.PR_LOAD, 0)))
    for i in range(4):
        out.append(("prompt-leak-%d" % (i + 1), lambda s, i=i: s.draw_prompt(display.PR_LEAK, i)))
    out.append(("prompt-abort", lambda s: s.draw_prompt("abort", 0)))
    for name, rs in _VERDICT_CASES:
        for p in range(2):
            out.append(("verdict-%s-p%d" % (name, p), lambda s, rs=rs, p=p: _verdict_page(s, rs, p)))
    out.append(("verdict-invalid", lambda s: s.draw_verdict(_invalid())))
    out.append(("verdict-aborted", lambda s: s.draw_verdict(aborted(C.F_TC_OPEN))))
    for code in sorted(ui.FAULTS) + [99]:
        out.append(("fault-%d" % code, lambda s, code=code: s.draw_fault(aborted(code))))
    return out


def _status(n, ph):
    c = controller(n, ph)
    if ph == app.PH_TARE or ph == app.PH_FINAL_WEIGH:
        for i in range(n):
            c.windows[i].state = i % 4 if i < 3 else 5
    if ph == app.PH_SOAK and n > 1:
        c.early_fail[1] = 1
        c.in_spec = 0
    if ph == app.PH_VENT:
        c.pump = 0
        c.vent = 1
        c.pressure_pa = 101325
    return c


def _blank_status():
    c = controller(2, app.PH_SOAK)
    c.mode = app.MODE_BLANK
    c.soak_in_spec_ms = 600000
    return c


def _tc_bad():
    c = controller(1, app.PH_HEATUP)
    c.tc_status = C.ST_TC_OPEN
    c.p_status = C.ST_P_RANGE
    return c


_VERDICT_CASES = (
    ("pass", (result(V.V_PASS, 22, 1),)),
    ("fail", (result(V.V_FAIL, 166, 1),)),
    ("inconclusive", (result(V.V_INCONCLUSIVE, 49, 2),)),
    ("leak", (result(V.V_FAIL, 12, 1, V.FL_LEAK),)),
    ("two", (result(V.V_FAIL, 166, 1), result(V.V_FAIL, 12, 1, V.FL_LEAK))),
    ("two-inc", (result(V.V_INCONCLUSIVE, 49, 2), result(V.V_PASS, 5, 1))),
    ("three", (result(V.V_PASS, 5, 1), result(V.V_INCONCLUSIVE, 49, 2), result(V.V_FAIL, 1033, 3))),
    ("four", (result(V.V_PASS, 5, 1), result(V.V_PASS, 31, 1), result(V.V_FAIL, 1033, 3),
              result(V.V_INVALID, -2, 1))),
)


def _verdict_page(s, rs, p):
    s.page = p
    s.draw_verdict(finished(rs))


def _invalid():
    c = finished((result(V.V_INVALID, 22, 1),))
    c.invalid = C.F_SOAK_MAX_TIME
    c.results[0] = None
    return c


def render_all():
    """name -> framebuffer bytes of every screen."""
    out = []
    buf, fb = new_fb()
    s = display.Screen(fb)
    for name, draw in screens():
        s.page = 0
        draw(s)
        out.append((name, bytes(buf)))
    return out


def primitives():
    """The FrameBuffer operations the display uses, with clipping cases, on two framebuffers
    (128x64, and 13x11 with stride 16); returns the raw bytes after each step."""
    out = []
    buf, fb = new_fb()
    sbuf = bytearray(16 * 2)
    sfb = framebuf.FrameBuffer(sbuf, 13, 11, framebuf.MONO_VLSB, 16)
    for f in (fb, sfb):
        f.fill(1)
        f.fill_rect(3, 2, 5, 9, 0)
        f.fill_rect(-4, -3, 9, 6, 0)
        f.fill_rect(120, 60, 20, 20, 0)
        f.fill_rect(5, 5, 0, 3, 0)
        f.fill_rect(5, 5, 3, -1, 0)
        f.rect(1, 1, 10, 7, 1)
        f.rect(-2, 4, 6, 30, 0)
        f.rect(2, 3, 4, 4, 1, True)
        f.hline(-5, 9, 200, 0)
        f.vline(7, -5, 100, 1)
        f.pixel(0, 0, 0)
        f.pixel(200, 0, 1)
        f.pixel(-1, -1, 1)
        f.pixel(4, 4, 7)
        out.append(bytes(buf) + bytes(sbuf))
        f.fill(0)
        out.append(bytes(buf) + bytes(sbuf))
    text = "".join([chr(i) for i in range(32, 127)])
    for k in range(0, len(text), 16):
        fb.text(text[k:k + 16], 0, (k // 16) * 9, 1)
    fb.text("\x01\x1f\x7f", 0, 56, 1)
    fb.text("ab\x00cd", 100, 40, 1)
    fb.text("\u00b0C \u00e9", 40, 56, 1)
    fb.text("clip", 124, -3, 1)
    fb.text("neg", -10, 60, 1)
    sfb.text("Ab", -3, 4, 1)
    out.append(bytes(buf) + bytes(sbuf))
    fb.fill_rect(0, 0, 40, 20, 1)
    fb.text("inv", 2, 2, 0)
    out.append(bytes(buf))
    fb.blit(sfb, 100, 50)
    fb.blit(sfb, -5, -4)
    fb.blit(sfb, 60, 20, 0)
    fb.blit(sfb, 80, 20, 1)
    pal = framebuf.FrameBuffer(bytearray(2), 2, 1, framebuf.MONO_VLSB)
    pal.pixel(0, 0, 1)
    pal.pixel(1, 0, 0)
    fb.blit(sfb, 30, 40, -1, pal)
    fb.blit(sfb, 200, 0)
    out.append(bytes(buf))
    pix = bytearray()
    for y in (0, 7, 8, 63):
        for x in (0, 5, 127):
            pix.append(fb.pixel(x, y))
    out.append(bytes(pix) + bytes([1 if fb.pixel(128, 0) is None else 0, 1 if fb.pixel(0, -1) is None else 0]))
    return out


# ---------------------------------------------------------------- tests: constants and texts
def test_phase_labels_fit():
    # phase, prompt and mode codes have one home (codes.py; tests/host/test_codes_agree.py)
    assert len(ui.PHASE_LABELS) == len(app.PHASE_NAMES)
    for lb in ui.PHASE_LABELS:
        assert len(lb) <= 11, lb


def test_every_fault_has_a_name_and_what_to_do():
    for k in dir(C):
        if k.startswith("F_") and getattr(C, k) != C.F_NONE:
            code = getattr(C, k)
            assert code in ui.FAULTS, k
            name, todo = ui.FAULTS[code]
            assert 0 < len(name) <= 8, (k, name)
            lines = ui.wrap(todo)
            assert 1 <= len(lines) <= 3, (k, lines)
            for ln in lines:
                assert len(ln) <= 16
    assert ui.FAULTS[C.F_TC_OPEN] == ("TC OPEN", "check thermocouple wiring")
    assert ui.fault_info(99)[0] == "FAULT 99"


def test_number_formats():
    assert ui.temp(12003) == "120.0C" and ui.temp(11995) == "120.0C" and ui.temp(2549) == "25.5C"
    assert ui.temp(-150) == "-1.5C"
    assert ui.kpa(2150) == "2.15kPa" and ui.kpa(101325) == "101.3kPa" and ui.kpa(9996) == "10.0kPa"
    assert ui.hms(13470) == "3:44:30" and ui.hm(21600) == "6:00" and ui.hms(-5) == "0:00:00"
    assert ui.ppm_pct(1234) == "0.12%" and ui.ppm_pct(17050) == "1.71%" and ui.ppm_pct(-30) == "0.00%"
    assert ui.ppm_pct(-70) == "-0.01%"
    assert ui.limit(methods.preset("gb-2026")) == "<=0.50%"
    assert ui.limit(methods.preset("tcsae-434-2025")) == "<1.00%"
    assert ui.wrap("check thermocouple wiring") == ["check", "thermocouple", "wiring"]
    assert ui.wrap("abcdefghijklmnopqrst uv") == ["abcdefghijklmnop", "qrst uv"]


# ---------------------------------------------------------------- tests: text scaling
def test_scaled_text_is_the_font_scaled():
    buf, fb = new_fb()
    s = display.Screen(fb)
    for sx, sy in ((1, 1), (2, 2), (3, 3), (1, 2), (2, 3)):
        fb.fill(0)
        s.big("Pq%7", 3, 5, sx, sy)
        assert decode(fb, 3, 5, sx, sy, 4) == "Pq%7", (sx, sy)
        # nothing outside the text's box
        assert lit(fb, 0, 0, 128, 64) == lit(fb, 3, 5, 32 * sx, 8 * sy)
    # 1x scaled text equals the font's own text()
    buf2, fb2 = new_fb()
    fb.fill(0)
    s.big("Hello, 120.0C", 0, 0, 1, 1)
    fb2.text("Hello, 120.0C", 0, 0, 1)
    assert buf == buf2
    # inverted (col 0) over a white bar
    fb.fill(1)
    s.big("AB", 0, 0, 2, 2, 0)
    assert decode(fb, 0, 0, 2, 2, 2) == "??"      # black-on-white is not white text
    assert fb.pixel(20, 40) == 1


def test_fit_chooses_the_largest_scale():
    f = display.Screen.fit
    assert f("PASS", 128, 3) == (3, 3)
    assert f("FAIL", 108, 2) == (2, 2)
    assert f("INCONCLUSIVE", 128, 3) == (1, 3)
    assert f("INCONCLUSIVE", 108, 2) == (1, 2)
    assert f("ABORTED", 128, 3) == (2, 3)
    assert f("gb-2026", 128, 2) == (2, 2)
    assert f("tcsae-434-2025", 128, 2) == (1, 2)


# ---------------------------------------------------------------- tests: screens
def _biggest(rs):
    return max([b[4] for b in rs.bigs])


def test_verdict_one_cell_is_the_biggest_text():
    for verdict, word in ((V.V_PASS, "PASS"), (V.V_FAIL, "FAIL"), (V.V_INCONCLUSIVE, "INCONCLUSIVE")):
        buf, fb = new_fb()
        rf = RecFB(fb)
        s = RecScreen(rf)
        s.draw_verdict(finished((result(verdict, 32, 2),)))
        big = [b for b in s.bigs if b[0] == word]
        assert len(big) == 1, s.bigs
        w, x, y, sx, sy = big[0]
        assert sy >= 2 and sy == _biggest(s)
        assert decode(fb, x, y, sx, sy, len(word)) == word
        assert x >= 0 and x + 8 * sx * len(word) <= 128
        texts = [t[0] for t in rf.texts]
        assert "loss 0.32%" in texts and "U 0.02%" in texts, texts
        assert "gb-2026 <=0.50%" in texts and "leakage: no" in texts
    # PASS at 3x: 96 x 24 pixels, centred
    buf, fb = new_fb()
    display.Screen(fb).draw_verdict(finished((result(V.V_PASS, 22, 1),)))
    assert decode(fb, 16, 0, 3, 3, 4) == "PASS"
    buf2, fb2 = new_fb()
    fb2.text("loss 0.22%", 0, 27, 1)
    assert same_region(fb, fb2, 0, 27, 128, 8)
    # visible leakage: FAIL, and said so
    buf, fb = new_fb()
    rf = RecFB(fb)
    display.Screen(rf).draw_verdict(finished((result(V.V_FAIL, 12, 1, V.FL_LEAK),)))
    assert decode(fb, 16, 0, 3, 3, 4) == "FAIL"
    assert "leakage: YES" in [t[0] for t in rf.texts]


def test_verdict_per_cell_with_loss_and_u():
    buf, fb = new_fb()
    rf = RecFB(fb)
    s = RecScreen(rf)
    s.draw_verdict(finished((result(V.V_FAIL, 166, 1), result(V.V_PASS, 12, 1))))
    words = [(b[0], b[3], b[4]) for b in s.bigs if b[0] in V.VERDICT_NAMES]
    assert words == [("FAIL", 2, 2), ("PASS", 2, 2)]
    for b in s.bigs:
        if b[0] in ("FAIL", "PASS"):
            assert decode(fb, b[1], b[2], b[3], b[4], 4) == b[0]
    assert decode(fb, 0, 0, 2, 2, 1) == "1" and decode(fb, 0, 27, 2, 2, 1) == "2"
    texts = [t[0] for t in rf.texts]
    assert "1.66% U0.01%" in texts and "0.12% U0.01%" in texts, texts
    # leak: said on the cell's line
    buf, fb = new_fb()
    rf = RecFB(fb)
    display.Screen(rf).draw_verdict(finished((result(V.V_PASS, 5, 1), result(V.V_FAIL, 12, 1, V.FL_LEAK))))
    assert "LEAK 0.12%" in [t[0] for t in rf.texts]


def test_verdict_three_and_four_cells_page_two_at_a_time():
    rs = (result(V.V_PASS, 5, 1), result(V.V_PASS, 31, 1), result(V.V_FAIL, 1033, 3), result(V.V_INCONCLUSIVE, 49, 2))
    c = finished(rs)
    buf, fb = new_fb()
    s = display.Screen(fb)
    assert s.verdict_pages(c) == 2
    s.page = 1
    s.draw_verdict(c)
    assert decode(fb, 0, 0, 2, 2, 1) == "3" and decode(fb, 20, 0, 2, 2, 4) == "FAIL"
    assert decode(fb, 0, 27, 2, 2, 1) == "4" and decode(fb, 20, 27, 1, 2, 12) == "INCONCLUSIVE"
    assert decode(fb, 0, 56, 1, 1, 16) == "<=0.50% page 2/2"


def test_verdict_without_results_says_why():
    buf, fb = new_fb()
    rf = RecFB(fb)
    s = RecScreen(rf)
    s.draw_verdict(aborted(C.F_TC_OPEN))
    assert s.bigs[0][0] == "ABORTED" and s.bigs[0][4] == _biggest(s)
    assert decode(fb, s.bigs[0][1], 0, s.bigs[0][3], s.bigs[0][4], 7) == "ABORTED"
    texts = [t[0] for t in rf.texts]
    assert "TC OPEN" in texts and "check" in texts and "wiring" in texts
    buf, fb = new_fb()
    rf = RecFB(fb)
    display.Screen(rf).draw_verdict(_invalid())
    assert decode(fb, 8, 0, 2, 3, 7) == "INVALID"
    assert "SOAK MAX" in [t[0] for t in rf.texts]


def test_status_screen():
    c = controller(2, app.PH_SOAK)
    buf, fb = new_fb()
    display.Screen(fb).draw_status(c)
    # temperature at double size: compare with the expected text rendered into a second buffer
    buf2, fb2 = new_fb()
    display.Screen(fb2).big("120.0C", 0, 12, 2, 2)
    assert same_region(fb, fb2, 0, 12, 96, 16)
    assert decode(fb, 0, 12, 2, 2, 6) == "120.0C"
    fb2.fill(0)
    for s, x, y in (("p 2.15kPa", 0, 30), ("left 3:44:30", 0, 39), ("1 0.12%", 0, 53), ("2 1.70%", 64, 53),
                    ("OK", 112, 12), ("PUMP", 96, 30)):
        fb2.text(s, x, y, 1)
        assert same_region(fb, fb2, x, y, 8 * len(s), 8), s
    # title bar: white, the phase in black, the run time h:mm at the right
    assert lit(fb, 0, 0, 128, 1) == 128
    fb2.fill(0)
    fb2.fill_rect(0, 0, 128, 9, 1)
    fb2.text("SOAK", 1, 1, 0)
    fb2.text("3:25", 128 - 33, 1, 0)
    assert same_region(fb, fb2, 0, 0, 128, 9)
    # before the soak: time to go; weighing: each window's state
    c = controller(1, app.PH_INITIAL_WEIGH)
    display.Screen(fb).draw_status(c)
    assert decode(fb, 0, 53, 1, 1, 12) == "weigh settle"      # creep: settle_s before the m0 window
    c._weighing = 1
    c.windows[0].state = 2
    display.Screen(fb).draw_status(c)
    assert decode(fb, 0, 39, 1, 1, 16) == "soak 6:00 to go "
    assert decode(fb, 0, 53, 1, 1, 12) == "weigh STABLE"
    assert decode(fb, 1, 1, 1, 1, 8) == "????????"      # black on white: the title bar


def test_preheat_status_screen():
    # heat_in "air": PRE-HEAT in the title, the cell's (probe's) temperature while it heats in air, no
    # live loss yet (the soak has not started)
    buf, fb = new_fb()
    buf2, fb2 = new_fb()
    c = controller(1, app.PH_PREHEAT)
    c.pump = 0
    c.in_spec = 0
    c.soak_in_spec_ms = 0
    c._probe = object()
    c.probe_status = C.OK
    c.probe_c_x100 = 11842
    display.Screen(fb).draw_status(c)
    fb2.fill_rect(0, 0, 128, 9, 1)
    fb2.text("PRE-HEAT", 1, 1, 0)
    fb2.text("3:25", 128 - 33, 1, 0)
    assert same_region(fb, fb2, 0, 0, 128, 9)
    assert decode(fb, 0, 39, 1, 1, 11) == "cell 118.4C"
    assert decode(fb, 0, 53, 1, 1, 13) == "live loss -- "
    assert decode(fb, 112, 12, 1, 1, 2) == "SP"
    # no probe: the soak still to go
    c._probe = None
    display.Screen(fb).draw_status(c)
    assert decode(fb, 0, 39, 1, 1, 16) == "soak 6:00 to go "


def test_status_with_sensor_faults_shows_no_number():
    buf, fb = new_fb()
    display.Screen(fb).draw_status(_tc_bad())
    assert decode(fb, 0, 12, 2, 2, 6) == "T ----"
    assert decode(fb, 0, 30, 1, 1, 6) == "p ----"


def test_prompts():
    buf, fb = new_fb()
    s = display.Screen(fb)
    s.draw_prompt(display.PR_LEAK, 2)
    assert decode(fb, 16, 11, 2, 2, 6) == "CELL 3"
    assert decode(fb, 8, 28, 1, 1, 14) == "visible liquid"
    assert decode(fb, 6, 47, 2, 2, 3) == "YES" and decode(fb, 82, 47, 2, 2, 2) == "NO"
    s.draw_prompt("load", 0)
    assert decode(fb, 4, 47, 2, 2, 5) == "START"
    assert decode(fb, 0, 12, 1, 1, 15) == "Place the cells"
    s.draw_prompt(display.PR_ABORT, 0)
    assert decode(fb, 16, 11, 2, 2, 6) == "ABORT?"
    assert decode(fb, 6, 47, 2, 2, 3) == "YES"


def test_fault_screen():
    buf, fb = new_fb()
    rf = RecFB(fb)
    s = RecScreen(rf)
    s.draw_fault(aborted(C.F_TC_OPEN))
    assert s.bigs == [("TC OPEN", 8, 11, 2, 2)]
    assert decode(fb, 8, 11, 2, 2, 7) == "TC OPEN"
    texts = [t[0] for t in rf.texts]
    assert texts[:2] == ["FAULT", "code 12"]
    assert texts[2:5] == ["check", "thermocouple", "wiring"]
    assert texts[5] == "in SOAK 3:00"


def test_idle_screen():
    buf, fb = new_fb()
    rf = RecFB(fb)
    display.Screen(rf).draw_idle(methods.preset("gb-2026"))
    assert decode(fb, 8, 12, 2, 2, 7) == "gb-2026"
    texts = [t[0] for t in rf.texts]
    assert "loss <=0.50%" in texts and "120C +-2.0C 6h" in texts and "vac <=10.0kPa" in texts, texts


def test_auto_screen_follows_the_phase():
    buf, fb = new_fb()
    s = RecScreen(fb)
    c = controller(2, app.PH_LEAK_CHECK)
    c.leak = [0, None]
    s.draw(c)
    assert s.bigs[0][0] == "CELL 2"
    c = controller(1, app.PH_LOAD)
    s.bigs = []
    s.draw(c)
    assert s.bigs[0][0] == "START"
    s.bigs = []
    s.draw(controller(1, app.PH_SOAK), display.PR_ABORT)
    assert s.bigs[0][0] == "ABORT?"
    s.bigs = []
    s.draw(aborted(C.F_RUNAWAY))
    assert s.bigs[0][0] == "RUNAWAY"
    s.bigs = []
    s.draw(finished((result(V.V_PASS, 5, 1),)))
    assert s.bigs[0][0] == "PASS"


def test_every_screen_draws():
    names = {}
    for name, data in render_all():
        assert len(data) == 1024
        assert data != bytes(1024), name
        names[name] = 1
    assert len(names) >= 80


# ---------------------------------------------------------------- tests: the refresher
class Clock:
    def __init__(self):
        self.t = 0

    def ticks_ms(self):
        return self.t

    def ticks_diff(self, a, b):
        return a - b


class SlowPanel(display.MemDisplay):
    """A MemDisplay whose page transfer takes 4 ms of the fake clock."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock
        self.sent = []

    def send_page(self, p):
        display.MemDisplay.send_page(self, p)
        self.sent.append(p)
        self.clock.t += 4


def test_refresher_pages_and_cadence():
    clk = Clock()
    md = SlowPanel(clk)
    r = display.Refresher(display.Screen(md), md, every=3)
    c = controller(1, app.PH_SOAK)
    assert r.service(50) == 0              # no controller yet: nothing to do
    r.tick(c)
    assert r.service(10) == -1             # a redraw does not fit in 10 ms
    assert r.service(50) == 1 and r.redraws == 1 and md.sent == []
    for p in range(8):
        assert md.panel != md.buffer
        assert r.service(4) == (1 if p < 7 else 0)
        assert md.sent[-1] == p            # one 128-byte page per call
    assert md.panel == md.buffer and r.service(50) == 0
    assert r.service(3) == 0
    # periodic: due again after `every` ticks
    r.tick(c)
    r.tick(c)
    assert r.service(50) == 0
    r.tick(c)
    assert r.service(50) == 1 and r.redraws == 2
    # a frame in transit is finished before the next redraw, whatever becomes due
    assert r.service(50) == 1 and len(md.sent) == 9
    c.phase = app.PH_COOLDOWN
    r.tick(c)                              # screen change: due at once
    assert r.service(3) == -1               # a page needs 4 ms
    n = r.redraws
    while r.redraws == n:
        assert r.service(50) == 1
    assert len(md.sent) == 16              # the old frame went out whole first
    r.idle(clk.ticks_ms, clk.ticks_diff, 50)
    assert md.panel == md.buffer and len(md.sent) == 24
    # idle() stops at its budget: a redraw needs redraw_ms left, a page page_ms
    c.phase = app.PH_VENT
    r.tick(c)
    r.idle(clk.ticks_ms, clk.ticks_diff, 30)
    assert len(md.sent) == 24 and r.redraws == n + 1
    r.redraw_ms = 10
    r.idle(clk.ticks_ms, clk.ticks_diff, 20)      # redraw (0 ms here) + 5 pages of 4 ms
    assert len(md.sent) == 29
    r.idle(clk.ticks_ms, clk.ticks_diff, 50)
    assert len(md.sent) == 32 and md.panel == md.buffer


def test_refresher_confirm_prompt_and_verdict_pages():
    md = display.MemDisplay()
    r = display.Refresher(RecScreen(md), md, every=1)
    clk = Clock()
    c = controller(1, app.PH_SOAK)
    r.confirm(display.PR_ABORT)
    r.tick(c)
    r.idle(clk.ticks_ms, clk.ticks_diff)
    assert [b[0] for b in r.screen.bigs[-3:]] == ["ABORT?", "YES", "NO"]
    r.confirm(0)
    r.tick(c)
    r.idle(clk.ticks_ms, clk.ticks_diff)
    assert r.screen.bigs[-1][0] == "120.0C"
    # four cells: the verdict alternates between cells 1-2 and 3-4
    c = finished((result(V.V_PASS, 5, 1), result(V.V_PASS, 31, 1), result(V.V_FAIL, 1033, 3),
                  result(V.V_FAIL, 999, 3)))
    seen = {}
    for _ in range(8):
        r.tick(c)
        r.idle(clk.ticks_ms, clk.ticks_diff)
        seen[r.screen.page] = 1
    assert sorted(seen) == [0, 1]


class FakeI2C:
    """The SSD1306's side of the bus: command parser (column and page address ranges) and the
    display RAM in horizontal addressing mode. Counts the bytes on the wire."""

    def __init__(self):
        self.ram = bytearray(1024)
        self.args = bytearray(2)
        self.cmd = 0
        self.nargs = 0
        self.c0 = 0
        self.c1 = 127
        self.p0 = 0
        self.p1 = 7
        self.col = 0
        self.page = 0
        self.wire_bytes = 0

    def writeto(self, addr, buf):
        self.wire_bytes += 1 + len(buf)
        b = buf[1]
        if self.nargs:
            self.args[2 - self.nargs] = b
            self.nargs -= 1
            if not self.nargs:
                if self.cmd == 0x21:
                    self.c0 = self.args[0]
                    self.c1 = self.args[1]
                    self.col = self.c0
                else:
                    self.p0 = self.args[0]
                    self.p1 = self.args[1]
                    self.page = self.p0
        elif b == 0x21 or b == 0x22:
            self.cmd = b
            self.nargs = 2

    def writevto(self, addr, bufs):
        d = bufs[1]
        self.wire_bytes += 1 + len(bufs[0]) + len(d)
        for i in range(len(d)):
            self.ram[self.page * 128 + self.col] = d[i]
            if self.col == self.c1:
                self.col = self.c0
                self.page = self.p0 if self.page == self.p1 else self.page + 1
            else:
                self.col += 1


class FakeSSD1306(framebuf.FrameBuffer):
    """micropython-lib's SSD1306_I2C without the init sequence: same buffer, write_cmd, write_data."""

    def __init__(self, i2c):
        self.width = 128
        self.height = 64
        self.pages = 8
        self.buffer = bytearray(1024)
        super().__init__(self.buffer, 128, 64, framebuf.MONO_VLSB)
        self.i2c = i2c
        self.addr = 0x3C
        self.temp = bytearray(2)
        self.write_list = [b"\x40", None]

    def write_cmd(self, cmd):
        self.temp[0] = 0x80
        self.temp[1] = cmd
        self.i2c.writeto(self.addr, self.temp)

    def write_data(self, buf):
        self.write_list[1] = buf
        self.i2c.writevto(self.addr, self.write_list)


def test_ssd1306_pages_reach_the_panel():
    i2c = FakeI2C()
    drv = FakeSSD1306(i2c)
    pages = display.SSD1306Pages(drv)
    r = display.Refresher(display.Screen(drv), pages)
    r.tick(controller(2, app.PH_SOAK))
    assert r.service(50) == 1
    assert i2c.wire_bytes == 0             # a redraw is RAM only
    assert r.service(50) == 1
    per_page = i2c.wire_bytes
    # 6 commands (3 bytes each) + address, control byte, 128 data bytes: 148 bytes = 1332 bits,
    # 3.3 ms at 400 kHz; PAGE_MS covers it
    assert per_page == 148
    assert per_page * 9 * 1000 // 400000 < display.PAGE_MS
    while r.service(50) > 0:
        pass
    assert i2c.ram == drv.buffer
    # the same drawing through the driver's whole-frame path lands identically
    i2c2 = FakeI2C()
    drv2 = FakeSSD1306(i2c2)
    display.Screen(drv2).draw_status(controller(2, app.PH_SOAK))
    assert drv2.buffer == drv.buffer


def test_no_redraw_path_allocates_nothing():
    import micropython
    clk = Clock()
    tm = clk.ticks_ms
    td = clk.ticks_diff
    md = display.MemDisplay()
    r = display.Refresher(display.Screen(md), md, every=1000000)
    c = controller(2, app.PH_LEAK_CHECK)
    c.leak = [0, None]
    r.tick(c)
    r.idle(tm, td)
    assert r.redraws == 1 and md.panel == md.buffer
    n = r.redraws
    res = 0
    micropython.heap_lock()
    try:
        for _ in range(1000):
            r.tick(c)
            res += r.service(50)
            r.idle(tm, td, 50)
    finally:
        micropython.heap_unlock()
    assert res == 0 and r.redraws == n


def test_page_transfer_allocates_nothing():
    import micropython
    md = display.MemDisplay()
    i2c = FakeI2C()
    drv = FakeSSD1306(i2c)
    pages = display.SSD1306Pages(drv)
    display.Screen(drv).draw_prompt(display.PR_LOAD, 0)
    display.Screen(md).draw_prompt(display.PR_LOAD, 0)
    micropython.heap_lock()
    try:
        for p in range(8):
            md.send_page(p)
            pages.send_page(p)
    finally:
        micropython.heap_unlock()
    assert md.panel == md.buffer and i2c.ram == drv.buffer


def test_control_loop_with_display_allocates_nothing():
    # The real control tick (test_app_tick's integer-only board, soaking) plus the refresher's
    # per-tick call and idle slot, heap-locked: the display adds no allocation when no redraw is due.
    import micropython
    from test_app_tick import _soaking_controller
    b, c, f = _soaking_controller()
    md = display.MemDisplay()
    r = display.Refresher(display.Screen(md), md, every=1000000)
    tm = b.ticks_ms
    td = b.ticks_diff
    r.tick(c)
    r.idle(tm, td)
    ok = 0
    micropython.heap_lock()
    try:
        for _ in range(300):
            c.step()
            r.tick(c)
            r.idle(tm, td)
        ok = 1
    finally:
        micropython.heap_unlock()
    assert ok and r.redraws == 1 and c.phase == app.PH_SOAK


def test_capture_names_and_bytes():
    c = controller(2, app.PH_TARE)
    md = display.MemDisplay()
    cap = display.Capture(md, c.m)
    cap.check(c)
    cap.check(c)
    c.phase = app.PH_LEAK_CHECK
    c.phases.append(["LEAK_CHECK", 0, 0])
    c.leak = [None, None]
    cap.check(c)
    c.leak = [0, None]
    cap.check(c)
    cf = finished((result(V.V_PASS, 5, 1), result(V.V_PASS, 31, 1), result(V.V_FAIL, 1033, 3)))
    cap.final(cf)
    names = [s["name"] for s in cap.shots]
    assert names == ["00-IDLE", "02-TARE", "11-LEAK_CHECK-cell1", "11-LEAK_CHECK-cell2", "99-verdict",
                     "99-verdict-2"]
    for s in cap.shots:
        assert len(s["fb_hex"]) == 2048
    assert cap.shots[-1]["fb_hex"] == "".join(["%02x" % x for x in md.buffer])
