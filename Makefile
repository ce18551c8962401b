# pollen: the two commands a user needs are `make run TORRENT=x.torrent` and `make test`.

CARGO   ?= cargo
TORRENT ?=
DEST    ?= .
ARGS    ?=
# Debian packages the tests drive as reference tools, as CHECK=PACKAGE pairs: CHECK is a
# program that must be on PATH, or "libtorrent" for Debian's python3 module.
TEST_TOOLS    = transmission-show=transmission-cli mktorrent=mktorrent libtorrent=python3-libtorrent tmux=tmux openssl=openssl
# ...the real clients `make interop` runs pollen against...
INTEROP_TOOLS = opentracker=opentracker aria2c=aria2 libtorrent=python3-libtorrent transmission-cli=transmission-cli
# ...and what the swarm bench measures with (/usr/bin/time gives CPU time and peak memory).
BENCH_TOOLS   = /usr/bin/time=time opentracker=opentracker aria2c=aria2 libtorrent=python3-libtorrent
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run build test test-deps interop interop-deps check fmt clippy doc bench bench-deps

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
	$(call install-missing,$(TEST_TOOLS))

## interop: pollen against opentracker, aria2c, libtorrent and transmission-cli on 127.0.0.1,
## over HTTP and UDP trackers (opentracker and `pollen tracker`)
interop: interop-deps
	POLLEN_INTEROP=1 $(CARGO) test --release --test interop --test interop_trackers -- --test-threads=1

interop-deps:
	$(call install-missing,$(INTEROP_TOOLS))

# Installs, with apt-get, the package of every CHECK=PACKAGE pair in $(1) whose check fails.
define install-missing
@missing=""; \
	for pair in $(1); do \
	  tool=$${pair%%=*}; package=$${pair#*=}; \
	  if [ "$$tool" = libtorrent ]; then /usr/bin/python3 -c 'import libtorrent' 2>/dev/null && continue; \
	  else command -v "$$tool" >/dev/null && continue; fi; \
	  case " $$missing " in *" $$package "*) ;; *) missing="$$missing $$package";; esac; \
	done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null; then \
	    echo "installing test tools:$$missing"; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null \
	      || echo "warning: could not install$$missing; tests that need them will say they are skipped"; \
	  else echo "warning: no apt-get; tests that need$$missing will say they are skipped"; fi; \
	fi
endef

## check: everything CI checks besides the tests' tools: format, lints, tests, docs
check: fmt clippy test doc

fmt:
	$(CARGO) fmt --all -- --check

# Also the smallest build (no HTTPS, no `pollen tracker`), so the features stay separable.
clippy:
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets --no-default-features -- -D warnings

doc:
	RUSTDOCFLAGS=-Dwarnings $(CARGO) doc --no-deps

## bench: speed and memory figures (printed, never asserted); the swarm part compares
## pollen with aria2c downloading 256 MiB from one libtorrent seeder on 127.0.0.1, the
## failover part pollen with libtorrent behind a silent tier-1 UDP tracker, the multi
## part 100 torrents in one seeding process against one (memory, idle CPU)
bench: bench-deps build
	$(CARGO) bench --bench pollen_bench --bench pick_bench --bench swarm_bench --bench failover_bench --bench multi_bench

bench-deps:
	$(call install-missing,$(BENCH_TOOLS))
