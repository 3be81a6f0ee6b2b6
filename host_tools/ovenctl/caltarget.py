"""Where `ovenctl calibrate` and `ovenctl autotune` run the firmware's calibration procedures
(firmware/oven/store/calstore.py): the simulated bench in CPython (--sim SCENARIO; the store is a host
directory standing for the device's /calib), or a device on a serial port (--port; the idle
device's raw REPL, as `ovenctl deploy` uses it). Both run the same firmware code; on a device the
operator at the terminal is asked to put each mass on the pan, on the simulated bench the
simulated technician does it (the scenario's "calibration" block says what really goes on)."""
import json
import os
import sys

from ovenctl.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Refused(Exception):
    """The procedure refused (calstore.CalError): nothing stored. Exit status 1."""


def _fw_path():
    for p in (os.path.join(ROOT, "firmware"), os.path.join(ROOT, "boards"), os.path.join(ROOT, "tests", "shim")):
        if p not in sys.path:
            sys.path.append(p)


class SimTarget:
    def __init__(self, scn, cal_dir):
        _fw_path()
        from oven.store import calstore
        from oven.run import start
        from sim.model import Bench
        from sim.board import SimBoard
        from sim import runner
        self.CS = calstore
        self.P = start
        self.runner = runner
        self.scn = scn
        self.d = os.path.abspath(cal_dir)
        os.makedirs(self.d, exist_ok=True)
        s = dict(scn)
        s["blank_run"] = True           # the cells are not on the pans during a calibration
        self.bench = Bench(s)
        self.board = SimBoard(self.bench)
        self.n = self.bench.n_cells
        self.where = "simulated bench (store %s)" % self.d

    def _call(self, fn, *a, **k):
        try:
            return fn(*a, **k)
        except self.CS.CalError as e:
            raise Refused(str(e))

    def nominal_cpg(self):
        return self.board.counts_per_g

    def show(self):
        return {"cal": self.CS.load(self.n, self.nominal_cpg(), self.d), "history": self.CS.history(self.d),
                "equipment": self.CS.equipment(self.d), "files": sorted(os.listdir(self.d))}

    def span(self, ch, ref1_ug, ref2_ug, ask, cal_id, when):
        o = self.runner._cal_opts(self.scn, self.bench)
        act = list(o["ref_actual_g"])
        proc = self._call(self.CS.SpanProcedure, self.n, ch, ref1_ug, ref2_ug, nominal_cpg=self.nominal_cpg(),
                          d=self.d, cal_id=cal_id, when=when)
        try:
            self._call(self.P.run_procedure, self.board, proc, None, lambda m: None,
                       self.runner._placer(self.bench, [None] + act + [None, None]))
        finally:
            self.bench.remove_mass(ch)
        return proc.span

    def check(self, ask, when):
        cal = self.CS.load(self.n, self.nominal_cpg(), self.d)
        o = self.runner._cal_opts(self.scn, self.bench)
        r = self.P.check_weight(self.board, cal, self.d, lambda m: None,
                                place=self.runner._placer(self.bench, [None, o["check_actual_g"]]))
        for ch in range(self.n):
            self.bench.remove_mass(ch)
        return r

    def store(self, fn, *a, **k):
        return self._call(getattr(self.CS, fn), *a, d=self.d, **k)

    def autotune(self, setpoint_c_x100, cycles, when):
        kp, ki, kd, ku, tu = self._call(self.CS.autotune, self.board, setpoint_c_x100, cycles=cycles)
        return self.store("store_pid", kp, ki, kd, ku, tu, setpoint_c_x100, when=when)


# ---------------------------------------------------------------------------------------- device
_PRE = ("import json\nfrom oven.store import calstore\nfrom oven.run import plan, start\n"
        "def _r(f):\n"
        " try:\n"
        "  print('@@R',json.dumps({'ok':f()}))\n"
        " except calstore.CalError as e:\n"
        "  print('@@R',json.dumps({'refused':str(e)}))\n")
_BOARD = ("def _wb(f):\n"
          " b,c=start.repl_board()\n"
          " try:\n"
          "  return f(b)\n"
          " finally:\n"
          "  b.outputs_safe();b.deinit()\n")


class DeviceTarget:
    """An idle device (MicroPython REPL). Each step is one raw-REPL command running the firmware's
    own function; the answer is one '@@R {json}' line."""

    def __init__(self, port_path):
        self.port_path = port_path
        self.where = "device on %s" % port_path
        self._n = None
        self._cpg = None
        self.d = "/calib"           # calstore.CALIB_DIR on the device

    def _raw_exec(self, code, timeout_s):
        """Run code at the device's raw REPL; its stdout."""
        from ovenctl import deploy as D
        from ovenctl.rawrepl import RawRepl
        from ovenctl.transport import LinkError, Port
        try:
            D.refuse_if_running(self.port_path)
        except D.DeployError as e:
            raise UserError(str(e).replace("deploy refused", "calibration refused"), code=1)
        try:
            with Port(self.port_path) as port:
                raw = RawRepl(port, timeout_s=timeout_s)
                raw.enter()
                try:
                    return raw.exec(code, timeout_s=timeout_s).decode("utf-8", "replace")
                finally:
                    raw.exit()
        except (LinkError, OSError) as e:
            raise UserError("%s: %s" % (self.port_path, e), code=1)

    def _exec(self, code, timeout_s=60.0):
        out = self._raw_exec(_PRE + _BOARD + ("_D=%r\n" % self.d) + code, timeout_s)
        for ln in out.splitlines():
            if ln.startswith("@@R "):
                r = json.loads(ln[4:])
                if "refused" in r:
                    raise Refused(r["refused"])
                return r["ok"]
        raise UserError("%s: the device did not answer the calibration command: %s" % (self.port_path, out[-300:]),
                        code=1)

    def _info(self):
        if self._n is None:
            self._n, self._cpg = self._exec(
                "_r(lambda:_wb(lambda b:[b.n_cells,plan.load_config().get('counts_per_g',plan.DEFAULT_COUNTS_PER_G)]))")
        return self._n, self._cpg

    def nominal_cpg(self):
        return self._info()[1]

    def show(self):
        n, cpg = self._info()
        return self._exec("_r(lambda:{'cal':calstore.load(%d,%d,_D),'history':calstore.history(_D),"
                          "'equipment':calstore.equipment(_D)})" % (n, cpg))

    def _weigh(self, ch):
        return self._exec("_r(lambda:_wb(lambda b:list(calstore.weigh(b,%d))))" % ch, timeout_s=200.0)

    def span(self, ch, ref1_ug, ref2_ug, ask, cal_id, when):
        n, cpg = self._info()
        # the same checks as calstore.SpanProcedure, before anything is weighed
        self._exec("_r(lambda:calstore.SpanProcedure(%d,%d,%d,%d,d=_D) and 0)" % (n, ch, ref1_ug, ref2_ug))
        refs = [0, ref1_ug] + ([ref2_ug] if ref2_ug else [])
        res = []
        for m in refs:
            if m == 0:
                ask("channel %d: empty the pan and close the oven" % (ch + 1))
            else:
                ask("channel %d: put the reference mass %s on the pan" % (ch + 1, _fmt(m)))
            res.append(self._weigh(ch))
        code = ("def _s():\n"
                " sp=calstore.span_from(%d,%r,%r,%d,%r,%d,%d,cal_id=%r,when=%r)\n"
                " calstore.store_span(%d,%d,sp,_D,when=%r)\n"
                " return sp\n"
                "_r(_s)\n" % (ch, tuple(res[0]), tuple(res[1]), ref1_ug, tuple(res[2]) if ref2_ug else None, ref2_ug,
                              cpg, cal_id, when, n, ch, when))
        return self._exec(code)

    def check(self, ask, when):
        n, cpg = self._info()
        code = ("def _c():\n"
                " cal=calstore.load(%d,%d,_D)\n"
                " p=calstore.CheckProcedure(%d,cal,_D,when=%r)\n"
                " return [p.weight_ug,p.tol_ug]\n"
                "_r(_c)\n" % (n, cpg, n, when))
        try:
            w, tol = self._exec(code)
        except Refused as e:
            return {"ok": None, "skipped": str(e)}
        results = []
        for ch in range(n):
            ask("channel %d: empty the pan" % (ch + 1))
            z = self._weigh(ch)
            ask("channel %d: put the check weight (%s) on the pan" % (ch + 1, _fmt(w)))
            r = self._weigh(ch)
            dev, ok = self._exec("def _e():\n"
                                 " cal=calstore.load(%d,%d,_D)\n"
                                 " dv,ok=calstore.check_eval(%d,%r,%r,cal['channels'][%d]['counts_per_kg'],%d,%d)\n"
                                 " calstore.record_check(%d,dv,ok,_D,when=%r)\n"
                                 " return [dv,ok]\n"
                                 "_r(_e)\n" % (n, cpg, ch, tuple(z), tuple(r), ch, w, tol, ch, when))
            results.append([ch, dev, ok])
        bad = [r for r in results if not r[2]]
        msg = ("check weight OK on %d channel(s)" % n if not bad else
               "; ".join("ch %d: check weight off by %+.1f mg (tolerance %.1f mg)" % (c + 1, d / 1000, tol / 1000)
                         for c, d, _ in bad))
        return {"ok": not bad, "results": results, "message": msg, "mass_ug": w, "tol_ug": tol}

    def store(self, fn, *a, **k):
        args = ",".join([repr(x) for x in a] + ["%s=%r" % (kk, v) for kk, v in k.items()] + ["d=_D"])
        return self._exec("_r(lambda:calstore.%s(%s))" % (fn, args))

    def autotune(self, setpoint_c_x100, cycles, when):
        code = ("def _a():\n"
                " off=calstore.load(1,1,_D)['tc_offset_c_x100']['chamber']\n"
                " g=_wb(lambda b:calstore.autotune(b,%d,cycles=%d,tc_offset_c_x100=off))\n"
                " return calstore.store_pid(g[0],g[1],g[2],g[3],g[4],%d,d=_D,when=%r)\n"
                "_r(_a)\n" % (setpoint_c_x100, cycles, setpoint_c_x100, when))
        return self._exec(code, timeout_s=4 * 3600.0)


def _fmt(ug):
    return "%g g" % (ug / 1e6) if ug >= 1000000 else "%g mg" % (ug / 1000)


def target(args):
    """The target of --port / --sim (one of them is required: argparse enforces it)."""
    if getattr(args, "sim", None):
        from ovenctl.scenario import ScenarioError, load_scenario
        try:
            scn = load_scenario(args.sim)
        except (ScenarioError, OSError) as e:
            raise UserError("--sim %s: %s" % (args.sim, e))
        return SimTarget(scn, args.cal_dir)
    return DeviceTarget(args.port)

