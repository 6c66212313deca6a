"""Run a Python module as a subprocess whose clock agrees with the test session's.

`python -m tests.shifted flask --app wsgi rq worker high` runs `flask ...` as `python -m flask`
would; when the session travelled in time (DINGHUO_TEST_NOW, see conftest), the subprocess is
shifted by the same amount, so rows it compares with "now" mean the same moment to both.
"""
import os
import runpy
import sys
import time

shift = float(os.environ.get("DINGHUO_TEST_CLOCK_SHIFT") or 0)
if shift:
    import time_machine

    time_machine.travel(time.time() + shift, tick=True).start()
    time.time()  # time-machine starts ticking at the first reading

module, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
