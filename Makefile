# pkgcache.fleet — developer entry points. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# Runtime view of the collection (a symlink, always current) for ansible, molecule, pytest.
LINK := .build/link
COLLECTIONS := $(CURDIR)/$(LINK)
# Collections the tests need beyond ansible-core (containers.podman), extracted from a pinned wheel.
TEST_COLLECTIONS := .build/collections
# Podman settings and storage private to this tree (the podman molecule scenario).
PODMAN_DIR := .build/podman
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(CURDIR)/$(BIN):$(PATH)
export PYTHONPATH := $(CURDIR)/tests:$(COLLECTIONS)

.PHONY: help setup apt venv link rootfs podman test-collections demo test units sanity lint integration molecule bench bench-quick clean

help:
	@echo "make demo   - start a 3-host demo fleet, run playbooks/site.yml, print the report path, tear down"
	@echo "make test   - every test layer: units, sanity, lint, integration, molecule"

setup: apt venv link rootfs podman test-collections

apt:
	@bash tests/tools/apt-deps.sh

venv: $(VENV)/.installed

$(VENV)/.installed: requirements/controller.txt requirements/constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/controller.txt -c requirements/constraints.txt
	touch $@

link:
	@mkdir -p $(LINK)/ansible_collections/pkgcache
	@ln -sfn $(CURDIR) $(LINK)/ansible_collections/pkgcache/fleet

rootfs: apt venv
	$(PY) -m testfleet rootfs

# The rootfs imported as a podman image, offline; settings in $(PODMAN_DIR)/containers.conf.
podman: apt venv rootfs
	$(PY) -m testfleet podman --dir $(CURDIR)/$(PODMAN_DIR)

test-collections: venv
	VENV=$(VENV) bash tests/tools/test-collections.sh $(CURDIR)/$(TEST_COLLECTIONS)

demo: apt venv link rootfs
	$(PY) -m testfleet demo

test: setup
	$(MAKE) --no-print-directory units sanity lint integration molecule

units: venv link
	$(BIN)/pytest -q --durations=10 tests/unit

sanity: venv
	bash tests/tools/sanity.sh

lint: venv link
	bash tests/tools/lint.sh

integration: venv link rootfs
	$(BIN)/pytest -q --durations=15 tests/integration

# default: namespace hosts over SSH; podman: the podman driver, as users of our roles test them.
molecule: venv link rootfs podman test-collections
	cd $(CURDIR) && $(BIN)/molecule test -s default
	cd $(CURDIR) && $(BIN)/molecule test -s podman

bench: venv link
	$(PY) -m bench

bench-quick: venv link
	$(PY) -m bench --quick

clean:
	@# Containers left by an interrupted podman scenario hold mounts under $(PODMAN_DIR).
	@if [ -f $(PODMAN_DIR)/containers.conf ]; then \
	  CONTAINERS_CONF=$(CURDIR)/$(PODMAN_DIR)/containers.conf \
	  CONTAINERS_STORAGE_CONF=$(CURDIR)/$(PODMAN_DIR)/storage.conf podman rm --all --force >/dev/null; fi
	rm -rf .build tests/output bench/results
