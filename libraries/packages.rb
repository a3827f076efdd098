#
# Cookbook:: uwsgi_fleet
# Library:: packages
#
module UwsgiFleet
  # The Debian packages a web node runs on.
  module Packages
    # iproute2: `uwsgi-fleetctl summary` lists the node's addresses with `ip`.
    # libbrotli1, libzstd1: the store app decodes br and zstd bodies through them (ctypes).
    NAMES = %w(nginx supervisor uwsgi-core uwsgi-plugin-python3 python3 iproute2 libbrotli1 libzstd1).freeze
    APT_LISTS = '/var/lib/apt/lists'.freeze

    module_function

    # True when apt has no package lists at all, so nothing could be installed.
    def apt_lists_empty?(dir = APT_LISTS)
      Dir.glob(::File.join(dir, '*_Packages*')).empty?
    end
  end
end
