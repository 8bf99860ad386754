# Two entry points on a fresh Debian machine (as root, or with sudo):
#   make report   - install what is missing, then write the default report into reports/
#   make test     - install what is missing, then run the whole test suite
# Both are idempotent.

PY      := .venv/bin/python
PIP     := .venv/bin/pip
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP   := .venv/.xbarlab-installed

.PHONY: report test test-isa ngspice deps clean-cache

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

# The test suite with the compiled code of an older CPU (not run by CI; `make test` runs the host's):
#   make test-isa ISA=avx2   - numba kernels, torch's ATen kernels, MKL and OpenBLAS limited to AVX2
#   make test-isa ISA=sse4   - the same, limited to the x86-64 baseline (numba, ATen) and SSE4.2 (MKL, OpenBLAS)
ISA ?= avx2
ISA_ENV_avx2 := NUMBA_CPU_NAME=haswell ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 OPENBLAS_CORETYPE=Haswell
ISA_ENV_sse4 := NUMBA_CPU_NAME=x86-64 ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 OPENBLAS_CORETYPE=Nehalem
test-isa: deps
	@[ -n "$(ISA_ENV_$(ISA))" ] || { echo "ISA must be avx2 or sse4, got '$(ISA)'" >&2; exit 2; }
	env NUMBA_CPU_FEATURES= $(ISA_ENV_$(ISA)) $(PY) -c "import numba, torch; print('numba CPU', numba.config.CPU_NAME, '| torch', torch.backends.cpu.get_cpu_capability())"
	env NUMBA_CPU_FEATURES= $(ISA_ENV_$(ISA)) $(PY) -m pytest -q
