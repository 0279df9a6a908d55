# Starts a daemon (double fork, new session) meant to outlive grading: for 60 s it rewrites
# results.json with a forged one and touches a heartbeat file the test watches (in its own work
# folder, the one place it may write).
# include: _hostile_helpers.py
import json
import time

HEARTBEAT = os.path.join(os.getcwd(), "kit-hostile-heartbeat")
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
