#
# Cookbook:: uwsgi_fleet
# Library:: net
#
module UwsgiFleet
  # Addresses as the configs write them. A leaf: it uses no other library, so
  # Fleet, Nginx, UwsgiCommand and Search can all use it without a cycle.
  module Net
    module_function

    # "host:port" as nginx, uWSGI and Redis URLs write it (IPv6 literals in brackets).
    def host_port(address, port)
      address.include?(':') ? "[#{address}]:#{port}" : "#{address}:#{port}"
    end
  end
end
