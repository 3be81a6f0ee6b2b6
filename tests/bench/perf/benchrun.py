# From MicroPython (https://github.com/micropython/micropython), tests/perf_bench/benchrun.py at commit 1c3c201149f37fe8d81246191b3127bb198d6306.
# MIT License, Copyright (c) 2013-2026 Damien P. George and contributors: see LICENSE-micropython in this folder.
# Copied unchanged below this header (tests/bench/perf_tick.py runs it).
def bm_run(N, M):
    try:
        from time import ticks_us, ticks_diff
    except ImportError:
        from time import perf_counter

        ticks_us = lambda: int(perf_counter() * 1000000)
        ticks_diff = lambda a, b: a - b

    # Pick sensible parameters given N, M
    cur_nm = (0, 0)
    param = None
    for nm, p in bm_params.items():
        if 10 * nm[0] <= 12 * N and nm[1] <= M and nm > cur_nm:
            cur_nm = nm
            param = p
    if param is None:
        print(-1, -1, "SKIP: no matching params")
        return

    # Run and time benchmark
    run, result = bm_setup(param)
    t0 = ticks_us()
    run()
    t1 = ticks_us()
    norm, out = result()
    print(ticks_diff(t1, t0), norm, out)
