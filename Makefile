.PHONY: run test bench setup setup-test lint

run: setup
	.venv/bin/breeze

test: setup-test
	scripts/test.sh

bench: setup-test
	.venv/bin/python -m benchmarks

lint: setup-test
	.venv/bin/ruff check engine runners tui tests benchmarks
	scripts/typecheck.sh

setup:
	scripts/setup.sh app

setup-test:
	scripts/setup.sh test
