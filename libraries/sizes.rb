#
# Cookbook:: uwsgi_fleet
# Library:: sizes
#
module UwsgiFleet
  # nginx size strings ('512k', '2m', '1048576') to bytes.
  module Sizes
    PATTERN = /\A(\d+)([kKmMgG]?)\z/.freeze
    UNITS = { '' => 1, 'k' => 1024, 'm' => 1024**2, 'g' => 1024**3 }.freeze

    module_function

    # Bytes for an nginx size, or nil if it is not one.
    def to_bytes(size)
      match = PATTERN.match(size.to_s)
      match && match[1].to_i * UNITS[match[2].downcase]
    end
  end
end
