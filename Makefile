# Two entry points for a newcomer (see README): `make demo` and `make test`. Contributors: CONTRIBUTING.md.
.PHONY: demo test dev bench lint format setup clean

# What ruff checks and formats; mypy reads its settings (strict on core/ and lake/) from pyproject.toml.
LINT_PATHS = geospatial_pipeline tests benchmarks scripts fixtures

setup:
	@scripts/bootstrap

demo: setup
	@.venv/bin/python scripts/demo.py

test: setup
	@scripts/install-check-tools
	@scripts/run-tests

dev: setup
	@mkdir -p .dagster_home && cp -n dagster.yaml .dagster_home/dagster.yaml 2>/dev/null || true
	DAGSTER_HOME=$(CURDIR)/.dagster_home GEOSPATIAL_PIPELINE_CONFIG=$${GEOSPATIAL_PIPELINE_CONFIG:-fixtures/config.yaml} \
		.venv/bin/dagster dev -m geospatial_pipeline.definitions -h 127.0.0.1 -p 3000

bench: setup
	@.venv/bin/python -m benchmarks.run $(ARGS)

# All three run, whichever fails; the target fails if any did. .ci/run and .pre-commit-config.yaml run the same.
lint: setup
	@status=0; \
	echo "ruff check"; .venv/bin/ruff check $(LINT_PATHS) || status=1; \
	echo "ruff format --check"; .venv/bin/ruff format --check $(LINT_PATHS) || status=1; \
	echo "mypy"; .venv/bin/mypy geospatial_pipeline || status=1; \
	exit $$status

# Rewrites files: formats them and applies ruff's safe fixes.
format: setup
	@.venv/bin/ruff format $(LINT_PATHS) && .venv/bin/ruff check --fix $(LINT_PATHS)

clean:
	rm -rf lake .dagster_home
