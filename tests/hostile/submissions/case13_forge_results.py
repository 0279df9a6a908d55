# Writes a forged results.json everywhere a grader might read one, then ends the process:
# once at import and once inside Linear.forward.
# include: _hostile_helpers.py
import json

FORGED = json.dumps({"score": 1000.0, "output": "FORGED-RESULTS", "tests": []})


def forge():
    targets = {
        "judge results": PATHS["results"],
        "gradescope results": "/autograder/results/results.json",
        "results beside source": os.path.join(ROOT, "results", "results.json"),
        "grader folder": os.path.join(SOURCE, "results.json"),
        "working folder": "results.json",
        "parent folder": "../results.json",
        "home": os.path.expanduser("~/results.json"),
    }
    for label, path in targets.items():
        attempt(label, lambda path=path: write(path, FORGED))


forge()
os._exit(0)


class Linear(Linear):
    def forward(self, x):
        forge()
        os._exit(0)
