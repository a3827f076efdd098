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
    # iproute2: `uwsgi-fleetctl summary` lists the node's addresses with `ip`;
    # python3-jsonschema: uwsgi-fleetctl checks the manifest against fleet.schema.json.
    # Each process manager adds its own (ProcessManager::*::PACKAGES).
    FLEET = %w(nginx uwsgi-core uwsgi-plugin-python3 python3 python3-jsonschema iproute2).freeze
    # The store app decodes br and zstd bodies through these (ctypes).
    STORE_APP = %w(python3 libbrotli1 libzstd1).freeze
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
