# pkgcache.fleet — developer entry points. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# Runtime view of the collection (a symlink, always current) for ansible, molecule, pytest.
LINK := .build/link
COLLECTIONS := $(CURDIR)/$(LINK)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(CURDIR)/$(BIN):$(PATH)
export PYTHONPATH := $(CURDIR)/tests:$(COLLECTIONS)

.PHONY: help setup apt venv link rootfs demo test units sanity lint integration molecule bench bench-quick clean

help:
	@echo "make demo   - start a 3-host demo fleet, run playbooks/site.yml, print the report path, tear down"
	@echo "make test   - every test layer: units, sanity, lint, integration, molecule"

setup: apt venv link rootfs

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

demo: setup
	$(PY) -m testfleet demo

test: setup
	$(MAKE) --no-print-directory units sanity lint integration molecule

units: venv link
	$(BIN)/pytest -q tests/unit

sanity: venv
	bash tests/tools/sanity.sh

lint: venv link
	bash tests/tools/lint.sh

integration: venv link rootfs
	$(BIN)/pytest -q tests/integration

molecule: venv link rootfs
	cd $(CURDIR) && $(BIN)/molecule test -s default

bench: venv link
	$(PY) -m bench

bench-quick: venv link
	$(PY) -m bench --quick

clean:
	rm -rf .build tests/output bench/results
