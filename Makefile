# `make train` and `make test` set up .venv on first use (pip; torch comes from local wheels).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install train test test-fast lint eval sweep clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

train: install  ## train the default (demo corpus) configuration; extra Hydra overrides via ARGS=
	$(PY) train.py $(ARGS)

test: install  ## every test, slow ones included
	$(PY) -m pytest -q $(ARGS)

test-fast: install
	$(PY) -m pytest -q -m "not slow" $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

eval: install  ## e.g. make eval ARGS="ckpt=logs/runs/demo-lfcc-cnn_gru-weighted_ce/v1/checkpoints/best.ckpt"
	$(PY) eval.py $(ARGS)

sweep: install  ## a small front-end x model sweep on the demo corpus, on CPU
	$(PY) train.py -m experiment=demo_sweep $(ARGS)

clean:
	rm -rf logs multirun outputs .pytest_cache .ruff_cache
