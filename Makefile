# Shortcuts only: every target runs `python3 dev.py ...`, which works without make too.
# Extra arguments go through ARGS, e.g. `make test ARGS="-x -k invoices"`, `make run ARGS="--port 8080"`.
PYTHON ?= python3
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup lock run test lint openapi check-migrations clean

help:
	@$(PYTHON) dev.py --help

setup:
	$(PYTHON) dev.py setup

lock:
	$(PYTHON) dev.py lock $(ARGS)

run:
	$(PYTHON) dev.py run $(ARGS)

test:
	$(PYTHON) dev.py test $(ARGS)

lint:
	$(PYTHON) dev.py lint

openapi:
	$(PYTHON) dev.py openapi

check-migrations:
	$(PYTHON) dev.py check-migrations

clean:
	$(PYTHON) dev.py clean $(ARGS)
