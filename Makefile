# Two commands on a fresh machine: `make demo` and `make test`. Each makes .venv itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
GGT := $(VENV)/bin/ggt
STAMP := $(VENV)/.installed-ggt
DEMO := demo-out
export HF_HUB_OFFLINE := 1

.PHONY: demo test test-fast bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,sample,bench,eval]'
	touch $(STAMP)

# The sample pack end to end: make it, build it, verify it, load it with `datasets`.
demo: $(STAMP)
	$(GGT) sample $(DEMO)/sample-raw
	$(GGT) build $(DEMO)/sample-raw $(DEMO)/ggt-100k-sample
	$(GGT) verify $(DEMO)/ggt-100k-sample --full
	$(GGT) info $(DEMO)/ggt-100k-sample

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	$(PY) bench/build.py

clean:
	rm -rf $(DEMO) build dist *.egg-info
