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
	$(PY) -m xbarlab.cli validate --out reports
	# RxNN Fig. 2/3 sensitivity studies (report mode, < 15 min on 2 cores; cached in reports/.cache/; --full for paper counts)
	$(PY) -m xbarlab.cli characterize all --out reports --no-progress
	$(PY) benchmarks/bench_g_nonideal.py --out reports
	# Fig. 10 on the one preset (rxnn-spintronic) at its R_PD and at the strong 200 ohm DAC load
	# (20 pairs per size here; --pairs 100 is the paper's count)
	$(PY) -m characterization.fcm_accuracy --out reports --pairs 20
	$(PY) -m characterization.fcm_accuracy --out reports --pairs 20 --r-pd 200 --name fcm_accuracy_rpd200
	$(PY) -m characterization.fcm_speed --out reports
	# dnn_eval: RxNN Fig. 12-16 on digits and mnist5k (about 12 min on 2 cores with the calibrated converter ranges) and the speed benchmark
	$(PY) -m dnn_eval.experiments.fig12_accuracy --out reports
	$(PY) -m dnn_eval.experiments.fig12_energy --out reports
	$(PY) -m dnn_eval.experiments.fig14_sensitivity --out reports
	$(PY) -m dnn_eval.experiments.fig15_retrain --out reports
	$(PY) -m dnn_eval.experiments.fig16_features --out reports
	# the paper's DNN statements judged from those CSVs: the `## DNNs on crossbars` verdicts of reports/index.md
	$(PY) -m dnn_eval.experiments.verdicts --out reports
	# TxSim (issue 14): three-phase training on crossbars, its sensitivity curves (3 seeds; `## Training on
	# crossbars (TxSim)` of reports/index.md) and one training step against plain PyTorch
	$(PY) -m dnn_eval.experiments.txsim_train --out reports
	$(PY) -m dnn_eval.experiments.txsim_sensitivity --out reports --seeds 3
	$(PY) benchmarks/bench_train.py --out reports
	# NEAT (issue 15): 1T-1R single-cell G_eff and cut-off conductance from ngspice, accuracy and energy against V_G
	$(PY) -m dnn_eval.experiments.neat_cell --out reports
	$(PY) -m dnn_eval.experiments.neat_accuracy --out reports
	$(PY) benchmarks/bench_dnn.py --out reports
	# headline numbers and targets at the top of reports/index.md
	$(PY) -m characterization.overview --out reports

test: deps
	$(PY) -m pytest -q
