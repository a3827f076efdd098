#
# Cookbook:: uwsgi_fleet
# Library:: search
#
module UwsgiFleet
  # What the recipes read from the nodes a Chef search returns (pure: the
  # recipes do the searching).
  module Search
    module_function

    # A query limited to +environment+: web nodes, Redis and balancer of one
    # environment never mix with another's.
    def in_environment(query, environment)
      "(#{query}) AND chef_environment:#{environment}"
    end

    # Where a web node's nginx serves: the address it names (listen_address),
    # else the node's own address, and its port. +attrs+ is the node's merged
    # attributes as search returns them.
    def backend(attrs)
      Net.host_port(address(attrs), value(attrs, 'uwsgi_fleet', 'web', 'nginx', 'listen') || 80)
    end

    # The web nodes' backends, sorted so that the balancer's file only changes
    # when the set of nodes does. A node with no address yet (its first run
    # failed before Ohai's data was saved) is left out.
    def backends(nodes)
      nodes.select { |n| address(n) }.map { |n| backend(n) }.uniq.sort
    end

    def address(attrs)
      value(attrs, 'uwsgi_fleet', 'web', 'nginx', 'listen_address') || value(attrs, 'ipaddress')
    end

    # redis://<address>:<port>/0 of the Redis node (uwsgi_fleet::redis).
    def redis_url(attrs, port_key = 'port')
      address = value(attrs, 'uwsgi_fleet', 'redis', 'bind_address')
      port = value(attrs, 'uwsgi_fleet', 'redis', port_key)
      unless address && port
        raise InvalidConfiguration, "uwsgi_fleet: the Redis node found has no bind_address or #{port_key} yet (has it converged?)"
      end
      "redis://#{Net.host_port(address, port)}/0"
    end

    # Its quota instance (no persistence).
    def quota_url(attrs)
      redis_url(attrs, 'quota_port')
    end

    # attrs[k1][k2]..., nil where a level is missing (a search result is a
    # Chef::Node, which answers [] but not dig).
    def value(attrs, *keys)
      keys.reduce(attrs) { |acc, elem| acc.nil? ? nil : acc[elem] }
    end
  end
end
