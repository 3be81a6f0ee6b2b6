"""The old home of the host side of the serial link, kept so that `from ovenctl import serial_link`
and `serial_link.X` go on working. It only re-exports: each name lives in the module of its layer,
and that is where to read it, or to patch it in a test (setting a name here changes nothing there).

  transport.py  the serial port (Port), the link's errors, crc32
  rawrepl.py    the idle device's raw REPL and its fast file reader
  protocol.py   the run protocol's client (RunLink) and probe()
  pull.py       resumable, verified copies of run logs (pull)
"""
from ovenctl.protocol import (ERR_NAMES, LINE_TIMEOUT_S, PROBE_TIMEOUT_S, RunLink, parse_response,
                              probe, request_line, valid_run_id)
from ovenctl.pull import (RAW_PER_EXEC, RUN_READ, SIDE_EVERY, Progress, PullResult, _load_partial,
                          _pull_one, _save_sidecar, _Sink, pull)
from ovenctl.rawrepl import RAW_CHUNK, REPL_BANNER, RUNS_DIR, RawRepl, unstuff
from ovenctl.transport import DeviceError, LinkError, Port, crc32

__all__ = ["ERR_NAMES", "LINE_TIMEOUT_S", "PROBE_TIMEOUT_S", "RunLink", "parse_response", "probe", "request_line",
           "valid_run_id", "RAW_PER_EXEC", "RUN_READ", "SIDE_EVERY", "Progress", "PullResult", "_load_partial",
           "_pull_one", "_save_sidecar", "_Sink", "pull", "RAW_CHUNK", "REPL_BANNER", "RUNS_DIR", "RawRepl", "unstuff",
           "DeviceError", "LinkError", "Port", "crc32"]
