# Shared by the hostile submissions that go after the grader's files (included verbatim).
import os


def grader_paths():
    """Where the grader keeps its files, as a submission can find out: Gradescope's fixed
    layout, then the judge's own command line (/proc/<parent>/cmdline is world-readable)."""
    found = {"source": "/autograder/source", "results": "/autograder/results/results.json",
             "submission": "/autograder/submission"}
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as handle:
            argv = handle.read().decode(errors="replace").split("\0")
    except OSError:
        argv = []
    for flag in ("--source", "--results", "--submission"):
        if flag in argv[:-1]:
            found[flag[2:]] = argv[argv.index(flag) + 1]
    found["root"] = os.path.dirname(os.path.abspath(found["source"]))
    return found


def attempt(label, action):
    """Runs one hostile action and prints a line that the test reads back."""
    try:
        detail = action()
    except Exception as exc:
        print(f"hostile: {label}: REFUSED ({type(exc).__name__})")
        return None
    print(f"hostile: {label}: DONE {str(detail)[:400]!r}")
    return detail


def write(path, text):
    with open(path, "w") as handle:
        handle.write(text)
    return path


PATHS = grader_paths()
SOURCE, ROOT = PATHS["source"], PATHS["root"]
