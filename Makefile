# The two commands a newcomer needs: `make demo` and `make test` (both install first).
PYTHON_VENV := .venv/bin/python
DEMO_DIR ?= work_dirs/demo

.PHONY: install test demo lint bench-smoke clean-venv

install:
	bash tools/install.sh

test: install
	$(PYTHON_VENV) -m pytest

demo: install
	$(PYTHON_VENV) tools/run_demo.py --work-dir $(DEMO_DIR)

lint: install
	.venv/bin/ruff check .

clean-venv:
	rm -rf .venv
