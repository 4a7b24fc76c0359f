# The commands of the README. Each first runs the (idempotent, cached) environment step.
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: env demo test test-fast
env:
	@tools/setup_env.sh

demo: env
	$(PY) tools/demo.py $(DEMO_ARGS)

test: env
	$(PY) -m pytest $(PYTEST_ARGS)

# the edit loop: everything but the `slow` and `dist` tests
test-fast: env
	$(PY) -m pytest -m "not slow and not dist" $(PYTEST_ARGS)
