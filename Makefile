# `make demo` and `make test` each create .venv on first use, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE ?= 1
export PYTHONUNBUFFERED := 1

.PHONY: demo test test-fast lint typecheck setup bench clean-runs

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# torch first, pinned: a bare `torch` would resolve to a newer multi-GB build. --no-compile:
	@# byte-compiling all of torch up front costs more than compiling what is imported, lazily.
	$(BIN)/pip install -q --no-compile torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q --no-compile -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/labconsole run presets/quickstart.toml
	@echo "quickstart report: $$(ls -td runs/*-quickstart-s*/ | head -1)report.html"

test: lint typecheck $(STAMP)
	$(BIN)/python -m pytest -q -x --durations=15

# The guardrails run before the tests, so a red lint or type check fails fast.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/labconsole bench readout
	$(BIN)/labconsole bench session
	$(BIN)/labconsole bench finetune
	$(BIN)/labconsole bench startup

clean-runs:
	rm -rf runs/*/ runs/.tmp*
