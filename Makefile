# vps_ros developer commands. Every target that runs Python sources env.sh, which
# `make setup` writes; the ROS processes they start stay on loopback
# (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST in env.sh).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
ENV := source env.sh &&
PYTEST_ARGS ?=

.PHONY: setup test test-fast test-lowest demo bench clean help

help:
	@echo "make setup      create .venv, install pinned dependencies, build msg/ (idempotent)"
	@echo "make test       setup if needed, then the whole test suite (what CI runs)"
	@echo "make test-fast  the tests not marked slow (no DDS, training or install tests)"
	@echo "make test-lowest  the fast tests in .venv-lowest: every dependency at its lower bound"
	@echo "make demo       synthetic drive -> live replay through the node -> report"
	@echo "make bench      run the benchmark scripts and print their figures"

setup:
	@bash scripts/setup.sh

# As root (CI) the tests run in a loopback-only network namespace, so no ROS process
# can reach another address; elsewhere ROS_AUTOMATIC_DISCOVERY_RANGE keeps DDS local.
test: setup
	@$(ENV) bash scripts/in_loopback_netns.sh bash scripts/pytest_in_two.sh $(PYTEST_ARGS)

test-fast: setup
	@$(ENV) bash scripts/pytest_in_two.sh -m "not slow" $(PYTEST_ARGS)

# The lower bounds of setup.py's ranges stay honest: the fast suite against them (the
# messages of `make setup` reused). CI runs it after `make test`.
test-lowest: setup
	@bash scripts/setup.sh --lowest
	@source env-lowest.sh && bash scripts/in_loopback_netns.sh bash scripts/pytest_in_two.sh \
	  -m "not slow" $(PYTEST_ARGS)

demo: setup
	@$(ENV) bash scripts/demo.sh

bench: setup
	@$(ENV) for b in benchmarks/bench_*.py; do echo "== $$b"; python "$$b"; done

clean:
	rm -rf build install log .cache env.sh env-lowest.sh
