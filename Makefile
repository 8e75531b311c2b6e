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
                libsqlite3-dev libssl-dev libgtest-dev nlohmann-json3-dev openssl wrk
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help setup system-deps python-env build cpp-build python-build test cpp-test consumer-test \
        python-test run bench notebook clean

help:
	@echo "make run    set up, build, start the service (http://127.0.0.1:8080, ./brandhooks.db)"
	@echo "make test   set up, build, run every C++ and Python test"
	@echo "make bench  throughput, latency, publish rate and memory (BENCH_QUICK=1: a short run)"
	@echo "make notebook  Jupyter (into .venv) on docs/operator-notebook.ipynb; see the README"

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

run: python-build
	$(VENV)/bin/brandhooks serve

# Jupyter into .venv, opened on the operator notebook (the packages of the `notebook` extra in
# pyproject.toml). The notebook finds the server through BRANDHOOKS_URL and BRANDHOOKS_TOKEN,
# or its first cell. ARGS go to Jupyter, e.g. ARGS="--no-browser --ip 0.0.0.0".
notebook: python-build
	$(PY) -m pip install -q "pandas>=1.5" "jupyterlab>=4"
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) $(ARGS) docs/operator-notebook.ipynb

clean:
	rm -rf $(BUILD) $(VENV)
