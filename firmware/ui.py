# Screen contents for the 128x64 display: 8 lines of 21 characters (8x8 font: 16 characters;
# the verdict screen draws its first line at double size). Pure text; board code draws it.
import verdict as V

COLS = 21


def _pct(x100):
    s = "-" if x100 < 0 else ""
    x100 = -x100 if x100 < 0 else x100
    return "%s%d.%02d%%" % (s, x100 // 100, x100 % 100)


def verdict_lines(c):
    """Verdict screen of a finished Controller c: the overall verdict first and biggest, then one
    line per cell (loss and U), the method and limit."""
    fv = c.final_verdict()
    lines = [V.VERDICT_NAMES[fv]]
    m = c.m
    lim = m["limit_ppm"]
    lines.append("%s %s%s" % (m["name"][:11], "<=" if m["comparator"] == "le" else "<", _pct(lim // 100)))
    for i in range(c.n):
        r = c.results[i]
        if r is None:
            lines.append("C%d  no result" % (i + 1))
            continue
        tag = V.VERDICT_NAMES[r.verdict][:4]
        lines.append("C%d %-4s %s U%s" % (i + 1, tag, _pct(r.loss_pct_x100), _pct(r.u_pct_x100)))
        if r.flags & V.FL_LEAK:
            lines.append("   leak seen")
    if c.fault:
        lines.append("fault code %d" % c.fault)
    elif c.invalid:
        lines.append("invalid: code %d" % c.invalid)
    return [ln[:COLS] for ln in lines[:8]]
