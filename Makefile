# The two commands of the README. Each first runs the (idempotent, cached) environment step.
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: env demo test
env:
	@tools/setup_env.sh

demo: env
	$(PY) tools/demo.py $(DEMO_ARGS)

test: env
	$(PY) -m pytest $(PYTEST_ARGS)
