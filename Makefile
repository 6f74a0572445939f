PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint sim bench bench-cluster test-cluster test-faults clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/quorumdb serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check quorumdb
	$(BIN)/mypy quorumdb

# The black-box tests that also run against a local 3-node cluster in `make test`.
CLUSTER_SLICE := tests/integration/test_items.py tests/integration/test_query_scan.py \
	tests/integration/test_batch.py tests/integration/test_transactions.py \
	tests/integration/test_partiql.py tests/integration/test_indexes.py

test: $(VENV)/.installed-test lint
	$(BIN)/python -m pytest -q
	QUORUMDB_TEST_CLUSTER=3 $(BIN)/python -m pytest -q -rs $(CLUSTER_SLICE)

# The whole black-box suite against a 3-node cluster (what it does not support yet is skipped).
test-cluster: $(VENV)/.installed-test
	QUORUMDB_TEST_CLUSTER=3 $(BIN)/python -m pytest -q -rs tests/integration

# Long fault runs on real cluster processes (20 kill -9 cycles under load, ...).
test-faults: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -s -m slow tests/cluster

sim: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m slow tests/sim
	$(BIN)/python -m quorumdb.sim --catalogue --seeds 100
	$(BIN)/python -m quorumdb.sim.txn --seeds 300 --quiet
	$(BIN)/python -m quorumdb.sim.txn --catalogue --seeds 100
	$(BIN)/python -m quorumdb.sim.bench

bench: $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

bench-cluster: $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.cluster

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
