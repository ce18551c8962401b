# pollen: the two commands a user needs are `make run TORRENT=x.torrent` and `make test`.

CARGO   ?= cargo
TORRENT ?=
DEST    ?= .
ARGS    ?=
# Debian packages the tests drive as reference tools, as CHECK=PACKAGE pairs: CHECK is a
# program that must be on PATH, or "libtorrent" for Debian's python3 module.
TEST_TOOLS    = transmission-show=transmission-cli mktorrent=mktorrent libtorrent=python3-libtorrent tmux=tmux openssl=openssl
# ...the real clients `make interop` runs pollen against...
INTEROP_TOOLS = opentracker=opentracker aria2c=aria2 libtorrent=python3-libtorrent transmission-cli=transmission-cli chromium=chromium chromedriver=chromium-driver
# ...and what the swarm bench measures with (/usr/bin/time gives CPU time and peak memory).
BENCH_TOOLS   = /usr/bin/time=time opentracker=opentracker aria2c=aria2 libtorrent=python3-libtorrent transmission-daemon=transmission-daemon
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The tests never reach the public DHT routers, not even from a release build
# (interop, bench, soak, test-arm): an empty list replaces them (tests/common sets it too).
test check interop bench soak test-arm: export POLLEN_DHT_ROUTERS =

.PHONY: run build install release-arm arm-deps test-arm test test-deps interop interop-deps check fmt clippy doc bench bench-deps fuzz fuzz-deps soak

## run: build in release mode and download TORRENT into DEST (extra flags in ARGS)
run: build
	@if [ -z "$(TORRENT)" ]; then echo "usage: make run TORRENT=file.torrent|'magnet:?...' [DEST=dir] [ARGS='--seed ...']" >&2; exit 2; fi
	./target/release/pollen --dest "$(DEST)" $(ARGS) "$(TORRENT)"

build:
	$(CARGO) build --release

PREFIX  ?= /usr/local
DESTDIR ?=
## install: the release binary as $(DESTDIR)$(PREFIX)/bin/pollen, and nothing else
install: build
	install -D -m 0755 target/release/pollen "$(DESTDIR)$(PREFIX)/bin/pollen"

# Static binaries for routers and NAS boxes, for 64-bit ARM (musl, linked by rust-lld,
# which rustup ships) and 32-bit ARMv7 with hardware float (glibc linked statically by
# Debian's cross gcc: rustup has no armv7 musl std on this machine's mirror; where it
# has, ARMV7_TARGET=armv7-unknown-linux-musleabihf works with the same settings).
# Debian's cross gcc also compiles ring's C code (rustls, HTTPS trackers).
ARMV7_TARGET ?= armv7-unknown-linux-gnueabihf
ARM_TARGETS  = aarch64-unknown-linux-musl $(ARMV7_TARGET)
ARM_TOOLS    = aarch64-linux-gnu-gcc=gcc-aarch64-linux-gnu arm-linux-gnueabihf-gcc=gcc-arm-linux-gnueabihf
ARM_ENV      = CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld \
	CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc \
	CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc \
	CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUSTFLAGS="-C target-feature=+crt-static" \
	CC_armv7_unknown_linux_musleabihf=arm-linux-gnueabihf-gcc \
	CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_LINKER=rust-lld
# The binaries release-arm makes (stripped by the release profile).
ARM_BINS     = $(foreach t,$(ARM_TARGETS),target/$(t)/release/pollen)

## release-arm: static binaries for aarch64 and armv7 boxes (installs the cross tools it needs)
release-arm: arm-deps
	$(ARM_ENV) $(CARGO) build --release $(addprefix --target ,$(ARM_TARGETS))
	@for bin in $(ARM_BINS); do \
	  printf '%s: %s bytes (%s KiB)\n' "$$bin" "$$(stat -c %s $$bin)" "$$(( $$(stat -c %s $$bin) / 1024 ))"; \
	done

arm-deps:
	$(call install-missing,$(ARM_TOOLS))
	@for t in $(ARM_TARGETS); do \
	  rustup target list --installed | grep -qx "$$t" || rustup target add "$$t" || exit 1; \
	done

## test-arm: both ARM binaries under qemu-user: `pollen info` on the fixtures and a
## download from a native pollen seeder on 127.0.0.1, byte for byte (tests/arm_qemu.rs)
test-arm: release-arm
	$(call install-missing,qemu-aarch64=qemu-user qemu-arm=qemu-user)
	POLLEN_ARM_BIN=$(CURDIR)/target/aarch64-unknown-linux-musl/release/pollen \
	POLLEN_ARMV7_BIN=$(CURDIR)/target/$(ARMV7_TARGET)/release/pollen \
	  $(CARGO) test --test arm_qemu

## test: install the reference tools the tests use (Debian), then run every test
test: test-deps
	$(CARGO) test

# The Python transmission-rpc package (tests/daemon_remote.rs) goes into a venv under target/.
RPC_VENV = target/rpc-venv
test-deps:
	$(call install-missing,$(TEST_TOOLS))
	@$(RPC_VENV)/bin/python -c 'import transmission_rpc' 2>/dev/null || \
	  { python3 -m venv $(RPC_VENV) && $(RPC_VENV)/bin/pip install -q 'transmission-rpc>=7,<8'; } \
	  || echo "warning: could not install transmission-rpc into $(RPC_VENV); its test is reported as ignored (failed with POLLEN_INTEROP=1)"

## interop: pollen against opentracker, aria2c, libtorrent and transmission-cli on 127.0.0.1,
## over HTTP and UDP trackers (opentracker and `pollen tracker`), from magnet links, and the
## daemon's web pages in headless Chromium (tests/web_ui.rs)
interop: interop-deps
	POLLEN_INTEROP=1 $(CARGO) test --release --test interop --test interop_trackers --test interop_magnet --test interop_dht --test web_ui -- --test-threads=1

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
	      || echo "warning: could not install$$missing; tests that need them are reported as ignored (failed with POLLEN_INTEROP=1)"; \
	  else echo "warning: no apt-get; tests that need$$missing are reported as ignored (failed with POLLEN_INTEROP=1)"; fi; \
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
## part 100 torrents in one seeding process against one (memory, idle CPU), the daemon
## part `pollen daemon` against transmission-daemon, each seeding 1,000 torrents added by RPC,
## the load part dead addresses, a crowd of junk connections and 10,000 connect/close cycles
bench: bench-deps build
	$(CARGO) bench --bench pollen_bench --bench pick_bench --bench swarm_bench --bench failover_bench --bench multi_bench --bench daemon_bench --bench load_bench

bench-deps:
	$(call install-missing,$(BENCH_TOOLS))

## fuzz: every coverage-guided fuzz target (tests/fuzz: cargo fuzz, libFuzzer, nightly) for
## FUZZ_SECONDS each (default 60), FUZZ_JOBS at a time (default 1); prints a table of runs and
## crashes and fails if any target crashed (its input is in target/fuzz/artifacts/). Not in CI:
## tests/fuzz_regressions.rs replays the seeds and every saved crash in `make test`.
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1
fuzz: fuzz-deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) tests/fuzz/run.sh

fuzz-deps:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

## soak: not CI; one release pollen seeding for SOAK_MINUTES (default 60) to a churn of
## pollen, aria2c and libtorrent leechers on 127.0.0.1, its RSS, CPU and open fds sampled
## every SOAK_SAMPLE_SECS (default 60): a table, target/soak/soak.tsv and soak.svg
soak: bench-deps build
	$(CARGO) bench --bench soak
