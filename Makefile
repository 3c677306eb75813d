# oci-volume-hook — build, install, documentation and packages.
#
#   make                      release binaries, statically linked (STATIC=, below)
#   make docs completions     man pages and shell completions into build/
#   make install DESTDIR=…    install everything (see the directory variables)
#   make dist                 build/oci-volume-hook-VERSION.tar.gz with vendored crates
#   make deb | make rpm       packages built offline from that tarball
#   make test                 tests/run-all.sh
#
# Every directory below can be overridden on the command line.

PACKAGE    := oci-volume-hook
VERSION    := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)

PREFIX        ?= /usr
BINDIR        ?= $(PREFIX)/bin
DATADIR       ?= $(PREFIX)/share
MANDIR        ?= $(DATADIR)/man
SYSCONFDIR    ?= /etc
LOCALSTATEDIR ?= /var
HOOKSDIR      ?= $(PREFIX)/share/containers/oci/hooks.d
BASHCOMPDIR   ?= $(DATADIR)/bash-completion/completions
# Fedora's zsh reads site-functions; Debian's reads vendor-completions
# (packaging/debian/rules overrides this).
ZSHCOMPDIR    ?= $(DATADIR)/zsh/site-functions
FISHCOMPDIR   ?= $(DATADIR)/fish/vendor_completions.d
CONFDIR       ?= $(SYSCONFDIR)/$(PACKAGE)
VOLUMESDIR    ?= $(LOCALSTATEDIR)/lib/$(PACKAGE)/volumes

CARGO       ?= cargo
# Extra cargo flags, e.g. CARGO_FLAGS=--offline (the package builds use it).
CARGO_FLAGS ?=
# Honour CARGO_TARGET_DIR from the environment, like cargo does.
TARGET_DIR  ?= $(or $(CARGO_TARGET_DIR),target)
# The binaries are linked statically (issue 15: the dynamic loader and
# glibc's start-up cost 0.4-0.6 ms per hook process, twice per container):
#   STATIC=auto        (default) musl when the toolchain has its standard
#                      library (`rustup target add $(MUSL_TARGET)`), else
#                      crt-static
#   STATIC=musl        the musl target. musl's resolver ignores
#                      /etc/nsswitch.conf: NFS server names resolve through
#                      /etc/hosts and DNS only (docs/nfs.md)
#   STATIC=crt-static  glibc linked statically (libc6-dev / glibc-static);
#                      glibc still loads NSS modules at run time for names
#   STATIC=no          the toolchain's default, dynamically linked
# RUSTFLAGS in the environment replaces the crt-static flag (cargo's rule).
RUSTC       ?= rustc
ARCH        := $(shell uname -m)
MUSL_TARGET := $(ARCH)-unknown-linux-musl
GNU_TARGET  := $(ARCH)-unknown-linux-gnu
STATIC      ?= auto
ifeq ($(STATIC),auto)
override STATIC := $(if $(wildcard $(shell $(RUSTC) --print target-libdir --target $(MUSL_TARGET) 2>/dev/null)/libstd-*.rlib),musl,crt-static)
endif
ifeq ($(STATIC),musl)
CARGO_TARGET := --target $(MUSL_TARGET)
RELEASE_DIR  := $(TARGET_DIR)/$(MUSL_TARGET)/release
else ifeq ($(STATIC),crt-static)
CARGO_TARGET := --target $(GNU_TARGET)
RELEASE_DIR  := $(TARGET_DIR)/$(GNU_TARGET)/release
export CARGO_TARGET_$(shell echo '$(GNU_TARGET)' | tr 'a-z-' 'A-Z_')_RUSTFLAGS := -C target-feature=+crt-static
else ifeq ($(STATIC),no)
CARGO_TARGET :=
RELEASE_DIR  := $(TARGET_DIR)/release
else
$(error STATIC=$(STATIC): expected auto, musl, crt-static or no)
endif
BIN         := $(RELEASE_DIR)/$(PACKAGE)
# The runtime wrapper for docker and containerd; it finds the hook beside
# itself, so both go to BINDIR.
WRAPPER     := oci-volume-runtime
WRAPPER_BIN := $(RELEASE_DIR)/$(WRAPPER)

GOMD2MAN ?= go-md2man
INSTALL  ?= install

BUILDDIR := build
MANPAGES := $(BUILDDIR)/man/$(PACKAGE).1 \
            $(BUILDDIR)/man/$(WRAPPER).1 \
            $(BUILDDIR)/man/$(PACKAGE).conf.5 \
            $(BUILDDIR)/man/$(PACKAGE)-volumes.5
COMPLETIONS := $(BUILDDIR)/completions/$(PACKAGE).bash \
               $(BUILDDIR)/completions/_$(PACKAGE) \
               $(BUILDDIR)/completions/$(PACKAGE).fish
HOOKS := $(PACKAGE)-prestart.json $(PACKAGE)-poststop.json

DISTNAME := $(PACKAGE)-$(VERSION)
TARBALL  := $(BUILDDIR)/$(DISTNAME).tar.gz
# Release date of the man pages: the last commit, else today (SOURCE_DATE_EPOCH wins).
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
MANDATE := $(shell LC_ALL=C date -u -d @$(SOURCE_DATE_EPOCH) '+%B %Y')

# Package builds share one cargo target directory under build/ so that a
# `make deb` followed by `make rpm` does not compile every crate twice, and
# neither touches the developer's target/.  Both unpack the tarball at the
# same place, PKGSRC (cargo recompiles a vendored crate whose path changed).
# Set PKG_TARGET_DIR= to build each package from scratch.  The package
# builds skip the unit tests by default (`make test` runs them):
# DEB_BUILD_OPTIONS= / RPMBUILD_FLAGS= turn them back on.
PKG_TARGET_DIR ?= $(CURDIR)/$(BUILDDIR)/pkg-target
PKGSRC := $(BUILDDIR)/pkgsrc
DEB_BUILD_OPTIONS ?= nocheck
RPMBUILD_FLAGS ?= --nocheck

.PHONY: all build print-bin docs completions install uninstall vendor dist deb rpm test \
        check-versions clean distclean

all: build

build:
	@echo "linking: STATIC=$(STATIC)"
	$(CARGO) build --release --locked $(CARGO_FLAGS) $(CARGO_TARGET) --target-dir $(TARGET_DIR)

$(BIN) $(WRAPPER_BIN):
	$(CARGO) build --release --locked $(CARGO_FLAGS) $(CARGO_TARGET) --target-dir $(TARGET_DIR)

# The hook binary's path for this STATIC (tests/run-all.sh perf runs it).
print-bin:
	@echo $(BIN)

# ---------------------------------------------------------------- man pages
docs: $(MANPAGES)

$(BUILDDIR)/man/%: docs/man/%.md
	@mkdir -p $(@D)
	sed -e 's/@VERSION@/$(VERSION)/g' -e 's/@DATE@/$(MANDATE)/g' $< > $@.md
	$(GOMD2MAN) -in $@.md -out $@
	@rm -f $@.md

# -------------------------------------------------------------- completions
# Generated by the binary itself (`oci-volume-hook completions SHELL`).
completions: $(COMPLETIONS)

$(BUILDDIR)/completions/$(PACKAGE).bash: $(BIN)
	@mkdir -p $(@D)
	$(BIN) completions bash > $@.tmp && mv $@.tmp $@
$(BUILDDIR)/completions/_$(PACKAGE): $(BIN)
	@mkdir -p $(@D)
	$(BIN) completions zsh > $@.tmp && mv $@.tmp $@
$(BUILDDIR)/completions/$(PACKAGE).fish: $(BIN)
	@mkdir -p $(@D)
	$(BIN) completions fish > $@.tmp && mv $@.tmp $@

# ------------------------------------------------------------------ install
# Does not compile as root behind your back: run `make` first (it builds the
# binary only when it is missing).
install: $(BIN) $(WRAPPER_BIN) docs completions
	$(INSTALL) -d -m 0755 $(DESTDIR)$(BINDIR)
	$(INSTALL) -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/$(PACKAGE)
	$(INSTALL) -m 0755 $(WRAPPER_BIN) $(DESTDIR)$(BINDIR)/$(WRAPPER)
	$(INSTALL) -d -m 0755 $(DESTDIR)$(HOOKSDIR)
	@# The hooks.d entries name /usr/bin/oci-volume-hook and the default
	@# config; point them at BINDIR / CONFDIR when those differ.
	for h in $(HOOKS); do \
	  sed -e 's|"/usr/bin/$(PACKAGE)"|"$(BINDIR)/$(PACKAGE)"|' \
	      $(if $(filter /etc/$(PACKAGE),$(CONFDIR)),,-e 's|"args": \["$(PACKAGE)", |&"--config", "$(CONFDIR)/config.toml", |') \
	      hooks.d/$$h > $(BUILDDIR)/$$h.tmp && \
	  grep -q '"path": "$(BINDIR)/$(PACKAGE)"' $(BUILDDIR)/$$h.tmp && \
	  $(if $(filter /etc/$(PACKAGE),$(CONFDIR)),true,grep -q '"--config", "$(CONFDIR)/config.toml"' $(BUILDDIR)/$$h.tmp) && \
	  $(INSTALL) -m 0644 $(BUILDDIR)/$$h.tmp $(DESTDIR)$(HOOKSDIR)/$$h && rm -f $(BUILDDIR)/$$h.tmp || exit 1; \
	done
	$(INSTALL) -d -m 0755 $(DESTDIR)$(CONFDIR)
	@# A direct install (no DESTDIR) never overwrites an admin's config.
	if [ -z "$(DESTDIR)" ] && [ -e $(CONFDIR)/config.toml ]; then \
	  $(INSTALL) -m 0644 etc/config.toml $(CONFDIR)/config.toml.new; \
	  echo "kept $(CONFDIR)/config.toml; the new default is config.toml.new"; \
	else \
	  $(INSTALL) -m 0644 etc/config.toml $(DESTDIR)$(CONFDIR)/config.toml; \
	fi
	$(INSTALL) -d -m 0755 $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5
	$(INSTALL) -m 0644 $(BUILDDIR)/man/$(PACKAGE).1 $(BUILDDIR)/man/$(WRAPPER).1 $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 0644 $(BUILDDIR)/man/$(PACKAGE).conf.5 $(BUILDDIR)/man/$(PACKAGE)-volumes.5 \
	  $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -d -m 0755 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	$(INSTALL) -m 0644 $(BUILDDIR)/completions/$(PACKAGE).bash $(DESTDIR)$(BASHCOMPDIR)/$(PACKAGE)
	$(INSTALL) -m 0644 $(BUILDDIR)/completions/_$(PACKAGE) $(DESTDIR)$(ZSHCOMPDIR)/_$(PACKAGE)
	$(INSTALL) -m 0644 $(BUILDDIR)/completions/$(PACKAGE).fish $(DESTDIR)$(FISHCOMPDIR)/$(PACKAGE).fish
	$(INSTALL) -d -m 0755 $(DESTDIR)$(dir $(VOLUMESDIR))
	$(INSTALL) -d -m 0700 $(DESTDIR)$(VOLUMESDIR)
	@case "$(HOOKSDIR)" in /usr/share/containers/oci/hooks.d|/etc/containers/oci/hooks.d) ;; \
	  *) echo "note: podman does not read $(HOOKSDIR) by default: add it to hooks_dir in containers.conf or pass --hooks-dir" ;; esac

# Removes what install put there, except the config and the volumes
# (volume data is never deleted by any target or package script).
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/$(PACKAGE) $(DESTDIR)$(BINDIR)/$(WRAPPER)
	rm -f $(addprefix $(DESTDIR)$(HOOKSDIR)/,$(HOOKS))
	rm -f $(DESTDIR)$(MANDIR)/man1/$(PACKAGE).1 $(DESTDIR)$(MANDIR)/man1/$(WRAPPER).1 \
	      $(DESTDIR)$(MANDIR)/man5/$(PACKAGE).conf.5 \
	      $(DESTDIR)$(MANDIR)/man5/$(PACKAGE)-volumes.5
	rm -f $(DESTDIR)$(BASHCOMPDIR)/$(PACKAGE) $(DESTDIR)$(ZSHCOMPDIR)/_$(PACKAGE) \
	      $(DESTDIR)$(FISHCOMPDIR)/$(PACKAGE).fish

# ---------------------------------------------------- vendored source tarball
# `cargo vendor` needs crates.io (it fetches every platform's crates, e.g.
# windows-sys, that a normal build never downloads).  The result builds
# with no network: `cargo build --release --locked --offline`.
vendor: $(BUILDDIR)/vendor.stamp

# Vendored files get Cargo.lock's mtime: a fresh `cargo vendor` must not
# look like changed sources to cargo (it would re-run every build script).
$(BUILDDIR)/vendor.stamp: Cargo.lock Cargo.toml
	@mkdir -p $(BUILDDIR)
	rm -rf $(BUILDDIR)/vendor
	$(CARGO) vendor --locked $(BUILDDIR)/vendor > /dev/null
	find $(BUILDDIR)/vendor -exec touch -h -r Cargo.lock {} +
	printf '%s\n' '[source.crates-io]' 'replace-with = "vendored-sources"' '' \
	  '[source.vendored-sources]' 'directory = "vendor"' > $(BUILDDIR)/vendor.config.toml
	touch $@

# Source files: what git tracks plus new files not ignored (so an uncommitted
# tree can be packaged); outside git, the tree minus build products.
dist: vendor
	rm -rf $(BUILDDIR)/dist && mkdir -p $(BUILDDIR)/dist/$(DISTNAME)/.cargo
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  git ls-files -z --cached --others --exclude-standard | \
	    xargs -0 sh -c 'for f; do [ -e "$$f" ] && printf "%s\0" "$$f"; done' sh | \
	    tar --null -T - -cf - | tar -C $(BUILDDIR)/dist/$(DISTNAME) -xf -; \
	else \
	  tar --exclude=./target --exclude=./$(BUILDDIR) --exclude=./vendor --exclude=./.git -cf - . | \
	    tar -C $(BUILDDIR)/dist/$(DISTNAME) -xf -; \
	fi
	cp -a $(BUILDDIR)/vendor $(BUILDDIR)/dist/$(DISTNAME)/vendor
	cp $(BUILDDIR)/vendor.config.toml $(BUILDDIR)/dist/$(DISTNAME)/.cargo/config.toml
	@# Project files keep their mtimes, so that cargo in a package build
	@# sees which sources changed since the last one.
	tar -C $(BUILDDIR)/dist --sort=name --owner=0 --group=0 --numeric-owner \
	  -cf - $(DISTNAME) | gzip -n -6 > $(TARBALL).tmp
	mv $(TARBALL).tmp $(TARBALL)
	rm -rf $(BUILDDIR)/dist
	@echo "wrote $(TARBALL)"

check-versions:
	@v=$$(sed -n '1s/^[^(]*(\([^-)]*\).*/\1/p' packaging/debian/changelog); \
	  [ "$$v" = "$(VERSION)" ] || { echo "packaging/debian/changelog is at $$v, Cargo.toml at $(VERSION)"; exit 1; }
	@v=$$(sed -n 's/^Version: *//p' packaging/rpm/$(PACKAGE).spec); \
	  [ "$$v" = "$(VERSION)" ] || { echo "packaging/rpm/$(PACKAGE).spec is at $$v, Cargo.toml at $(VERSION)"; exit 1; }

# ------------------------------------------------------------------ .deb
# Built from the dist tarball (like a Debian source package), offline.
# Debian's own cargo/rustc (>= 1.88) satisfy Build-Depends;
# where they are missing or too old (Debian 12) the build profile
# pkg.oci-volume-hook.rustup drops them and debian/rules uses the builder's
# rustup toolchain (~/.cargo/bin) instead.
deb: check-versions dist
	rm -rf $(PKGSRC)/$(DISTNAME) $(PKGSRC)/*.deb $(PKGSRC)/*.changes $(PKGSRC)/*.buildinfo
	mkdir -p $(PKGSRC)
	tar -C $(PKGSRC) -xzf $(TARBALL)
	cp -a $(PKGSRC)/$(DISTNAME)/packaging/debian $(PKGSRC)/$(DISTNAME)/debian
	profiles="$(DEB_BUILD_PROFILES)"; \
	if [ -z "$$profiles" ] && ! dpkg-checkbuilddeps -d 'rustc (>= 1.88), cargo' /dev/null >/dev/null 2>&1; then \
	  profiles=pkg.oci-volume-hook.rustup; \
	  echo "Debian's rustc/cargo missing or older than 1.88: building with profile $$profiles"; \
	fi; \
	cd $(PKGSRC)/$(DISTNAME) && \
	  DEB_BUILD_OPTIONS="$(DEB_BUILD_OPTIONS)" $(if $(PKG_TARGET_DIR),CARGO_TARGET_DIR=$(PKG_TARGET_DIR)) \
	  dpkg-buildpackage -b -us -uc $${profiles:+-P$$profiles}
	cp $(PKGSRC)/$(PACKAGE)_$(VERSION)-*.deb $(BUILDDIR)/
	@ls -1 $(BUILDDIR)/*.deb

# ------------------------------------------------------------------ .rpm
# rpmbuild checks BuildRequires against the rpm database; on a host that does
# not install software with rpm (Debian) that database is empty, so --nodeps.
rpm: check-versions dist
	rm -rf $(BUILDDIR)/rpm && mkdir -p $(BUILDDIR)/rpm/SOURCES
	cp $(TARBALL) $(BUILDDIR)/rpm/SOURCES/
	flags="$(RPMBUILD_FLAGS)"; \
	if ! rpm -q rpm >/dev/null 2>&1; then flags="$$flags --nodeps"; fi; \
	$(if $(PKG_TARGET_DIR),CARGO_TARGET_DIR=$(PKG_TARGET_DIR)) \
	rpmbuild -bb $$flags --define "_topdir $(CURDIR)/$(BUILDDIR)/rpm" \
	  --define "_builddir $(CURDIR)/$(PKGSRC)" packaging/rpm/$(PACKAGE).spec
	cp $(BUILDDIR)/rpm/RPMS/*/$(PACKAGE)-$(VERSION)-*.rpm $(BUILDDIR)/
	@ls -1 $(BUILDDIR)/*.rpm

# ------------------------------------------------------------------ tests
test:
	tests/run-all.sh

# `clean` removes build/ (man pages, completions, tarball, packages and the
# package builds' cargo target dir) but keeps target/; distclean removes both.
clean:
	rm -rf $(BUILDDIR)

distclean: clean
	$(CARGO) clean
