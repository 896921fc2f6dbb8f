# The two set-up commands of the README: `make dev` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PACKAGES := api controller reconcilers proxy remotewrite cmd apidouble
DEBIAN_PACKAGES := prometheus prometheus-pushgateway victoria-metrics
PYTEST_ARGS ?=
TEST_WORKERS ?= 3

.PHONY: test dev lint manifests deploy dist venv system-packages testbin test-binaries bench clean typecheck-tree

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# The real servers the tests start. Installed when missing and we are root (CI, dev boxes);
# otherwise the README says what to install by hand.
system-packages:
	@missing=""; \
	for bin in prometheus promtool prometheus-pushgateway victoria-metrics vmauth; do \
	  command -v $$bin >/dev/null 2>&1 || missing="$$missing $$bin"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages for:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; \
	  else \
	    echo "missing:$$missing -- run: sudo apt-get install -y $(DEBIAN_PACKAGES)"; exit 1; \
	  fi; \
	fi

# The real servers built from Go modules (hack/testbin.sh): kube-apiserver, kubectl and etcd,
# Prometheus 3 and promtool, prom-label-proxy; cached per version under
# ${XDG_CACHE_HOME:-~/.cache}/mtproxy/testbin/<name>-<version>/ (tests find them there by name
# and version: tests/realservers/testbin.py). Only what is missing is built; a warm run checks
# file names and builds nothing. A cold build takes about 20 minutes on two cores.
testbin:
	@hack/testbin.sh

# What `make test` runs first. In CI (CI=true) a binary that cannot be built fails the run;
# elsewhere its tests are skipped with the reason (a machine without Go still runs the rest).
test-binaries:
	@if hack/testbin.sh; then :; \
	elif [ "$${CI:-}" = true ] || [ "$${CI:-}" = 1 ]; then \
	  echo "testbin: a build failed and CI=$$CI: stopping" >&2; exit 1; \
	else \
	  echo "testbin: a build failed; the tests that need it will be skipped" >&2; \
	fi

# Three workers on two cores: most suites wait on real servers, not on the CPU; each test
# file runs whole on one worker (--dist loadfile), so a file's session servers start once.
# TEST_WORKERS=0 runs everything in this process.
test: venv system-packages test-binaries
	$(PY) -P -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

# What `make dev` needs: the project and its runtime dependencies only (no test extras, no
# upgrade of pip, no ahead-of-time bytecode: Python compiles what it imports, which halves
# the install), so a first run is quick. `make test` adds the test extras to the same venv.
$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-compile -e .
	touch $@

dev: $(VENV)/.runtime
	$(VENV)/bin/mtproxy dev $(DEV_ARGS)

manifests: venv
	$(VENV)/bin/mtproxy manifests

# mypy cannot follow setuptools' editable import hook, so it checks a tree of links
# that mirrors the installed layout (mtproxy/<package> -> <package>).
typecheck-tree:
	@mkdir -p build/typecheck/mtproxy
	@for p in $(PACKAGES); do ln -sfn ../../../$$p build/typecheck/mtproxy/$$p; done

lint: venv typecheck-tree
	$(VENV)/bin/ruff check $(PACKAGES) tests bench
	$(VENV)/bin/mypy -p mtproxy.api -p mtproxy.controller -p mtproxy.reconcilers -p mtproxy.proxy -p mtproxy.remotewrite -p mtproxy.cmd -p mtproxy.apidouble

# Every bench under bench/ with real servers (bench/run_all.py): bench/results.json, bench/plots/*.png and
# a table of figures against goals; 6-10 minutes on 2 cores. `make bench BENCH_ARGS=--quick`: about 4.
bench: venv system-packages
	@$(PY) -c 'import matplotlib' 2>/dev/null || $(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	$(PY) -P bench/run_all.py $(BENCH_ARGS)

# `make deploy IMG=registry.example.com/team/mtproxy:0.1.0` applies config/default with that
# image (kustomize `images:` in a generated overlay, $(DEPLOY_DIR)); KUBECTL names another
# kubectl (1.27+: `kubectl apply -k` is kustomize), DEPLOY_ARGS adds flags (--dry-run=server).
IMG ?= prometheus-multi-tenant-proxy:latest
KUBECTL ?= kubectl
DEPLOY_ARGS ?=
DEPLOY_DIR ?= build/deploy
deploy:
	@img='$(IMG)'; \
	case "$$img" in \
	  *@*) name="$${img%%@*}"; ref="    digest: $${img#*@}";; \
	  *) case "$${img##*/}" in *:*) name="$${img%:*}"; ref="    newTag: $${img##*:}";; *) name="$$img"; ref="";; esac;; \
	esac; \
	mkdir -p $(DEPLOY_DIR) && \
	base=$$($(PYTHON) -c 'import os, sys; print(os.path.relpath(*sys.argv[1:]))' config/default $(DEPLOY_DIR)) && \
	printf '%s\n' "# written by make deploy: config/default with the image $$img" \
	  "resources: [$$base]" "images:" "  - name: prometheus-multi-tenant-proxy" \
	  "    newName: $$name" $${ref:+"$$ref"} > $(DEPLOY_DIR)/kustomization.yaml
	$(KUBECTL) apply -k $(DEPLOY_DIR) $(DEPLOY_ARGS)

# The wheel the Dockerfile installs (dist/prometheus_multi_tenant_proxy-<version>-py3-none-any.whl),
# built from a clean copy of the packages so that no stale build/lib file can slip into it.
DIST_DIR ?= dist
dist:
	@src=$$(mktemp -d) && trap 'rm -rf "$$src"' EXIT && \
	tar -c --exclude=__pycache__ pyproject.toml README.md $(PACKAGES) | tar -x -C "$$src" && \
	mkdir -p $(DIST_DIR) && \
	$(PYTHON) -m pip wheel --quiet --no-deps --wheel-dir $(abspath $(DIST_DIR)) "$$src" && \
	ls $(DIST_DIR)/*.whl

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
