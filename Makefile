# Two entry points for a fresh machine (see README):
#   make demo   -> create .venv, install, run the main job on the embedded default
#   make test   -> create .venv, install (with dev extras), lint (ruff check, ruff format --check), run the test suite
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU wheel by default; GPU users: make TORCH_SPEC="torch==2.13.0 --index-url <cuda index>" demo
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test venv install install-dev clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

venv: $(BIN)/python

# torch first, pinned: an unpinned resolve from pyproject pulls several GB of CUDA wheels.
# The viz extra (Open3D) plus its few Debian libraries (installed when run as root, otherwise
# the exact apt-get command is printed and the cv2 renderer is used) give the real 3D views.
install: venv
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[viz]"
	bash scripts/install_viz_deps.sh

install-dev: venv
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[dev,viz]"
	bash scripts/install_viz_deps.sh --window --xvfb

demo: install
	$(BIN)/selfpose3d demo

test: install-dev
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
