# hs-gateway developer commands. `make demo` and `make test` are the two a newcomer runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help demo test lint typecheck pytest bench bench-compare deb test-deb clean

help:
	@echo "make demo           simulated devices + the gateway over them (Ctrl-C stops)"
	@echo "make test           ruff, mypy --strict and the whole pytest suite"
	@echo "make bench          benchmarks under tests/perf (figures and ratios)"
	@echo "make bench-compare  the same, side by side with haystack-py (Python 3.13)"
	@echo "make deb            build build/deb/hs-gateway_<ver>_<arch>.deb with dh-virtualenv"
	@echo "make test-deb       build the .deb, install it in a Debian 12 root (root, network)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check gateway drivers tests tools
	$(BIN)/ruff format --check gateway drivers tests tools

typecheck: $(STAMP)
	$(BIN)/mypy --strict gateway drivers

pytest: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/hs-gateway demo

bench: $(STAMP)
	$(BIN)/python -m tests.perf

bench-compare: $(STAMP)
	bash ../shared/bench/setup_hspy.sh
	$(BIN)/python -m tests.perf --compare

# The package is built from a copy of the tree (tracked and new files, not ignored ones) under
# build/deb, so that dpkg-buildpackage's products and debian/ staging never land in the repo.
DEB_DIR := build/deb
DEB_SRC := $(DEB_DIR)/src/hs-gateway

deb:
	rm -rf $(DEB_DIR)/src
	mkdir -p $(DEB_SRC)
	git ls-files -z --cached --others --exclude-standard \
		| tar --null --files-from=- -cf - | tar -xf - -C $(DEB_SRC)
	cd $(DEB_SRC) && dpkg-buildpackage -us -uc -b
	mv $(DEB_DIR)/src/*.deb $(DEB_DIR)/src/*.buildinfo $(DEB_DIR)/src/*.changes $(DEB_DIR)/
	@ls -l $(DEB_DIR)/*.deb

test-deb: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/packaging -m packaging $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info
