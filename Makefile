# Two entry points: `make demo` (the main job on a built-in dataset) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# the CPU build of torch first, so the package's own dependency does not pull a CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/pixmorph demo

test: setup
	@# the serve page's browser test needs Debian's chromium; it skips where this cannot install
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! [ -x /usr/bin/chromedriver ]; then \
	  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver) \
	  || echo "chromium not installed: tests/test_serve_browser.py will skip"; fi
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
