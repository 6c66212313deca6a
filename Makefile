# Two commands from a fresh clone:
#   make demo   installs, migrates, seeds the demo brand and serves it (SQLite, no servers needed)
#   make test   installs and runs the tests (PostgreSQL/Redis suites when TEST_DATABASE_URL/TEST_REDIS_URL are set)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: demo test test-miniprogram docs lint install install-dev migrate seed serve bench bench-notify bench-compare bench-scale clean browser-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# pip compiles what it installs on one core; compileall afterwards uses them all (like pip,
# it does not stop at a file of a package that does not compile).
COMPILE := $(BIN)/python -m compileall -q -j 0 $(VENV)/lib app bots callbacks console miniprogram_api devtools > /dev/null || true

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --no-compile -r requirements.txt
	$(COMPILE)
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --no-compile -r requirements-dev.txt
	$(COMPILE)
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(FLASK) db upgrade

seed: migrate
	$(FLASK) demo seed --if-empty

serve: install
	$(FLASK) demo serve

demo: seed serve

# One worker more than the machine has cores (pytest-xdist): while one waits on a worker
# subprocess, a socket or Chromium, the others keep every core busy. Bytecode and pytest's
# rewritten asserts are cached in __pycache__ even where PYTHONDONTWRITEBYTECODE is set
# (recompiling everything costs each worker ~6 s). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))

# The layering (kernel ← domains ← shells; see .importlinter and docs/architecture.md) is
# checked first: a broken contract fails the run before any test starts.
test: install-dev test-miniprogram
	PYTHONPATH=. $(BIN)/lint-imports --no-cache
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -n $(TEST_WORKERS) --durations=25 $(PYTEST_ARGS)

# The dealer mini-program (miniprogram/): its Node packages from the lockfile (`npm ci`, again only
# when package-lock.json changes), then its jest tests (a few seconds). The end-to-end dealer journey
# is run by pytest (tests/test_miniprogram.py) against a served demo, so `test` needs this first.
# Without Node the mini-program is skipped, unless REQUIRE_SERVICES=1 (CI): then it fails.
MP := miniprogram

$(MP)/node_modules/.installed: $(MP)/package.json $(MP)/package-lock.json
	cd $(MP) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test-miniprogram:
	@if command -v node >/dev/null && command -v npm >/dev/null; then \
	  $(MAKE) --no-print-directory $(MP)/node_modules/.installed && cd $(MP) && npm test --silent -- --ci; \
	elif [ "$(REQUIRE_SERVICES)" = "1" ]; then \
	  echo "REQUIRE_SERVICES=1 but Node.js (node, npm) is not installed: the mini-program cannot be tested"; exit 1; \
	else echo "Node.js is not installed: the mini-program's tests are skipped (tests/test_miniprogram.py skips its journey too)"; fi

# The documentation site (mkdocs.yml, docs/): built into site/ in strict mode, so a broken link,
# a missing anchor or a page left out of the nav fails the build. The API reference page is
# generated from the app's OpenAPI document (docs/hooks/openapi.py). `mkdocs serve` to preview.
docs: install-dev
	NO_MKDOCS_2_WARNING=1 PYTHONPATH=. $(BIN)/mkdocs build --strict --site-dir site

# The browser test (tests/test_browser.py) drives Debian's Chromium; CJK fonts for readable screenshots.
browser-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then echo "chromium and chromedriver present"; \
	else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-noto-cjk; fi

lint: install-dev
	$(BIN)/ruff check --select F,E9,B --ignore B008,B905 app miniprogram_api bots callbacks console tests devtools wsgi.py

bench: install-dev
	bench/run.sh

bench-notify: install-dev
	$(BIN)/python bench/notify.py $(BENCH_ARGS)

# A brand's size (5k dealers, 20k SKUs, 1M orders) beside a small database, in one run (bench/scale.py):
#   make bench-scale BENCH_ARGS="--scale 0.05"
bench-scale: install-dev
	$(BIN)/python bench/scale.py $(BENCH_ARGS)

# This tree beside another commit in one run: make bench-compare REF=fae4e39 BENCH_ARGS="--runs 3"
bench-compare: install-dev
	@test -n "$(REF)" || { echo "usage: make bench-compare REF=<commit> [BENCH_ARGS=...]"; exit 2; }
	bench/run.sh --against $(REF) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis $(MP)/node_modules
