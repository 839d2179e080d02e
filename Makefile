# runanywhere: `make demo` and `make test` install everything first (scripts/install.sh is
# idempotent: a second run takes seconds), then serve the web app or run the whole test suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install demo walkthrough test lint bench

install:
	bash scripts/install.sh

DEMO_HOST ?= 127.0.0.1
DEMO_PORT ?= 8000

# The web app on the local server: the default models go into the store, then `runanywhere serve`
# runs in the foreground until Ctrl-C.
demo: install
	$(VENV)/bin/runanywhere models pull --defaults
	@echo ""
	@echo "  runanywhere web app: open http://$(DEMO_HOST):$(DEMO_PORT)   (Ctrl-C stops the server)"
	@echo ""
	$(VENV)/bin/runanywhere serve --host $(DEMO_HOST) --port $(DEMO_PORT)

# The command-line walk-through: doctor, chat, embeddings, speech out and back in, one voice turn.
walkthrough: install
	$(VENV)/bin/runanywhere models pull --defaults
	$(VENV)/bin/runanywhere doctor
	$(VENV)/bin/runanywhere models list
	$(VENV)/bin/runanywhere run "What is the capital of France? Answer in one sentence." --temperature 0 --max-tokens 40
	$(VENV)/bin/runanywhere embed cat kitten "the stock market fell today" --similarity
	$(VENV)/bin/runanywhere speak "What is the capital of France?" -o $${TMPDIR:-/tmp}/runanywhere-question.wav
	$(VENV)/bin/runanywhere transcribe $${TMPDIR:-/tmp}/runanywhere-question.wav
	$(VENV)/bin/runanywhere voice --input $${TMPDIR:-/tmp}/runanywhere-question.wav --output $${TMPDIR:-/tmp}/runanywhere-reply.wav

# pytest exits 5 when it collects no test: that is a failure here, said out loud.
test: install
	@rc=0; $(PY) -m pytest -q $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: ERROR: pytest collected no tests (exit 5)" >&2; fi; \
	exit $$rc

# Both linters run even when the first one fails; lint fails if either does.
lint: install
	@rc=0; $(VENV)/bin/ruff check . || rc=1; $(VENV)/bin/mypy src || rc=1; exit $$rc

bench: install
	@if [ -f bench/run_all.py ]; then $(PY) bench/run_all.py; \
	else echo "bench: no bench/run_all.py yet, nothing to run"; fi
