# pinbench: the two set-up commands are `make run` and `make test` (see README).
SHELL := /bin/bash
# What the build needs (make run), and what the tests and perf scripts need beside it (make test).
BUILD_PACKAGES := libzstd-dev liblz4-dev libsnappy-dev libnuma-dev zlib1g-dev pkg-config libcurl4-openssl-dev libssl-dev
APT_PACKAGES := $(BUILD_PACKAGES) lz4 zstd bc librdkafka-dev gcc chromium time strace stunnel4 openssl libhdrhistogram-java default-jre-headless
DURATION ?= 20s
RUN_DIR ?= out/run

.PHONY: run test deps apt apt-build install-packages pip airflow fuzz fuzz-ci fuzz-build build release man bench bench-thresholds bench-check perf clean

## Builds in release mode and floods the embedded log for $(DURATION), then verifies it.
run: apt-build release
	rm -rf $(RUN_DIR) && mkdir -p $(RUN_DIR)
	.build/release/pinbench run --duration $(DURATION) --data-dir $(RUN_DIR)/data --report-json $(RUN_DIR)/report.json
	.build/release/pinbench log verify --data-dir $(RUN_DIR)/data
	@echo "report: $(RUN_DIR)/report.json"

## Installs what the tests need (Debian packages, PyPI peers) and runs the whole suite, then the fuzz targets
## for a fixed number of runs each (fuzz-ci).
test: deps
	python3 scripts/check-imports.py
	swift build --build-tests
	swift test --skip-build
	$(MAKE) --no-print-directory fuzz-ci

## libFuzzer over the input-facing code (issue 16): one binary built with -sanitize=fuzzer,address
## (Tests/Fuzz); the seed corpus is Tests/Fuzz/Corpus/<target>, and an input that crashes a target is written
## to Tests/Fuzz/Regressions/<target>/ (the test suite replays both). `make fuzz` runs each target for
## FUZZ_SECONDS; `make fuzz-ci` runs each for FUZZ_RUNS inputs from a fixed seed (the same work every time).
FUZZ_TARGETS := json http record-batch kafka-response segment parquet kpl put-records
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?= 20000
FUZZ_BIN := Tests/Fuzz/.build/debug/PinbenchFuzz
fuzz-build:
	swift build --package-path Tests/Fuzz -Xswiftc -sanitize=fuzzer,address
fuzz: apt-build fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p out/fuzz/$$t Tests/Fuzz/Regressions/$$t; \
	  echo "== $$t ($(FUZZ_SECONDS) s)"; \
	  PINBENCH_FUZZ_TARGET=$$t ASAN_OPTIONS=detect_leaks=0 $(FUZZ_BIN) out/fuzz/$$t Tests/Fuzz/Corpus/$$t -max_total_time=$(FUZZ_SECONDS) \
	    -rss_limit_mb=2048 -max_len=65536 -artifact_prefix=Tests/Fuzz/Regressions/$$t/ -print_final_stats=1 > out/fuzz/$$t.log 2>&1; rc=$$?; \
	  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec)|ERROR|SUMMARY' out/fuzz/$$t.log | tail -6; \
	  [ $$rc = 0 ] || { echo "fuzz target $$t crashed: see out/fuzz/$$t.log; the input is in Tests/Fuzz/Regressions/$$t"; exit 1; }; \
	done
fuzz-ci: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  w=$$(mktemp -d); \
	  PINBENCH_FUZZ_TARGET=$$t ASAN_OPTIONS=detect_leaks=0 $(FUZZ_BIN) $$w Tests/Fuzz/Corpus/$$t -runs=$(FUZZ_RUNS) -seed=1 \
	    -rss_limit_mb=2048 -max_len=65536 -artifact_prefix=$$w/ -print_final_stats=1 > $$w.log 2>&1 \
	    || { tail -30 $$w.log; echo "fuzz target $$t crashed: the input is in $$w (keep it in Tests/Fuzz/Regressions/$$t)"; exit 1; }; \
	  echo "fuzz $$t: $$(grep -oE 'cov: [0-9]+ ft: [0-9]+' $$w.log | tail -1), $$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' $$w.log | tail -1)s"; \
	  rm -rf $$w $$w.log; \
	done

deps: apt pip airflow

## Apache Airflow for the DAG tests (`airflow dags test` on SQLite), in its own virtual environment: its
## ~150 pinned packages stay apart from the test peers'. The tests find it at $(AIRFLOW_VENV)/bin/airflow.
AIRFLOW_VENV := .build/airflow-venv
AIRFLOW_VERSION := 3.1.8
airflow:
	@[ -x $(AIRFLOW_VENV)/bin/airflow ] && $(AIRFLOW_VENV)/bin/pip show apache-airflow 2>/dev/null | grep -qx 'Version: $(AIRFLOW_VERSION)' || { \
	  python3 -m venv $(AIRFLOW_VENV) && \
	  $(AIRFLOW_VENV)/bin/pip install -q --disable-pip-version-check "apache-airflow==$(AIRFLOW_VERSION)"; }

apt:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(APT_PACKAGES)"

apt-build:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(BUILD_PACKAGES)"

install-packages:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

pip:
	python3 -m pip install -q --disable-pip-version-check -r requirements-test.txt

build:
	swift build

release:
	swift build -c release --product pinbench

## The man page, generated from the commands' help by argument-parser's GenerateManual plugin: out/man/pinbench.1
man: release
	swift package --allow-writing-to-package-directory generate-manual --configuration release
	mkdir -p out/man && cp .build/plugins/GenerateManual/outputs/pinbench/pinbench.1 out/man/
	@echo "man -l out/man/pinbench.1"

## ordo-one/package-benchmark suites (their own package under Benchmarks/).
bench: apt
	cd Benchmarks && swift package --allow-writing-to-package-directory benchmark

## Records each benchmark's p90 as the thresholds a regression is measured against (Benchmarks/Thresholds).
## (package-benchmark 1.38 writes the files with '_' for ' ' in names but reads them by the plain name: the
## loop names them back; no benchmark name holds an '_'.)
bench-thresholds: apt
	cd Benchmarks && swift package --allow-writing-to-package-directory benchmark thresholds update
	cd Benchmarks/Thresholds && for f in *_*.p90.json; do [ -e "$$f" ] && mv "$$f" "$$(echo "$$f" | tr '_' ' ')"; done; true

## Runs the benchmarks and fails on a regression past the tolerances set in Benchmarks.swift.
bench-check: apt
	cd Benchmarks && swift package benchmark thresholds check

## Side-by-side runs against peers (see perf/README.md).
perf: deps release
	perf/pipeline_vs_lz4.sh
	perf/kafka_vs_librdkafka.sh
	perf/clean_vs_duckdb_polars.sh
	perf/kinesis_vs_boto3.sh

clean:
	rm -rf .build out
