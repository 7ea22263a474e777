# The README quotes these targets. Each target sets itself up first (scripts/setup.sh is idempotent).
PY := .venv/bin/python
export PREFECT_SERVER_ANALYTICS_ENABLED := false
# The temporary API may take longer than its 20 s default to start on a busy 2-core machine.
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120

.PHONY: setup run test test-fast lint sample bench lock fuzz

setup:
	@scripts/setup.sh

## The nightly job on the bundled sample: warehouse in out/warehouse.duckdb, dashboard in out/.
run: setup
	$(PY) -m journeymine run --landing data/sample/landing --warehouse out/warehouse.duckdb \
		--journey data/sample/journey.toml --out out

## Lint, type check and the whole test suite.
test: setup lint
	$(PY) -m pytest -q

## While you work: no Prefect flow, no browser, none of the slow tests (markers in pyproject.toml),
## on both cores (pytest-xdist; each worker builds its own session fixtures).
test-fast: setup
	$(PY) -m pytest -q -n 2 -m "not prefect and not browser and not slow"

lint:
	.venv/bin/ruff check src pipelines tests scripts benchmarks
	.venv/bin/ruff format --check src pipelines tests scripts benchmarks
	.venv/bin/mypy

## Fuzz the five parsers with mutated real records, far longer than the normal suite does.
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q tests/ingest/sources/test_fuzz.py

sample: setup
	$(PY) scripts/make_sample.py --out data/sample

bench: setup
	$(PY) benchmarks/bench_load.py
	$(PY) benchmarks/bench_mining.py --events 1000000

lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^journeymine' > requirements.lock.new
	{ head -1 requirements.lock; cat requirements.lock.new; } > requirements.lock && rm requirements.lock.new
