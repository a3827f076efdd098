# uwsgi_fleet: `make converge` converges THIS machine; `make test` runs every test,
# converging only fresh test nodes (systemd-nspawn containers, test/nodes), never this host.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON      := /usr/bin/python3
BUNDLE_DIR  := /var/cache/uwsgi_fleet/bundle
APT_BUILD   := build-essential ruby-dev ruby-bundler pkg-config libffi-dev libyaml-dev libarchive13 git
APT_TEST    := python3-pytest python3-testinfra python3-yaml python3-sentry-sdk python3-matplotlib \
               iproute2 procps curl systemd-container debootstrap apt-cacher-ng iptables openssh-client \
               python3-brotli zstd chromium redis-server python3-redis
# What `make bench` needs beyond the converged node; the node smoke installs the same list.
APT_BENCH   := gunicorn python3-pytest python3-matplotlib procps
CHEF_CLIENT := $(CURDIR)/bin/chef-client
# Node processes outlive the commands that start them; this reaps them (see reaper.py).
REAP        := $(PYTHON) test/nodes/reaper.py
ATTRS       ?=
JSON_ATTRS  := $(if $(ATTRS),-j $(abspath $(ATTRS)))

export CHEF_LICENSE := accept-no-persist
export PYTHONDONTWRITEBYTECODE := 1
export DEBIAN_FRONTEND := noninteractive

.PHONY: converge test lane-suites lane-load deps deps-test lint unit chefspec nodes kitchen server-flow reliability cluster bench bench-smoke clean

## converge: install Chef from gems and converge this node with the default app
converge: deps
	@mkdir -p .chef-local/cookbooks && ln -sfn ../.. .chef-local/cookbooks/uwsgi_fleet
	$(CHEF_CLIENT) --local-mode --config .chef/local-mode.rb -o 'recipe[uwsgi_fleet::default]' $(JSON_ATTRS)
	@/usr/local/sbin/uwsgi-fleetctl summary

## test: cookstyle, unit tests (pytest + ChefSpec), the test nodes and the init-script path, kitchen
## suites, the chef-zero + knife flow, reliability under load, and a seconds-long smoke run of the
## benchmark harness. Every converge is on a fresh node (test/nodes), never on this host.
test: deps deps-test lint unit chefspec
	$(MAKE) --no-print-directory -j2 --output-sync=recurse lane-suites lane-load
	@echo "make test: all passed"

# The node tests in two lanes side by side (each lane's output is printed when it ends):
# the Kitchen suites, and the load-bearing ones. Nodes share one image and network.
lane-suites:
	$(MAKE) --no-print-directory -j1 nodes kitchen
lane-load:
	$(MAKE) --no-print-directory -j1 server-flow reliability cluster bench-smoke

deps:
	@dpkg -s $(APT_BUILD) >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $(APT_BUILD); }
	@bundle config set --local path $(BUNDLE_DIR) >/dev/null
	@bundle check >/dev/null 2>&1 || bundle install --jobs 2
	@test -x $(CHEF_CLIENT) || bundle binstubs chef-bin --path bin >/dev/null

deps-test:
	@dpkg -s $(APT_TEST) >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $(APT_TEST); }
	@test -d test/clients/node_modules/@sentry || (cd test/clients && npm ci --no-audit --no-fund --loglevel=error)

lint: deps
	bundle exec cookstyle --display-cop-names

unit: deps-test
	$(PYTHON) -m pytest -q test/unit/python

chefspec: deps
	bundle exec rspec --default-path test/unit/chefspec --pattern '**/*_spec.rb'

nodes: deps deps-test
	$(REAP) $(PYTHON) -m pytest -q test/nodes

kitchen: deps deps-test
	$(REAP) bundle exec kitchen test --concurrency=2 --destroy=always

server-flow: deps deps-test
	$(REAP) $(PYTHON) -m pytest -q test/server

reliability: deps deps-test
	$(REAP) $(PYTHON) -m pytest -q -rA test/reliability

## cluster: scale out on fresh nodes (balancer, web nodes, Redis) through chef-zero with real search
cluster: deps deps-test
	$(REAP) $(PYTHON) -m pytest -q -rA test/cluster

## bench: the node's topology against the alternatives (~13 min on 2 cores; BENCH_ARGS=--full for ~50)
bench: deps-test
	@dpkg -s $(APT_BENCH) >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $(APT_BENCH); }
	$(PYTHON) bench/run.py $(BENCH_ARGS)

## bench-smoke: a seconds-long run of the harness, on a fresh node (test/bench/run_on_node.py)
bench-smoke: deps deps-test
	APT_BENCH="$(APT_BENCH)" $(REAP) $(PYTHON) test/bench/run_on_node.py

clean:
	rm -rf .kitchen .chef-local bin build
