# Two entry points for a newcomer (see README): `make demo` and `make test`.
.PHONY: demo test dev bench lint setup clean

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

lint: setup
	@.venv/bin/ruff check geospatial_pipeline tests benchmarks scripts

clean:
	rm -rf lake .dagster_home
