#
# Cookbook:: uwsgi_fleet
# Library:: packages
#
module UwsgiFleet
  # The operator tool every fleet installs: the command, a launcher
  # (files/default/uwsgi-fleetctl), and its package (files/default/uwsgi_fleetctl/),
  # which the launcher imports from ../lib/uwsgi_fleet beside its own directory.
  module Tool
    FLEETCTL = '/usr/local/sbin/uwsgi-fleetctl'.freeze
    LIB = ::File.join(::File.dirname(::File.dirname(FLEETCTL)), 'lib', 'uwsgi_fleet').freeze
    PACKAGE = ::File.join(LIB, 'uwsgi_fleetctl').freeze
  end

  # The Debian packages a web node runs on.
  module Packages
    # uwsgi-fleetctl, wherever it is installed: it checks the manifest it reads
    # against fleet.schema.json.
    FLEETCTL = %w(python3 python3-jsonschema).freeze
    # iproute2: `uwsgi-fleetctl summary` lists the node's addresses with `ip`.
    # Each process manager adds its own (ProcessManager::*::PACKAGES).
    FLEET = (%w(nginx uwsgi-core uwsgi-plugin-python3 iproute2) + FLEETCTL).freeze
    # The store app decodes br and zstd bodies through these (ctypes), and checks
    # its config against config.schema.json.
    STORE_APP = %w(python3 python3-jsonschema libbrotli1 libzstd1).freeze
    APT_LISTS = '/var/lib/apt/lists'.freeze
    # How long a converge waits for another apt (unattended-upgrades on a fresh
    # image): `apt-get update` retried every 10 s for 5 min, the install
    # waiting as long for dpkg's lock.
    APT_RETRIES = 30
    APT_RETRY_DELAY = 10
    APT_LOCK_WAIT = "-o DPkg::Lock::Timeout=#{APT_RETRIES * APT_RETRY_DELAY}".freeze

    module_function

    # True when apt has no package lists at all, so nothing could be installed.
    def apt_lists_empty?(dir = APT_LISTS)
      Dir.glob(::File.join(dir, '*_Packages*')).empty?
    end
  end
end
