# pollen: the two commands a user needs are `make run TORRENT=x.torrent` and `make test`.

CARGO   ?= cargo
TORRENT ?=
DEST    ?= .
ARGS    ?=
# Debian packages the tests drive as reference tools (transmission-show, mktorrent, libtorrent).
TEST_PACKAGES = transmission-cli mktorrent python3-libtorrent
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run build test test-deps check fmt clippy doc bench

## run: build in release mode and download TORRENT into DEST (extra flags in ARGS)
run: build
	@if [ -z "$(TORRENT)" ]; then echo "usage: make run TORRENT=file.torrent [DEST=dir] [ARGS='--seed ...']" >&2; exit 2; fi
	./target/release/pollen --dest "$(DEST)" $(ARGS) "$(TORRENT)"

build:
	$(CARGO) build --release

## test: install the reference tools the tests use (Debian), then run every test
test: test-deps
	$(CARGO) test

test-deps:
	@missing=""; \
	command -v transmission-show >/dev/null || missing="$$missing transmission-cli"; \
	command -v mktorrent >/dev/null || missing="$$missing mktorrent"; \
	/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || missing="$$missing python3-libtorrent"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null; then \
	    echo "installing test tools:$$missing"; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null \
	      || echo "warning: could not install$$missing; tests that need them will say they are skipped"; \
	  else echo "warning: no apt-get; tests that need$$missing will say they are skipped"; fi; \
	fi

## check: everything CI checks besides the tests' tools: format, lints, tests, docs
check: fmt clippy test doc

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

doc:
	RUSTDOCFLAGS=-Dwarnings $(CARGO) doc --no-deps

## bench: speed and memory figures (printed, never asserted)
bench:
	$(CARGO) bench --bench pollen_bench
