# uwsgi_fleet: `make converge` converges THIS machine; `make test` runs every test,
# converging only fresh test nodes (systemd-nspawn containers, test/nodes), never this host.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON      := /usr/bin/python3
BUNDLE_DIR  := /var/cache/uwsgi_fleet/bundle
# What differs between the Debian releases we run on, for make, in one place
# (documentation/platforms.md has the whole list). DEBIAN_VERSION is this
# machine's; the test node images set it to theirs.
DEBIAN_VERSION ?= $(shell . /etc/os-release && echo $$VERSION_ID)
# Debian 13 renamed the library in its 64-bit time_t transition; apt resolves
# the old name, but `dpkg -s` does not, and every run would reinstall.
LIBARCHIVE_12 := libarchive13
LIBARCHIVE_13 := libarchive13t64
# What building and running Chef from gems needs. ruby-shadow: Debian's build of
# the gem Chef's user resource needs, loaded through gems/ruby-shadow-debian;
# the gem from RubyGems no longer builds on Debian 13 (see lib/shadow.rb there).
APT_BUILD   := build-essential ruby-dev ruby-bundler pkg-config libffi-dev libyaml-dev git ruby-shadow \
               $(LIBARCHIVE_$(DEBIAN_VERSION))
# $(call apt_install,PACKAGES): install them unless every one is installed
# (dpkg-query's "ii": `dpkg -s` also succeeds for a package removed with its
# conffiles left, state "rc"). It waits
# for another apt (a fresh cloud image runs unattended-upgrades at first boot)
# instead of failing at once: the install through DPkg::Lock::Timeout, and
# `apt-get update`, which has no lock timeout, by retrying on a held lock only.
APT_GET     := apt-get -q -o DPkg::Lock::Timeout=600
apt_install  = test "$$(dpkg-query -W -f='$${db:Status-Abbrev}\n' $(1) 2>/dev/null | grep -c '^ii')" = $(words $(1)) || { \
	for try in $$(seq 60); do \
	  err=$$($(APT_GET) update -qq 2>&1 >/dev/null) && break; \
	  case "$$err" in *"Could not get lock"*) echo "apt: another apt holds the lists, waiting ($$try)"; sleep 10;; \
	    *) echo "$$err" >&2; exit 1;; esac; \
	done; $(APT_GET) install -y -qq $(1); }
APT_TEST    := python3-pytest python3-testinfra python3-yaml python3-sentry-sdk python3-matplotlib \
               iproute2 procps curl systemd-container debootstrap apt-cacher-ng iptables openssh-client \
               python3-brotli zstd chromium redis-server python3-redis python3-jsonschema
# What `make bench` needs beyond the converged node; the node smoke installs the same list.
APT_BENCH   := gunicorn python3-pytest python3-matplotlib procps
CHEF_CLIENT := $(CURDIR)/bin/chef-client
# The cookbook's own parts, the one list of them: `make converge` converges a
# copy of these (COOKBOOK_COPY), as ChefSpec and the test nodes do, never the
# checkout itself, whose tests, bench and node_modules Chef would walk on every
# run (a no-op converge took 4 min with test/clients/node_modules, 49 s without).
COOKBOOK_PARTS := metadata.rb attributes files libraries recipes resources templates chefignore
COOKBOOK_COPY  := .chef-local/cookbooks/uwsgi_fleet
# Node processes outlive the commands that start them; this reaps them (see reaper.py).
REAP        := $(PYTHON) test/nodes/reaper.py
ATTRS       ?=
JSON_ATTRS  := $(if $(ATTRS),-j $(abspath $(ATTRS)))

export CHEF_LICENSE := accept-no-persist
export PYTHONDONTWRITEBYTECODE := 1
export DEBIAN_FRONTEND := noninteractive

.PHONY: converge test lane-suites lane-load deps deps-test lint unit chefspec nodes kitchen server-flow reliability cluster bench bench-smoke clean

## converge: install Chef from gems and converge this node with the default app
# Only the Gemfile's default group: a node that converges needs no test tools.
converge: export BUNDLE_WITHOUT := test
converge: deps
	@rm -rf $(COOKBOOK_COPY) && mkdir -p $(COOKBOOK_COPY) && cp -R $(COOKBOOK_PARTS) $(COOKBOOK_COPY)/
	$(CHEF_CLIENT) --local-mode --config .chef/local-mode.rb -o 'recipe[uwsgi_fleet::default]' $(JSON_ATTRS)
	@/usr/local/sbin/uwsgi-fleetctl summary

## test: cookstyle, unit tests (pytest + ChefSpec), the test nodes and the init-script path, kitchen
## suites, the chef-zero + knife flow, reliability under load, and a seconds-long smoke run of the
## benchmark harness. Every converge is on a fresh node (test/nodes), never on this host.
test: deps deps-test lint unit chefspec
	$(MAKE) --no-print-directory -j2 --output-sync=recurse lane-suites lane-load
	$(PYTHON) test/nodes/leftovers.py
	@echo "make test: all passed"

# The node tests in two lanes side by side (each lane's output is printed when it ends):
# the Kitchen suites, and the load-bearing ones. Nodes share one image and network.
lane-suites:
	$(MAKE) --no-print-directory -j1 nodes kitchen
lane-load:
	$(MAKE) --no-print-directory -j1 server-flow reliability cluster bench-smoke

print-%:
	@echo $($*)

deps:
	@$(call apt_install,$(APT_BUILD))
	@bundle config set --local path $(BUNDLE_DIR) >/dev/null
	@bundle check >/dev/null 2>&1 || bundle install --jobs 2
	@test -x $(CHEF_CLIENT) || bundle binstubs chef-bin --path bin >/dev/null

deps-test:
	@$(call apt_install,$(APT_TEST))
	@test -d test/clients/node_modules/@sentry || (cd test/clients && npm ci --no-audit --no-fund --loglevel=error)

lint: deps
	bundle exec cookstyle --display-cop-names

unit: deps deps-test
	$(PYTHON) -m pytest -q test/unit/python

chefspec: deps deps-test
	bundle exec rspec --default-path test/unit/chefspec --pattern '**/*_spec.rb'

nodes: deps deps-test
	$(REAP) $(PYTHON) -m pytest -q test/nodes

kitchen: deps deps-test
	@rm -rf build/kitchen-verify
	$(REAP) bundle exec kitchen test --concurrency=2 --destroy=always \
	  || { $(PYTHON) test/integration/verify_report.py build/kitchen-verify; exit 1; }

server-flow: deps deps-test
	$(REAP) $(PYTHON) -m pytest -q test/server

reliability: deps deps-test
	$(REAP) $(PYTHON) -m pytest -q -rA test/reliability

## cluster: scale out on fresh nodes (balancer, web nodes, Redis) through chef-zero with real search
cluster: deps deps-test
	$(REAP) $(PYTHON) -m pytest -q -rA test/cluster

## bench: the node's topology against the alternatives (~13 min on 2 cores; BENCH_ARGS=--full for ~50)
bench: deps-test
	@$(call apt_install,$(APT_BENCH))
	$(PYTHON) bench/run.py $(BENCH_ARGS)

## bench-smoke: a seconds-long run of the harness, on a fresh node (test/bench/run_on_node.py)
bench-smoke: deps deps-test
	APT_BENCH="$(APT_BENCH)" $(REAP) $(PYTHON) test/bench/run_on_node.py

clean:
	rm -rf .kitchen .chef-local bin build
