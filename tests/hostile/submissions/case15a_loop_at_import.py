# An endless loop at import that swallows every exception, KeyboardInterrupt included.
import time

while True:
    try:
        time.sleep(0.5)
    except BaseException:
        pass
