# Writes outside its working folder: home, the shared temporary folders, and every file of the
# grader it can name (expected data, the engine, the chapter config, results, the submission).
# include: _hostile_helpers.py

NOTE = "written by a hostile submission\n"
TARGETS = {
    "home": os.path.expanduser("~/note.txt"),
    "tmp": "/tmp/kit-hostile-write-{{RUN_TAG}}",
    "var-tmp": "/var/tmp/kit-hostile-write-{{RUN_TAG}}",
    "shm": "/dev/shm/kit-hostile-write-{{RUN_TAG}}",
    "grader: expected data": f"{SOURCE}/chapter/expected/c000_k000_y.npy",
    "grader: engine": f"{SOURCE}/autograder/compare.py",
    "grader: chapter config": f"{SOURCE}/chapter/chapter.json",
    "grader: new file": f"{SOURCE}/planted.py",
    "grader: results": PATHS["results"],
    "grader: results folder": os.path.join(os.path.dirname(PATHS["results"]), "extra.json"),
    "grader: submission": os.path.join(PATHS["submission"], "submission.py"),
    "grader: root folder": os.path.join(ROOT, "planted.txt"),
}


def write_all():
    for label, path in TARGETS.items():
        attempt(label, lambda path=path: write(path, NOTE))


write_all()


class Linear(Linear):
    def forward(self, x):
        write_all()
        return super().forward(x)
