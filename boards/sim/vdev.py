# board_select for the virtual device (`ovenctl vdev`): the simulated bench behind a serial port.
#
# host_tools/ovenctl/vm/vdev.mjs installs this file in the VM as /rom/board_select.py and
# registers the JS module `vdevcfg` (scenario: normalized scenario JSON or "", autostart: true
# only on the first boot after "power on"). The run is driven from the host (HOST_DRIVEN): node
# calls host_session.advance(k) and, between calls, pushes the bytes received on the serial port
# into RX with rx_feed_hex() -- the way a UART/USB interrupt fills a receive FIFO that the
# firmware polls once per control tick.
import binascii

from oven import link

HOST_DRIVEN = True
host_session = None            # main.Session of the running test, set by main.py
RX = link.RxRing(4096)


def outputs_off():
    # Power-on: the simulated bench is created de-energised (heater, pump, vent off); there is
    # no GPIO to drive before the plan builds it.
    pass


def link_rx():
    return RX


def link_tx():
    return link.stdout_tx()


def rx_room():
    return RX.room()


def rx_feed_hex(h):
    """Bytes received from the host (hex): copied into the receive FIFO; returns the count taken."""
    return RX.put(binascii.unhexlify(h))


class SimPlan:
    """The run plan for a scenario: builds the controllers exactly like sim.runner.run_scenario
    (same bench preparation, same faults, same controller arguments), so a vdev run and
    `ovenctl sim` give the same records for the same scenario."""

    check_space = True

    def __init__(self, scn):
        from oven.core import methods
        from sim.model import Bench
        from sim.board import SimBoard
        self.scn = scn
        self.method = methods.validate(scn["method"])
        self.bench = Bench(scn)
        self.board = SimBoard(self.bench)
        self.n_cells = self.bench.n_cells
        self.blank_run = scn.get("blank_run", True)
        self.blank = None
        self.run_id = None
        # the calibration steps of sim.runner.run_scenario, in the same order on the same bench:
        # span, check weight before the blank run (here) and before the test (header())
        from oven.store import calstore
        from sim import runner
        self.cal_dir = runner.cal_dir_for(scn)
        runner.calibrate(scn, self.bench, self.board, self.cal_dir)
        self.cal = calstore.load(self.n_cells, self.board.counts_per_g, self.cal_dir)
        self.check_result = None
        if self.blank_run:
            self.check_result = runner.check(scn, self.bench, self.board, self.cal, self.cal_dir, None)

    def new_controller(self, mode, blank_fit, log):
        from oven.run import app
        from sim.runner import _Tracker
        bench = self.bench
        board = self.board
        bench.load_cells(0)
        if mode == app.MODE_BLANK:
            c = app.Controller(board, self.method, mode=app.MODE_BLANK,
                               counts_per_g=self.cal["channels"][0]["counts_per_g"], cal=self.cal)
            c.live_tick = _Tracker(bench, board, [], 0, None)
            return c
        scn = self.scn
        t_start_s = bench.t_ms // 1000
        bench.set_ambient_ramp(t_start_s, t_start_s + 30000, scn["ambient_c"], scn["ambient_end_c"])
        faults = scn.get("faults", [])
        for f in faults:
            if not f.get("phase"):
                bench.add_fault(f["kind"], t_start_s + f["at_s"], f.get("duration_s"), f.get("channel"))
        c = app.Controller(board, self.method, mode=app.MODE_TEST, blank=blank_fit, log=log,
                           counts_per_g=self.cal["channels"][0]["counts_per_g"], cal=self.cal)
        if self.cal.get("pid"):
            c.pid.set_gains(self.cal["pid"]["kp"], self.cal["pid"]["ki"], self.cal["pid"]["kd"])
        c.live_tick = _Tracker(bench, board, faults, 0, None)
        board.safe_calls = []
        return c

    def header(self, run_id, blank_fit):
        from oven.run import app
        from oven.store import calstore
        from sim import runner
        if self.blank_run:
            runner.cool_down(self.bench)        # as run_scenario: the oven back at ambient after the blank run
        chk = runner.check(self.scn, self.bench, self.board, self.cal, self.cal_dir, run_id)
        self.cal = calstore.load(self.n_cells, self.board.counts_per_g, self.cal_dir)
        if isinstance(blank_fit, list):
            blank_fit = [dict(ch, runs_used=ch.get("runs_used", 0) + 1) for ch in blank_fit]
        return {"run_id": run_id, "fw_version": app.FW_VERSION, "board": "sim", "mode": "test",
                "method": self.method, "cells": ["cell-%d" % (i + 1) for i in range(self.n_cells)],
                "calibration": {"counts_per_g": self.cal["channels"][0]["counts_per_g"],
                                "span": "calib" if self.cal["source"] == "measured" else "nominal",
                                "blank": blank_fit},
                "cal": self.cal, "records": runner._records(self.scn, self.board, self.method, self.cal_dir, chk),
                "scenario_seed": self.scn["seed"]}


def autostart():
    """The scenario's run on the first boot after power-on; None (idle REPL) otherwise."""
    try:
        import vdevcfg
    except ImportError:
        return None
    if not vdevcfg.autostart or not vdevcfg.scenario:
        return None
    import json
    return SimPlan(json.loads(vdevcfg.scenario))
