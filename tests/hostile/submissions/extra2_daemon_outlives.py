# Starts a daemon (double fork, new session) meant to outlive grading: for 60 s it rewrites
# results.json with a forged one and touches a heartbeat file the test watches.
# include: _hostile_helpers.py
import json
import time

HEARTBEAT = "/tmp/kit-hostile-heartbeat-{{RUN_TAG}}"
FORGED = json.dumps({"score": 1000.0, "output": "FORGED-BY-DAEMON", "tests": []})

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        until = time.monotonic() + 60
        while time.monotonic() < until:
            for path in (PATHS["results"], HEARTBEAT):
                try:
                    write(path, FORGED)
                except OSError:
                    pass
            time.sleep(0.1)
    os._exit(0)
time.sleep(0.5)
