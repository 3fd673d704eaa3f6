# Two entry points, each doing its own set-up on a fresh machine:
#   make demo   environment + install + embedded model, then `qa demo` on the bundled calls
#   make test   environment + install + chromium for the report tests, then the whole suite (.ci/run)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_OUT ?= qa-demo

.PHONY: demo test install bench-agreement clean

demo: $(VENV)/.installed
	$(BIN)/qa demo --out $(DEMO_OUT)

test: $(VENV)/.installed
	bash tools/install_browser.sh
	$(BIN)/python -m pytest -q -ra

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Item agreement with the human verdicts on ../shared/dev-calls (issue 1/8, 4/8).
bench-agreement: $(VENV)/.installed
	$(BIN)/python bench/agreement.py --dev-calls ../shared/dev-calls --out /tmp/qa-dev-calls

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
