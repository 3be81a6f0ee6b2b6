# `ovenctl sim` inside the MicroPython VM. hostargs.arg is the normalized scenario (JSON) with
# "_opts". Output: "@@P ..." progress lines, one "@@RESULT {json}" line, and, when a log was
# requested, "@@LOG <hex>" chunks of the device's run log.
import binascii
import json
import hostargs

from sim.runner import run_scenario

scn = json.loads(hostargs.arg)
opts = scn.pop("_opts", {})
key = opts.get("key_hex")
res, log = run_scenario(scn, progress_s=opts.get("progress_s", 0), want_log=opts.get("log", False), emit=print,
                        screens=opts.get("screens", False),
                        key=binascii.unhexlify(key) if key else None)
print("@@RESULT " + json.dumps(res))
if log is not None:
    for k in range(0, len(log), 4096):
        print("@@LOG " + binascii.hexlify(log[k:k + 4096]).decode())
