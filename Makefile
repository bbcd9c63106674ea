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

.PHONY: run test test-portability bench build clippy fmt system-deps

run: build
	./target/release/adarat

build: $(LIBTORCH_DEP)
	$(CARGO) build --release

# The tests also compare against PyTorch and torchattacks 3.5.1, and read exported CSV with pandas and
# event files with tensorboard (installed into .venv for them only). Their system packages (a real Slurm,
# tmux, LaTeX, a font, Fashion-MNIST) are installed when this can (root or sudo -n); otherwise the tests
# that need them say so and are counted as skipped at the end, except under CI (docs/testing.md).
# The unit tests seed libtorch's global generator, so they run one at a time (a second or two); the
# integration suite runs TEST_THREADS at once, its in-process libtorch tests taking turns on a lock.
TEST_THREADS ?= 4
TEST_FLAGS := --features fault-injection
SKIPPED := $(CURDIR)/target/skipped-tests.tsv
test: $(LIBTORCH_DEP) $(VENV)/.test-tools
	@tests/system-packages.sh provision
	$(CARGO) test $(TEST_FLAGS) --all-targets --no-run
	@rm -f $(SKIPPED)
	@export ADARAT_PYTHON=$(VENV)/bin/python ADARAT_SKIPPED=$(SKIPPED); \
	  $(CARGO) test $(TEST_FLAGS) --lib --bins -- --test-threads=1 \
	  && $(CARGO) test $(TEST_FLAGS) --test suite -- --test-threads=$(TEST_THREADS); \
	  status=$$?; tests/system-packages.sh summary $(SKIPPED); exit $$status

# The tests' system packages from Debian (root or sudo -n).
system-deps:
	tests/system-packages.sh install

# The numerics-sensitive tests again, with libtorch's kernels, MKL and oneDNN each held to the
# instruction sets of an AVX2-only CPU and of a pre-AVX one (docs/testing.md): what passes here
# passes on AMD and older Intel machines too. About 18 minutes on 2 cores (AVX2 6, SSE4 12).
NUMERIC_TESTS := attacks:: methods:: models:: run:: generalist:: teachers:: attack_table::
test-portability: $(LIBTORCH_DEP) $(VENV)/.test-tools
	@for isa in "avx2 AVX2 AVX2" "default SSE4_2 SSE41"; do \
	  set -- $$isa; \
	  echo "== ATEN_CPU_CAPABILITY=$$1 MKL_ENABLE_INSTRUCTIONS=$$2 ONEDNN_MAX_CPU_ISA=$$3"; \
	  export ATEN_CPU_CAPABILITY=$$1 MKL_ENABLE_INSTRUCTIONS=$$2 ONEDNN_MAX_CPU_ISA=$$3 \
	    ADARAT_PYTHON=$(VENV)/bin/python; \
	  $(CARGO) test $(TEST_FLAGS) --lib -- --test-threads=1 || exit 1; \
	  $(CARGO) test $(TEST_FLAGS) --test suite -- --test-threads=$(TEST_THREADS) $(NUMERIC_TESTS) || exit 1; \
	done

# adarat against bench/reference.py (the research code's loop in PyTorch) and, for the eval suite,
# torchattacks' AutoAttack (bench/reference_autoattack.py), on this machine's default device.
bench: build $(VENV)/.bench-tools
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
$(VENV)/.bench-tools: $(VENV)/.torch
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q numpy scipy
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q --no-deps torchattacks==3.5.1
	touch $@

$(VENV)/.test-tools: $(VENV)/.bench-tools
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q pandas tensorboard
	touch $@

# The wheel's torch/ folder is a complete libtorch; .venv/libtorch points at it.
$(VENV)/libtorch/lib: $(VENV)/.torch
	ln -sfn "$$($(VENV)/bin/python -c 'import os, torch; print(os.path.dirname(torch.__file__))')" $(VENV)/libtorch
	test -d $(VENV)/libtorch/lib
