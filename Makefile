# The verbs a user types. Each target sets up .venv itself on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The cdk CLI is only needed for `make deploy`; it is pinned and run through npx.
CDK    := npx --yes aws-cdk@2.1148.1

.DEFAULT_GOAL := help
.PHONY: help setup demo demo-glue demo-cross-account demo-sources test lint typecheck synth deploy asl bench snowflake-sql clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

$(STAMP): pyproject.toml package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# the IAM policy evaluator of the IAM replay tests (pinned in package-lock.json, local only)
	npm ci --no-audit --no-fund
	touch $(STAMP)

setup: $(STAMP)  ## create .venv with every dependency

demo: $(STAMP)  ## run the whole pipeline locally on moto (no AWS account needed)
	$(BIN)/python -m sandbox.demo

demo-glue: $(STAMP)  ## the Glue catalog (glue_database) following the export, night after night
	$(BIN)/python -m sandbox.demo_glue

demo-cross-account: $(STAMP)  ## the nights with the bucket, key and Snowflake role in a second (moto) account
	$(BIN)/python -m sandbox.demo --cross-account

demo-sources: $(STAMP)  ## the other sources: Aurora, latest automated, export_only, an event-started run, an up-to-date catch-up
	$(BIN)/python -m sandbox.demo_sources

test: $(STAMP)  ## lint, type-check and run every test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r lambdas infra sandbox app.py
	# snowflake_sql builds SQL text by design: every identifier goes through quote() and every
	# value through literal() (tests/snowflake), so B608 (SQL built from strings) is skipped there only
	$(BIN)/bandit -q -c pyproject.toml -s B608 -r snowflake_sql
	$(BIN)/pytest -n 2

lint: $(STAMP)  ## ruff only
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

synth: $(STAMP)  ## write the CloudFormation template to cdk.out/ (offline)
	$(BIN)/python app.py

deploy: $(STAMP)  ## cdk deploy into the account of your current AWS credentials
	$(CDK) deploy --app "$(BIN)/python app.py"

asl: $(STAMP)  ## regenerate statemachine/export_pipeline.asl.json from statemachine/definition.py
	$(BIN)/python -m statemachine.definition

bench: $(STAMP)  ## print polling and purge figures measured in the sandbox
	$(BIN)/python -m sandbox.bench

snowflake-sql: $(STAMP)  ## print Snowflake SQL for MANIFEST=<s3 URI or file> (none: a sandbox night)
	$(if $(MANIFEST),$(BIN)/python -m snowflake_sql --manifest '$(MANIFEST)',$(BIN)/python -m sandbox.snowflake_night)

clean:  ## remove generated files
	rm -rf $(VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache .hypothesis
