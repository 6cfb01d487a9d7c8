# Two commands on a fresh machine: `make demo` and `make test`. Each makes .venv itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
GGT := $(VENV)/bin/ggt
# Two install sets: the demo gets only what it runs (sample pack, scoring, the viewer it
# points to); the tests add the synthesis backends, Ray and a browser driver (several GB).
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test
DEMO := demo-out
export HF_HUB_OFFLINE := 1

.PHONY: demo test test-fast bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(DEMO_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[demo]'
	touch $(DEMO_STAMP)

$(TEST_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,sample,bench,eval]'
	touch $(TEST_STAMP)

# The sample pack end to end: make it, build it, verify it, load it with `datasets`;
# then two baselines on its test split, scored with every metric that runs here, compared;
# then both submitted to a local results folder, verified by re-scoring, and a leaderboard built;
# then generative-ground-truth synthesis of the test LQ photos with the classical backend
# (a baseline, offline), QC, build and verify; last, the command that opens the viewer.
demo: $(DEMO_STAMP)
	$(GGT) sample $(DEMO)/sample-raw
	$(GGT) build $(DEMO)/sample-raw $(DEMO)/ggt-100k-sample
	$(GGT) verify $(DEMO)/ggt-100k-sample --full
	$(GGT) info $(DEMO)/ggt-100k-sample
	$(GGT) baseline identity $(DEMO)/ggt-100k-sample --out $(DEMO)/preds/identity
	$(GGT) baseline classical $(DEMO)/ggt-100k-sample --out $(DEMO)/preds/classical
	$(GGT) score $(DEMO)/preds/identity --reference $(DEMO)/ggt-100k-sample --metrics available --out $(DEMO)/reports/identity -q
	$(GGT) score $(DEMO)/preds/classical --reference $(DEMO)/ggt-100k-sample --metrics available --out $(DEMO)/reports/classical -q
	$(GGT) score --compare $(DEMO)/reports/identity $(DEMO)/reports/classical --out $(DEMO)/reports/comparison
	@echo "(identity, the LQ itself, is a strong reference on PSNR/SSIM, not a floor: the classical"
	@echo " restorer gains on global degradations (haze, low light) and loses on local ones (rain, snow).)"
	rm -rf $(DEMO)/results
	$(GGT) leaderboard init $(DEMO)/results --reference $(DEMO)/ggt-100k-sample
	$(GGT) submit $(DEMO)/reports/identity --results $(DEMO)/results --model ggt-demo/identity --outputs $(DEMO)/preds/identity --name "identity (the LQ itself)"
	$(GGT) submit $(DEMO)/reports/classical --results $(DEMO)/results --model ggt-demo/classical --outputs $(DEMO)/preds/classical --name "classical (OpenCV)"
	$(GGT) leaderboard verify $(DEMO)/results --reference $(DEMO)/ggt-100k-sample
	$(GGT) leaderboard build $(DEMO)/results --out $(DEMO)/leaderboard
	$(GGT) synth $(DEMO)/sample-raw/test/LQ $(DEMO)/synth-raw --split test -q
	$(GGT) build $(DEMO)/synth-raw $(DEMO)/ggt-synth
	$(GGT) verify $(DEMO)/ggt-synth --full
	@echo
	@echo "Browse the pairs, a baseline's outputs and their per-image scores (Ctrl-C stops it):"
	@echo "  $(GGT) view $(DEMO)/ggt-100k-sample --report $(DEMO)/reports/classical"
	@echo "  $(GGT) view $(DEMO)/ggt-100k-sample --report $(DEMO)/reports/identity --port 8766"
	@echo "the two baselines side by side, sorted by where classical beats identity most:"
	@echo "  $(GGT) view $(DEMO)/ggt-100k-sample --submissions $(DEMO)/results --port 8768"
	@echo "the leaderboard (a static site):  $(PY) -m http.server -d $(DEMO)/leaderboard 8769"
	@echo "and the synthesized pairs:  $(GGT) view $(DEMO)/ggt-synth --port 8767"

# The whole suite, then mypy over the library (settings: [tool.mypy] in pyproject.toml).
# pytest-xdist workers, at most 4 (each builds the session fixtures and holds torch: more would
# cost memory, not time); idle workers steal queued tests. The whole suite gets one more worker
# than the cores, since many of its tests wait on a subprocess, a socket or a client's retry
# sleep; the fast set, one per core (a worker costs ~5 s of collection). One BLAS/OpenMP thread
# per process: with a pool per worker, the threads outnumber the cores and spin (measured on
# 2 cores: the whole suite 303 s with the default threads, 249-254 s with one).
WORKERS := $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 4 ? n + 1 : 4 )))
PYTEST := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q --dist worksteal
test: $(TEST_STAMP)
	$(PYTEST) -n $(WORKERS)
	$(PY) tools/typecheck.py

test-fast: $(TEST_STAMP)
	$(PYTEST) -n auto --maxprocesses 4 -m "not slow"

bench: $(TEST_STAMP)
	$(PY) bench/build.py
	$(PY) bench/score.py
	$(PY) bench/view.py
	$(PY) bench/view_photos.py
	$(PY) bench/synth.py

clean:
	rm -rf $(DEMO) build dist *.egg-info
