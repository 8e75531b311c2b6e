# brandhooks — the two commands: `make run` and `make test` (each sets up what is missing).
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
BUILD       := build
CPP_BUILD   := $(BUILD)/cpp
STAGE       := $(BUILD)/stage
JOBS        ?= $(shell nproc)
CMAKE_GEN   := $(shell command -v ninja >/dev/null && echo "-G Ninja")

# Debian/Ubuntu packages the build needs (the Python ones come from PyPI into .venv).
APT_PACKAGES := build-essential cmake ninja-build python3-venv libboost-dev libsqlitecpp-dev \
                libsqlite3-dev libssl-dev libgtest-dev nlohmann-json3-dev openssl wrk \
                clang libclang-rt-14-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help setup system-deps python-env build cpp-build python-build test cpp-test consumer-test \
        python-test run bench clean sanitize fuzz

help:
	@echo "make run    set up, build, start the service (http://127.0.0.1:8080, ./brandhooks.db)"
	@echo "make test   set up, build, run every C++ and Python test"
	@echo "make bench  throughput, latency, publish rate and memory (BENCH_QUICK=1: a short run)"
	@echo "make sanitize  C++ tests under ASan+UBSan, the stress test under TSan too (CI)"
	@echo "make fuzz   libFuzzer targets, FUZZ_SECONDS each (default 30; CI)"

setup: system-deps python-env

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null; then \
	    echo "installing system packages:$$missing"; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	  else \
	    echo "please install:$$missing (or your system's equivalents)"; exit 1; \
	  fi; \
	fi

$(VENV)/.ready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "scikit-build-core>=0.10" "pybind11>=2.12"
	touch $@

python-env: $(VENV)/.ready

build: cpp-build python-build

cpp-build: system-deps
	cmake -S . -B $(CPP_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DBRANDHOOKS_BUILD_TESTS=ON -DBRANDHOOKS_BUILD_BENCH=ON -DBRANDHOOKS_WERROR=ON
	cmake --build $(CPP_BUILD) -j $(JOBS)

# The package as users get it: `pip install .` (the build directory is kept for speed).
python-build: setup
	$(PY) -m pip install -q --no-build-isolation \
	  --config-settings=cmake.define.BRANDHOOKS_WERROR=ON ".[test,bench]"

test: cpp-test consumer-test python-test

cpp-test: cpp-build
	@echo "== GoogleTest (ctest)"
	ctest --test-dir $(CPP_BUILD) --output-on-failure -j $(JOBS)

# Install the C++ package, then build and run a program that finds it with find_package.
consumer-test: cpp-build
	@echo "== C++ consumer: find_package(brandhooks)"
	rm -rf $(STAGE) $(BUILD)/consumer
	cmake --install $(CPP_BUILD) --prefix $(STAGE) --component dev
	cmake -S tests/consumer -B $(BUILD)/consumer $(CMAKE_GEN) -DCMAKE_PREFIX_PATH=$(CURDIR)/$(STAGE)
	cmake --build $(BUILD)/consumer
	$(BUILD)/consumer/consumer $(BUILD)/consumer/consumer.db

python-test: python-build
	@echo "== pytest"
	$(PY) -m pytest

# One run, side by side: wrk ceiling, brandhooks, a plain-Python sender (docs/performance.md).
bench: cpp-build python-build
	$(PY) bench/run.py

# Sanitizer builds of the core and the C++ tests (docs/security.md, "How it is checked"). Any
# report fails: UBSan aborts (-fno-sanitize-recover), ASan aborts, TSan exits non-zero.
SAN_CMAKE := $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRANDHOOKS_BUILD_TESTS=ON -DBRANDHOOKS_WERROR=ON
SAN_ENV   := ASAN_OPTIONS=abort_on_error=1:detect_stack_use_after_return=1 \
             UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
             TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

sanitize: system-deps
	@echo "== AddressSanitizer + UndefinedBehaviorSanitizer: every GoogleTest and the stress test"
	cmake -S . -B $(BUILD)/asan $(SAN_CMAKE) -DBRANDHOOKS_SANITIZE=address,undefined
	cmake --build $(BUILD)/asan -j $(JOBS) --target brandhooks_tests brandhooks_stress
	$(SAN_ENV) ctest --test-dir $(BUILD)/asan --output-on-failure -j $(JOBS)
	@echo "== ThreadSanitizer: the stress test (several HTTP threads)"
	cmake -S . -B $(BUILD)/tsan $(SAN_CMAKE) -DBRANDHOOKS_SANITIZE=thread
	cmake --build $(BUILD)/tsan -j $(JOBS) --target brandhooks_stress
	$(SAN_ENV) ctest --test-dir $(BUILD)/tsan --output-on-failure -R '^Stress\.'

# libFuzzer (clang): each target runs FUZZ_SECONDS from its seed corpus in tests/fuzz/corpus/;
# a crash, a sanitizer report or a broken invariant fails, leaving the input in build/fuzz/.
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := fuzz_url_policy fuzz_retry fuzz_event fuzz_signature

fuzz: system-deps
	cmake -S . -B $(BUILD)/fuzz $(CMAKE_GEN) -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DBRANDHOOKS_BUILD_FUZZ=ON -DBRANDHOOKS_WERROR=ON
	cmake --build $(BUILD)/fuzz -j $(JOBS) --target brandhooks_fuzzers
	@for t in $(FUZZ_TARGETS); do \
	  echo "== $$t ($(FUZZ_SECONDS) s)"; \
	  mkdir -p $(BUILD)/fuzz/corpus/$$t; \
	  $(BUILD)/fuzz/tests/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=$(BUILD)/fuzz/$$t- $(BUILD)/fuzz/corpus/$$t tests/fuzz/corpus/$$t \
	    2> $(BUILD)/fuzz/$$t.log || { tail -60 $(BUILD)/fuzz/$$t.log; exit 1; }; \
	  grep -E "^stat::number_of_executed_units|^#.*DONE" $(BUILD)/fuzz/$$t.log; \
	done

run: python-build
	$(VENV)/bin/brandhooks serve

clean:
	rm -rf $(BUILD) $(VENV)
