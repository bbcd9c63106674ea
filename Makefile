# adarat: `make run` opens the console, `make test` runs every test. Both provision what they need.
#
# libtorch comes from the PyPI wheel torch==2.11.0, installed into .venv, unless LIBTORCH points at
# another libtorch 2.11.0 (a folder with include/ and lib/).

TORCH_VERSION := 2.11.0
VENV := $(CURDIR)/.venv
PYTHON ?= python3

ifeq ($(origin LIBTORCH), undefined)
LIBTORCH := $(VENV)/libtorch
LIBTORCH_DEP := $(VENV)/libtorch/lib
else
LIBTORCH_DEP :=
endif
export LIBTORCH
export LIBTORCH_CXX11_ABI ?= 1

CARGO ?= cargo

.PHONY: run test build clippy fmt

run: build
	./target/release/adarat

build: $(LIBTORCH_DEP)
	$(CARGO) build --release

test: $(LIBTORCH_DEP)
	$(CARGO) test --all-targets -- --test-threads=1

clippy: $(LIBTORCH_DEP)
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# The wheel's torch/ folder is a complete libtorch; .venv/libtorch points at it.
$(VENV)/libtorch/lib:
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q torch==$(TORCH_VERSION)
	ln -sfn "$$($(VENV)/bin/python -c 'import os, torch; print(os.path.dirname(torch.__file__))')" $(VENV)/libtorch
	test -d $(VENV)/libtorch/lib
