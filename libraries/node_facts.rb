#
# Cookbook:: uwsgi_fleet
# Library:: node_facts
#
require 'etc'

module UwsgiFleet
  # What the resources need to know about the node they converge.
  module NodeFacts
    module_function

    # The node's CPU count (Ohai, else the running kernel): what processes 'auto' means.
    def cpus(node)
      node['cpu'] && node['cpu']['total'] ? node['cpu']['total'].to_i : Etc.nprocessors
    end

    # net.core.somaxconn: the ceiling of any listen backlog.
    def somaxconn(path = '/proc/sys/net/core/somaxconn')
      ::File.read(path).to_i
    rescue SystemCallError
      4096
    end

    # Whether systemd is this node's init (PID 1): process_manager 'systemd' needs it.
    def systemd?(path = '/proc/1/comm')
      ::File.read(path).strip == 'systemd'
    rescue SystemCallError
      false
    end
  end
end
