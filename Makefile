# Work-It. `make` alone lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-stamp
STAMP  := $(VENV)/.installed-stamp
export PATH := $(abspath $(BIN)):$(PATH)

# Where make dev's processes listen (make dev WEB_PORT=5001 ...). The app's own
# settings (REDIS_URL, MAIL_PORT, ...) are in .env.example.
WEB_PORT              ?= 5000
MAILCATCHER_HTTP_PORT ?= 1080
MAILCATCHER_SMTP_PORT ?= 1025
# Worker processes in make dev's pool (jobs/runtime/pool.py); make worker starts one more.
WORKERS               ?= 4
export WEB_PORT MAILCATCHER_HTTP_PORT MAILCATCHER_SMTP_PORT WORKERS

.DEFAULT_GOAL := help
.PHONY: help install install-dev lesson redis dev test test-fast worker lint format failover-drill bench screenshots clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# Two installs, each done once and again when its lock changes: what runs (make dev,
# make worker), then the test, lint and bench tools on top (make test). pip shows its
# progress: a first install takes a minute or two (README, Two commands).
$(RUNTIME): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Work-It needs Python 3.11 or newer (found: $$($(PYTHON) --version)); try make PYTHON=python3.12 ..."; exit 1; }
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || \
		{ echo "$(PYTHON) cannot make a virtual environment; on Debian or Ubuntu: sudo apt install python3-venv"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -r requirements.lock
	@# This checkout, installed in place; setuptools' warning that it is one is no news.
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

$(STAMP): $(RUNTIME) requirements-dev.lock requirements-client.lock
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --upgrade --target $(VENV)/mailcatcher-client \
		-r requirements-client.lock
	@touch $@

install: $(RUNTIME) ## create .venv with what Work-It runs on (make dev does this)

install-dev: $(STAMP) ## add the test, lint and bench tools (make test does this)

dev: $(RUNTIME) ## run Redis, the mail catcher, a pool of workers, the scheduler and the web app (Ctrl-C stops all)
	@mkdir -p var
	@echo ""
	@echo "  Work-It        http://127.0.0.1:$(WEB_PORT)"
	@echo "  Mail catcher   http://127.0.0.1:$(MAILCATCHER_HTTP_PORT)"
	@echo "  Job dashboard  http://127.0.0.1:$(WEB_PORT)/rq  (on once DASHBOARD_PASSWORD is set)"
	@echo "  Metrics        http://127.0.0.1:$(WEB_PORT)/metrics  (Prometheus's format)"
	@echo "  Ctrl-C stops everything."
	@echo ""
	@trap : INT; $(BIN)/honcho start || [ $$? -eq 130 ]  # Ctrl-C: wait (trap) while honcho stops all; its 130 is no error

lesson: $(RUNTIME) ## LESSON.md, Part 1: copy the starter app to myapp/, yours to change (git ignores it)
	@if [ -e myapp ]; then echo "myapp/ is already there, as you left it (rm -r myapp to start over)."; \
	else cp -R lesson/starter myapp && echo "Copied lesson/starter/ to myapp/: the app you will change."; fi

redis: $(RUNTIME) ## run Redis in the foreground (REDIS_URL's, else one on PATH, else the one in .venv); Ctrl-C stops it
	@trap : INT; $(BIN)/python bin/redis || [ $$? -eq 130 ]

worker: WORKERS = 1
worker: $(RUNTIME) ## run one more worker against the same Redis (make worker WORKERS=3: three more)
	@exec $(BIN)/honcho start worker

# make test: the tests marked serial beside all the others, which pytest-xdist spreads
# over TEST_WORKERS processes, each with its own Redis, sinks and ports (bin/run-tests).
# Fastest on a 2-core machine: many tests wait on real processes (README, Developing).
TEST_WORKERS ?= 4
PYTEST := $(BIN)/python -m pytest
XDIST   = -n $(TEST_WORKERS) --dist worksteal
export TEST_WORKERS

test: $(STAMP) ## run every test (browser tests included): the serial ones beside the rest
	$(BIN)/python bin/ensure-chromium
	$(BIN)/python bin/ensure-redis-server
	$(BIN)/python bin/ensure-prometheus
	@bin/run-tests $(PYTEST_ARGS)

test-fast: $(STAMP) ## the inner loop: test, but not the slow, browser and serial tests
	@$(PYTEST) $(XDIST) --serial=exclude -m "not slow and not browser" $(PYTEST_ARGS); \
	status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test-fast: pytest collected no tests; that is a failure." >&2; fi; \
	exit $$status

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

failover-drill: $(STAMP) ## Redis with replicas and Sentinel here, no Docker: kill the primary 5 times under load, count what was lost
	$(BIN)/python bench/failover_drill.py $(DRILL_ARGS)

bench: $(STAMP) ## run every benchmark (a few minutes) and write docs/benchmarks.md; bench/soak.py is run by hand
	$(BIN)/python bench/report.py

screenshots: $(STAMP) ## redraw docs/lesson/*.png by walking the lesson in Chromium against make dev
	$(BIN)/python bin/ensure-chromium
	$(BIN)/python bin/screenshots

clean: ## remove .venv and var/
	rm -rf $(VENV) var
