# Haven: run `make` for the list of targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

GO      ?= go
# Debian packages the desktop build (Fyne: cgo, GLFW, OpenGL) and the screenshot test need.
DEB_PKGS := gcc pkg-config libgl1-mesa-dev xorg-dev xvfb xauth
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help deps run test bench

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install what a fresh machine lacks (X11/GL headers, Xvfb, Node and the JS test client)
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	command -v node >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@# npm ci refuses the lockfile when the registry omits cbor-x's optional native
	@# builds; npm install then installs exactly the locked versions.
	@[ -d syncd/interop/node_modules/@automerge/automerge-repo ] || \
		(cd syncd/interop && (npm ci --no-audit --no-fund || npm install --no-audit --no-fund))

run: deps ## start the relay with demo data and open a desktop connected to it
	@echo "Haven is being built: the relay and desktop do not exist yet."
	@echo "For now 'make test' exercises the care record and the encrypted store."

test: deps ## run every test (real Badger, real Automerge, real websockets)
	$(GO) vet ./...
	$(GO) test -count=1 ./...

bench: ## print the performance figures the issues ask for
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...
