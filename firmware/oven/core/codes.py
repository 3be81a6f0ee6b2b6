# Status, fault and event codes shared by drivers, the application and the log.
# Values are part of the run-log format (docs/LOGFORMAT.md): never renumber, only append.
from micropython import const

OK = const(0)

# Sensor read status (driver .read() return values)
ST_NOT_READY = const(1)       # ADC has no new conversion yet (not an error by itself)
ST_TC_OPEN = const(2)         # thermocouple open circuit (MAX31855 OC)
ST_TC_SHORT_GND = const(3)    # short to GND (SCG)
ST_TC_SHORT_VCC = const(4)    # short to VCC (SCV)
ST_TC_RANGE = const(5)        # reading outside the plausible range
ST_P_RANGE = const(6)         # pressure transducer output outside its calibrated span
ST_LC_RAIL = const(7)         # load-cell ADC at a rail value (saturated or disconnected)
ST_NO_DEVICE = const(8)       # bus error / device absent
ST_TIMEOUT = const(9)         # conversion did not complete before its deadline

# Fault codes recorded by the safety layer (F_*); a fault during a run means the verdict can never be PASS.
F_NONE = const(0)
F_TEMP_MAX = const(10)        # oven temperature above the cutoff
F_TEMP_MIN = const(11)        # temperature below the plausible minimum (sensor)
F_TC_OPEN = const(12)
F_TC_SHORT = const(13)
F_TC_STALE = const(14)        # no fresh thermocouple reading within the allowed time
F_HEAT_GAIN = const(15)       # heater on but temperature does not rise (heater dead / sensor detached)
F_RUNAWAY = const(16)         # error integral beyond the limit at setpoint (heater stuck on, etc.)
F_VACUUM_LOST = const(17)     # pressure above the vacuum limit during the soak
F_LEAK_RATE = const(18)       # pump-down leak-rate check failed
F_PUMPDOWN_TIMEOUT = const(19)
F_LOADCELL = const(20)        # load-cell channel missing, railed or stale
F_WEIGH_TIMEOUT = const(21)   # no stable reading within the weighing timeout
F_FLASH = const(22)           # not enough flash / filesystem error
F_WATCHDOG = const(23)        # reset by the hardware watchdog
F_OPERATOR_ABORT = const(24)
F_SOAK_MAX_TIME = const(25)   # in-spec soak not reached within the maximum total time
F_P_SENSOR = const(26)        # pressure transducer fault
F_HEATUP_TIMEOUT = const(27)
F_COOLDOWN_TIMEOUT = const(28)
F_INTERRUPTED = const(29)     # power cut or reset during the run, not resumed (recovery.py): INVALID

# Operator events (board.operator.poll())
EV_NONE = const(0)
EV_START = const(1)
EV_STOP = const(2)
EV_YES = const(3)
EV_NO = const(4)

# Run events (log EVENT records; fault events use the F_* codes above)
E_PHASE = const(100)          # a = new phase, b = previous phase
E_EXCURSION_START = const(101)  # a = |T - setpoint| c_x100, b = pressure Pa
E_EXCURSION_END = const(102)  # a = excursion duration s, b = in-spec soak s so far
E_LEAK_ANSWER = const(103)    # a = cell, b = 1 yes / 0 no
E_EARLY_FAIL = const(104)     # a = cell, b = live loss ppm
E_LC_FAULT = const(105)       # a = cell, b = driver status / window state
E_WEIGH_RETRY = const(106)    # a = cell, b = window state that ended the attempt
E_LC_GLITCH = const(107)      # a = cell, b = rejected samples this minute
E_INVALID = const(108)        # a = reason (an F_* code), b = 0
E_SOAK_DONE = const(109)      # a = in-spec s, b = total soak s

# Sample flags (log sample records)
SF_IN_SPEC = const(1)
SF_HEATER = const(2)
SF_PUMP = const(4)
SF_VENT = const(8)
SF_TC_BAD = const(16)
SF_P_BAD = const(32)
SF_FAULT = const(64)
SF_EXCURSION = const(128)
E_VAC_EXCURSION = const(110)  # a = 1 start / 0 end, b = pressure Pa (outside the soak: heat-up, cool-down)
E_RESUMED = const(111)        # run resumed after a power cut: a = outage s, b = resumes so far (recovery.py)
E_INTERRUPTED = const(112)    # run closed after a power cut: a = outage s (-1 unknown), b = reason (recovery.R_*)
# Issue 10: the cell's own temperature, the uncertainty budget, calibration
F_PROBE = const(30)           # reserved: reference probe (dummy cell) fault that ends a run
E_PROBE_TEMP = const(113)     # reference probe in the dummy cell: a = temp c_x100 (or -32768 bad), b = status; once a minute and at every tolerance change
E_NO_PASS = const(114)        # a reason why a cell cannot PASS: a = NP_* reason, b = cell (-1: every cell)
E_CHECK_WEIGHT = const(115)   # check-weight test: a = channel, b = deviation from the reference, ug
E_LC_TEMP_WAIT = const(116)   # final weighing waits for the load-cell temperature: a = lc temp c_x100 now, b = its value at m0
E_SETTLE = const(117)         # load cell settling after loading (creep) before m0: a = settle s, b = 0
E_PREHEAT_DONE = const(118)   # heat_in air: pre-heat done, pump-down starts: a = probe (chamber without one) c_x100, b = chamber c_x100

# Sample flags (continued; the flags field is a u16)
SF_PROBE_OUT = const(256)     # the reference probe is fitted and outside the tolerance (or not read) this second
SF_CHAMBER_TIMED = const(512)  # no reference probe: the soak is timed on the chamber thermocouple

# Reasons a cell cannot PASS (E_NO_PASS a; the verdict record's "no_pass" list); PASS becomes INCONCLUSIVE
NP_CHAMBER_TIMED = const(1)   # soak timed on the chamber, not the cell, and the method does not allow PASS so
NP_NO_BLANK = const(2)        # no drift correction: no blank fit
NP_BLANK_FAILED = const(3)    # the blank run failed
NP_BLANK_OLD = const(4)       # the blank fit is older than the method allows (blank_max_runs)
NP_ZERO_RETURN = const(5)     # the blank run's zero return is beyond the method's bound
NP_LC_TEMP = const(6)         # m1 weighed with the load-cell temperature outside the band around m0's
NP_SOAK_CUT = const(7)        # the soak ended early (early FAIL "stop") before this cell's full soak
NP_NO_CHECK = const(8)        # repeatability unknown: no check-weight history
NO_PASS_NAMES = ("", "CHAMBER_TIMED", "NO_BLANK", "BLANK_FAILED", "BLANK_OLD", "ZERO_RETURN", "LC_TEMP",
                 "SOAK_CUT", "NO_CHECK")

# Phase names by phase code (app.PH_*: part of the log format, like the codes above)
PHASE_NAMES = ("IDLE", "PRECHECK", "TARE", "LOAD", "INITIAL_WEIGH", "PUMPDOWN", "HEATUP", "SOAK",
               "COOLDOWN", "VENT", "FINAL_WEIGH", "LEAK_CHECK", "VERDICT", "DONE", "ABORTED", "PREHEAT")

# Phases of a run (log PHASE events, samples, display): PHASE_NAMES above is indexed by these
PH_IDLE = const(0)
PH_PRECHECK = const(1)
PH_TARE = const(2)
PH_LOAD = const(3)
PH_INITIAL_WEIGH = const(4)
PH_PUMPDOWN = const(5)
PH_HEATUP = const(6)
PH_SOAK = const(7)
PH_COOLDOWN = const(8)
PH_VENT = const(9)
PH_FINAL_WEIGH = const(10)
PH_LEAK_CHECK = const(11)
PH_VERDICT = const(12)
PH_DONE = const(13)
PH_ABORTED = const(14)
PH_PREHEAT = const(15)        # heat_in "air": heating in air (chamber closed, no vacuum) before PUMPDOWN

# Run modes (header "mode")
MODE_TEST = const(0)
MODE_BLANK = const(1)

# Operator prompts (board.operator.prompt(code, cell))
PR_LOAD = const(1)            # place the cells on the pans, press START
PR_LEAK = const(2)            # cell N: visible leakage? YES / NO
PR_ABORT = const(3)           # confirm abort (STOP pressed during a run; display only)

# Sentinel in raw_counts for "no valid load-cell sample this second" (outside signed 24 bits,
# inside MicroPython's small-int range so that reading it from an array('i') allocates nothing)
MISSING_RAW = const(-0x20000000)

# Load-cell span when neither config.json nor the calibration store gives one: raw counts per gram
# (a 200 g cell giving half the 24-bit ADC's range, 4,194,304 counts, at full load)
DEFAULT_COUNTS_PER_G = const(20972)

# "under vacuum": the blank fit's offset term (drift) and the live estimate (app)
VAC_PA = const(50000)
