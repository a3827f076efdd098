#
# Cookbook:: uwsgi_fleet
# Library:: recipe_helpers
#
require 'etc'

module UwsgiFleet
  # Everything the web recipe computes, from validated attributes.
  class Plan
    attr_reader :web, :app, :ports

    # +attrs+ is node['uwsgi_fleet'] as a plain hash. Raises InvalidAttribute first.
    def initialize(attrs, cpus:, somaxconn:)
      Validation.validate!(attrs, somaxconn: somaxconn, cpus: cpus)
      @web = attrs['web']
      @app = attrs['app']
      @ports = Fleet.ports(web['base_port'], Fleet.instance_count(web['processes'], cpus))
    end

    def user
      web['user']
    end

    def nginx
      web['nginx']
    end

    def max_body_bytes
      Sizes.to_bytes(nginx['client_max_body_size'])
    end

    # One "host:port" per instance, in port order: the nginx upstream.
    def backends
      ports.map { |port| Fleet.host_port(web['bind_address'], port) }
    end

    # nginx directive for the balancing method (round robin is nginx's default: none).
    def balance_directive
      { 'least_conn' => 'least_conn;', 'random_two' => 'random two least_conn;',
        'ip_hash' => 'ip_hash;', 'round_robin' => nil }.fetch(nginx['balance'])
    end

    # nginx's own error answers, as [status, status sent, JSON body].
    def error_pages
      Nginx.error_pages
    end

    # The supervisor command of the instance on +port+.
    def command(port, fifo_dir:)
      env = { 'STORE_APP_INSTANCE' => port.to_s, 'STORE_APP_CONFIG' => StoreApp::CONFIG_PATH }
      cmd = UwsgiCommand.for_instance(web, port: port, fifo: File.join(fifo_dir, "#{port}.fifo"), env: env)
      UwsgiCommand.for_supervisor(cmd)
    end

    # What uwsgi-fleetctl and the tests read about the live fleet (no secrets).
    def manifest(fifo_dir:)
      { 'ports' => ports, 'bind_address' => web['bind_address'], 'threads' => web['threads'],
        'user' => user, 'fifo_dir' => fifo_dir, 'program_prefix' => Fleet::PROGRAM_PREFIX,
        'listen' => nginx['listen'], 'server_name' => nginx['server_name'],
        'spool_dir' => app['spool_dir'], 'store_app_config' => StoreApp::CONFIG_PATH }
    end
  end

  # Node facts the plan needs, read where recipes run.
  module RecipeHelpers
    # The node's CPU count (Ohai, else the running kernel).
    def uwsgi_fleet_cpus
      node['cpu'] && node['cpu']['total'] ? node['cpu']['total'].to_i : Etc.nprocessors
    end

    # net.core.somaxconn: the ceiling of any listen backlog.
    def uwsgi_fleet_somaxconn
      File.read('/proc/sys/net/core/somaxconn').to_i
    rescue SystemCallError
      4096
    end

    # The validated plan for this node's attributes (raises before anything converges).
    def uwsgi_fleet_plan
      @uwsgi_fleet_plan ||= Plan.new(node['uwsgi_fleet'].to_hash, cpus: uwsgi_fleet_cpus, somaxconn: uwsgi_fleet_somaxconn)
    end
  end
end

Chef::DSL::Recipe.include(UwsgiFleet::RecipeHelpers) if defined?(Chef::DSL::Recipe)
