# SPDX-License-Identifier: GPL-2.0
#
# sockgroup: build the module, the test kernel, and run the tests.
#
#   make                  build sockgroup.ko against the cached test kernel
#   make KDIR=/path       build it against another Rust-enabled kernel build tree
#   make DEBUG=1          build it against the debug test kernel
#   make check            every test suite (the CI command); ends with "N passed, N failed"
#   make demo             the demo, in the test VM
#   make bench            the benchmarks, in the test VM (bench/README.md)
#   make bench-syn        only its SYN decision microbenchmark (the rest kept)
#   make bench-failover   only its failover figures (selftests/dispatch.sh's j, l, k)
#   make lint             rustfmt, clippy (CLIPPY=1), checkpatch
#   make kernel [DEBUG=1] build (once) the test kernel
#   make deps             install what is missing (Debian packages, rust-src, bindgen)

FLAVOUR := $(if $(DEBUG),debug,plain)
export PATH := $(HOME)/.cargo/bin:$(PATH)

ifeq ($(origin KDIR),undefined)
KDIR = $(shell selftests/kernel-build $(if $(DEBUG),--debug) --print-dir)
BUILD := .build/$(FLAVOUR)
NEED_KERNEL := kernel
else
BUILD := .build/custom
NEED_KERNEL :=
endif

# The module is built in a copy of the sources per kernel flavour, so that the
# plain and the debug module can both exist and neither rebuild wipes the other.
SOURCES := Kbuild src rust include

.PHONY: all module kernel check demo bench bench-syn bench-handoff bench-failover lint clean host-test deps sgctl test-progs

# The first target is the default: `make` builds the module.
all: module

sgctl:
	cargo build --quiet -p sgctl

# What the VM tests run besides the module: sgctl and the kselftest program
# (built with the kselftest harness of the kernel source the test kernel uses).
test-progs: kernel sgctl
	$(MAKE) --no-print-directory -C selftests O=$(CURDIR)/.build/selftests \
		KSFT_DIR=$(shell selftests/kernel-build --print-src)/tools/testing/selftests

module: $(NEED_KERNEL)
	@mkdir -p $(BUILD)
	@cp -a $(SOURCES) $(BUILD)/
	$(MAKE) -C $(KDIR) M=$(CURDIR)/$(BUILD) LLVM=1 $(if $(CLIPPY),CLIPPY=1) modules
	@echo "module: $(BUILD)/sockgroup.ko"
	@if [ -f $(BUILD)/sockgroup_kunit.ko ]; then echo "KUnit tests: $(BUILD)/sockgroup_kunit.ko"; fi

kernel:
	selftests/kernel-build $(if $(DEBUG),--debug)

host-test:
	cargo test --workspace --quiet

deps:
	selftests/install-deps

check: deps
	selftests/run-all

demo: deps module sgctl
	selftests/vm-run -- selftests/demo.sh

bench: deps module sgctl
	bench/bench.sh

# Only the SYN decision's microbenchmark (bench/README.md, section 4): the
# other sections of bench/results/latest.json keep their last run's figures.
bench-syn: deps module
	BENCH_SECTIONS=syn bench/bench.sh

# Only the handoff section (bench/README.md, section 5): direct, HAProxy,
# IPVS-DR and the handoff on the cluster of selftests/handoff.sh.
bench-handoff: deps module sgctl
	BENCH_SECTIONS=handoff bench/bench.sh

# Only the failover section (bench/README.md, section 6): selftests/dispatch.sh
# run FO_ROUNDS times, the figures of its rounds j, l and k.
bench-failover: deps module sgctl
	BENCH_SECTIONS=failover bench/bench.sh

lint:
	selftests/lint

clean:
	rm -rf .build target
