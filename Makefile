# Two entry points on a fresh Debian machine (as root, or with sudo):
#   make report   - install what is missing, then write the default report into reports/
#   make test     - install what is missing, then run the whole test suite
# Both are idempotent.

PY      := .venv/bin/python
PIP     := .venv/bin/pip
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP   := .venv/.xbarlab-installed

.PHONY: report test ngspice deps clean-cache

ngspice:
	@command -v ngspice >/dev/null 2>&1 && [ -e /usr/include/ngspice/sharedspice.h -o -n "$$(ls /usr/lib/*/libngspice.so* 2>/dev/null)" ] || \
	  ( $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y ngspice libngspice0-dev )

$(STAMP): pyproject.toml
	[ -x $(PY) ] || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	# torch 2.13.0 is the CPU build; a plain 'torch' could pull a multi-GB CUDA build.
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[test,dnn]"
	touch $(STAMP)

deps: ngspice $(STAMP)

report: deps
	# every step that writes reports/, two at a time on two cores (--jobs), each timed (per-step wall,
	# CPU and schedule in reports/report_run.md); `$(PY) -m characterization.report --list` names them
	# and what each waits for; after a failure it prints the --only list that finishes the job
	$(PY) -m characterization.report --out reports

test: deps
	$(PY) -m pytest -q
