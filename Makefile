# The course kit. `make` builds every chapter's distributions and proves them; `make test` runs
# the whole suite. See README.md.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHAPTERS := $(notdir $(patsubst %/master.py,%,$(wildcard assignments/*/master.py)))

LINTED := autograder tools solutions student $(wildcard assignments/*/checks.py) \
  $(wildcard assignments/*/bug_zoo.py) $(wildcard assignments/*/bench.py)

.PHONY: all build lint test grade grade-all merge-grades image bench zoo-report clean

all: build

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, alone: it must resolve to the CPU wheel before anything else asks for it.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

build: $(VENV)/.installed
	$(PY) -m tools.build $(CHAPTERS)
	$(PY) -m tools.prairielearn $(CHAPTERS)

# Style that enforces itself: ruff (lint and format) and mypy on the engine, the tools, the
# references, the student package and every chapter's checks, bug zoo and bench (one mypy run
# per chapter: every chapter has a module named checks).
lint: $(VENV)/.installed
	$(PY) -m ruff check $(LINTED)
	$(PY) -m ruff format --check $(LINTED)
	$(PY) -m mypy autograder tools solutions student
	for chapter in assignments/*/; do \
	  $(PY) -m mypy $$chapter/checks.py $$chapter/bug_zoo.py \
	    $$(ls $$chapter/bench.py 2>/dev/null) || exit 1; done

# Two pytest workers (pytest-xdist, one per core; each grades as its own sandbox user), then the
# hostile-submission suite, which runs its own pool of sandbox users and must run alone.
test: lint build
	$(PY) -m pytest -q -n 2 tests --ignore=tests/hostile
	$(PY) -m pytest -q tests/hostile

grade: $(VENV)/.installed
	@test -n "$(CHAPTER)" -a -n "$(SUBMISSION)" || \
	  (echo "usage: make grade CHAPTER=<chapter> SUBMISSION=<file or folder> [RESULTS=<path>]"; exit 2)
	$(PY) -m tools.grade_local --chapter "$(CHAPTER)" --submission "$(SUBMISSION)" \
	  $(if $(RESULTS),--results "$(RESULTS)")

grade-all: $(VENV)/.installed
	@test -n "$(CHAPTER)" -a -n "$(SUBMISSIONS)" || \
	  (echo "usage: make grade-all CHAPTER=<chapter> SUBMISSIONS=<folder> [OUT=<folder>] [JOBS=<n>] [FORCE=1] [SHARD=i/N]"; exit 2)
	$(PY) -m tools.grade_all --chapter "$(CHAPTER)" --submissions "$(SUBMISSIONS)" \
	  $(if $(OUT),--out "$(OUT)") $(if $(JOBS),--jobs "$(JOBS)") $(if $(FORCE),--force) \
	  $(if $(SHARD),--shard "$(SHARD)")

# The shards of one class (grade-all with SHARD=i/N on several machines), merged into one
# scores.csv and report.html, identical to a single machine's.
merge-grades: $(VENV)/.installed
	@test -n "$(OUT)" -a -n "$(SHARDS)" || \
	  (echo "usage: make merge-grades OUT=<folder> SHARDS=\"<shard OUT> <shard OUT> ...\""; exit 2)
	$(PY) -m tools.merge_grades --out "$(OUT)" $(SHARDS)

# The grader as a container image (deploy/Dockerfile: the environment of the grader zip's
# setup.sh, the engine and the built grader zips), for a cluster or PrairieLearn. Needs Docker.
IMAGE ?= course-kit-grader:latest
image: build
	@command -v docker >/dev/null || (echo "make image needs Docker (none on this machine)"; exit 2)
	docker build -f deploy/Dockerfile -t "$(IMAGE)" .

bench: build
	$(PY) -m tools.bench

# Public versus hidden catch rates over every bug zoo, written to docs/zoo_report.md (every
# mutant graded, and its public checks run; about half an hour on 2 cores).
zoo-report: build
	$(PY) -m tools.zoo_report

clean:
	rm -rf dist build
