# ZapDesk: `make run` starts everything, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv/bin
RASA := .venv-rasa/bin
MODEL := models/zapdesk.tar.gz
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export HF_HUB_OFFLINE := 1

.PHONY: help setup run test test-fast test-py test-actions validate test-stories test-nlu test-nlu-heldout train shell lint migrate clean translations bench-tickets bench-kb bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-13s %s\n",$$1,$$2}'

setup: ## create both Python environments (idempotent)
	@bash scripts/setup.sh

run: setup ## set up what is missing and start the whole system
	@$(VENV)/python scripts/run.py

$(MODEL): config.yml domain.yml $(wildcard data/*.yml data/nlu/*.yml)
	$(RASA)/rasa train --fixed-model-name zapdesk --out models

train: setup ## (re)train the Rasa model when data/ or the config changed
	@$(MAKE) --no-print-directory $(MODEL)

validate: setup ## rasa data validate
	$(RASA)/rasa data validate

test: setup ## every test: Rasa data and stories, actions, bot and webapp, end to end
	@SETUP_BROWSER=1 bash scripts/setup.sh
	@$(MAKE) --no-print-directory $(MODEL)
	$(RASA)/rasa data validate --max-history 4 > var/validate.log 2>&1 || { cat var/validate.log; exit 1; }
	$(MAKE) --no-print-directory lint test-stories test-nlu-heldout test-actions test-py

test-stories: ## rasa test core on tests/test_stories.yml, NLU included (--e2e)
	$(RASA)/rasa test core --e2e --stories tests/test_stories.yml --model $(MODEL) --out var/rasa-results --fail-on-prediction-errors

test-actions: ## action server unit tests (in the Rasa environment)
	cd tests/actions && ../../$(RASA)/python -m pytest -q -p no:cacheprovider .

test-py: ## bot, webapp, browser and end-to-end tests
	$(VENV)/python -m pytest -q

test-fast: ## the same without the end-to-end and browser tests
	$(VENV)/python -m pytest -q -m "not e2e and not browser"

test-nlu: setup ## NLU cross-validation (5 folds): per-intent P/R/F1, confusion matrix PNG (several minutes)
	$(RASA)/rasa test nlu --nlu data/nlu --config config.yml --cross-validation --folds 5 --out var/nlu-results
	@$(VENV)/python scripts/nlu_report.py var/nlu-results

test-nlu-heldout: ## NLU on the held-out tests/nlu/ (never trained on): accuracy, macro F1 per language; fails under the threshold
	@$(VENV)/python scripts/nlu_heldout.py check
	@$(MAKE) --no-print-directory $(MODEL)
	$(RASA)/rasa test nlu --nlu tests/nlu --model $(MODEL) --out var/nlu-heldout --successes
	@$(VENV)/python scripts/nlu_heldout.py report var/nlu-heldout

shell: setup ## talk to the running assistant in the terminal (needs `make run` elsewhere)
	@$(VENV)/python scripts/shell.py

lint: ## ruff
	$(VENV)/ruff check bot webapp actions tests scripts

migrate: ## create an Alembic revision after a model change: make migrate m="what changed"
	$(VENV)/flask --app webapp.wsgi db migrate -m "$(m)"

translations: ## extract the agent UI's strings, update webapp/translations/*.po, compile the .mo files
	$(VENV)/pybabel extract -F webapp/translations/babel.cfg -k lazy_gettext --no-location --sort-output --project ZapDesk -o webapp/translations/messages.pot .
	$(VENV)/pybabel update -i webapp/translations/messages.pot -d webapp/translations -N --ignore-obsolete --width 120
	$(VENV)/pybabel compile -d webapp/translations --statistics

bench: setup ## benchmarks, one table (docs/benchmarks.md); ARGS="--quick --only webhook,e2e --postgres"
	@$(MAKE) --no-print-directory $(MODEL)
	$(VENV)/python scripts/bench.py $(ARGS)

bench-tickets: ## ticket list and search latency with 100,000 tickets on SQLite and PostgreSQL (BENCH_PG_URL)
	$(VENV)/python scripts/bench_tickets.py

bench-kb: ## knowledge-base search: top-1/top-3 accuracy, false confidence and latency per language and method
	$(VENV)/python scripts/bench_kb.py

clean: ## remove local databases, mail and results (keeps the environments and the model)
	rm -rf var/*.db var/*.db-* var/mailbox var/rasa-results
