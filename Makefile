# The two set-up commands: `make run` and `make test`. Everything else is a convenience.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-chaos test-containers install lint format up down bench compose-config clean check-java

check-java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "error: Java 17 or newer is required (Spark runs the transformer)."; \
	  echo "       On Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless"; exit 1; }
	@java -version 2>&1 | head -1 | grep -Eq '"(1[7-9]|[2-9][0-9])' || { \
	  echo "error: Java 17 or newer is required by Spark; found: $$(java -version 2>&1 | head -1)"; exit 1; }

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,spark]"
	@touch $(STAMP)

install: check-java $(STAMP)

## make run: create .venv, install, start the local stack, run one IMDb extract end to end.
run: install
	$(BIN)/moviepipe demo

## make test: create .venv, install, lint, run the whole test suite.
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

## make test-chaos: the full chaos suite (tests/chaos): two replicas of every service, 20 extracts in flight,
## one of them the 1,000,000-row scaled source in PostgreSQL, services killed at random. `make test` runs
## a reduced version (4 IMDb extracts).
test-chaos: install
	MOVIEPIPE_CHAOS_EXTRACTS=20 MOVIEPIPE_CHAOS_SCALED_ROWS=1000000 $(BIN)/pytest -p no:cacheprovider tests/chaos

## make test-containers: build the images with podman, run the compose stack on them, one IMDb extract
## end to end, then tear it all down (needs root, podman, debootstrap, docker-compose: see .ci/run).
test-containers:
	bash deploy/containers/test.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

up: install
	$(BIN)/moviepipe up

down: install
	$(BIN)/moviepipe down

bench: install
	$(BIN)/moviepipe bench

compose-config:
	docker-compose config -q

clean:
	-$(BIN)/moviepipe down
	rm -rf $(VENV) .moviepipe .pytest_cache .ruff_cache
