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

.PHONY: run test test-portability bench build clippy fmt

run: build
	./target/release/adarat

build: $(LIBTORCH_DEP)
	$(CARGO) build --release

# The tests also compare against PyTorch and torchattacks 3.5.1, and read exported CSV with pandas and
# event files with tensorboard (installed into .venv for them only).
test: $(LIBTORCH_DEP) $(VENV)/.test-tools
	ADARAT_PYTHON=$(VENV)/bin/python $(CARGO) test --all-targets --features fault-injection -- --test-threads=1

# The numerics-sensitive tests again, with libtorch's kernels, MKL and oneDNN each held to the
# instruction sets of an AVX2-only CPU and of a pre-AVX one (docs/testing.md): what passes here
# passes on AMD and older Intel machines too. About 30 minutes on 2 cores (AVX2 8, SSE4 21).
NUMERIC_TESTS := attacks:: methods:: models:: run:: generalist:: teachers:: attack_table::
test-portability: $(LIBTORCH_DEP) $(VENV)/.test-tools
	@for isa in "avx2 AVX2 AVX2" "default SSE4_2 SSE41"; do \
	  set -- $$isa; \
	  echo "== ATEN_CPU_CAPABILITY=$$1 MKL_ENABLE_INSTRUCTIONS=$$2 ONEDNN_MAX_CPU_ISA=$$3"; \
	  export ATEN_CPU_CAPABILITY=$$1 MKL_ENABLE_INSTRUCTIONS=$$2 ONEDNN_MAX_CPU_ISA=$$3 \
	    ADARAT_PYTHON=$(VENV)/bin/python; \
	  $(CARGO) test --lib --features fault-injection -- --test-threads=1 || exit 1; \
	  $(CARGO) test --test suite --features fault-injection -- --test-threads=1 $(NUMERIC_TESTS) || exit 1; \
	done

# adarat against bench/reference.py (the research code's loop in PyTorch) on this machine's default device.
bench: build
	./target/release/adarat bench

clippy: $(LIBTORCH_DEP)
	$(CARGO) clippy --all-targets --features fault-injection -- -D warnings

fmt:
	$(CARGO) fmt --all

$(VENV)/.torch:
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q torch==$(TORCH_VERSION)
	touch $@

# torchattacks' own requirements (torchvision, an old requests) are not needed by its attacks.
$(VENV)/.test-tools: $(VENV)/.torch Makefile
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q numpy scipy pandas tensorboard
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q --no-deps torchattacks==3.5.1
	touch $@

# The wheel's torch/ folder is a complete libtorch; .venv/libtorch points at it.
$(VENV)/libtorch/lib: $(VENV)/.torch
	ln -sfn "$$($(VENV)/bin/python -c 'import os, torch; print(os.path.dirname(torch.__file__))')" $(VENV)/libtorch
	test -d $(VENV)/libtorch/lib
