#
# Cookbook:: uwsgi_fleet
# Library:: fleet
#
# What a fleet is, computed once from its validated properties: how many
# instances ('auto' is resolved here and nowhere else), their ports, names
# and files, and the manifest every tool and test reads instead of repeating
# these rules.
require 'json'

module UwsgiFleet
  # Pure rules about instances and ports.
  module Fleet
    # max_conns 'auto', per thread: room for a burst of 4 x threads per instance
    # twice over (the app sheds on time queued below it: store_app/overload.py),
    # and few enough that nginx's connections (Debian's nginx.conf: 768 per
    # worker, clients and upstreams together) do not run out under overload.
    # With threads + listen_backlog (1032), a sustained overload beside other
    # load had nginx reset 196 client connections it could not take.
    CONNS_PER_THREAD = 8

    module_function

    # Requests nginx gives one instance at once (its max_conns; 0 = no limit).
    # 'auto': CONNS_PER_THREAD x threads, never more than the instance can hold
    # (one per thread and a full listen queue): past that the kernel would drop
    # nginx's connection attempt (a SYN retransmission, 1 s, before anything).
    def max_conns(value, threads, listen_backlog)
      value == 'auto' ? [CONNS_PER_THREAD * threads, threads + listen_backlog].min : value
    end

    # Number of instances: an Integer as given, or 'auto' = CPU count, at least 2.
    def instance_count(processes, cpus)
      processes == 'auto' ? [cpus.to_i, 2].max : processes
    end

    # The N backend ports: base_port .. base_port + N - 1.
    def ports(base_port, count)
      (base_port...(base_port + count)).to_a
    end

    # Where a fleet keeps its things, from its name: nothing is shared between
    # two fleets. Parents (/etc/uwsgi_fleet, ...) belong to root; each fleet
    # directory to the fleet's user where it must write.
    def named_defaults(name, process_manager)
      {
        conf_dir: "/etc/uwsgi_fleet/#{name}", fifo_dir: "/var/lib/uwsgi_fleet/#{name}",
        log_dir: "/var/log/uwsgi_fleet/#{name}", upstream: "uwsgi_fleet_#{name}",
        site_file: "/etc/nginx/conf.d/uwsgi_fleet_#{name}.conf",
        instance_prefix: ProcessManager.instance_prefix(name, process_manager)
      }
    end
  end

  # One fleet's converge plan: +props+ are the uwsgi_fleet resource's
  # properties (validated), with a store app's settings filled in
  # (StoreApp.fleet_settings) when the fleet runs one.
  class FleetPlan
    # Seconds nginx leaves out an instance that refused a connection (max_fails=1):
    # a rolling restart waits this long after one instance serves again before it
    # takes the next down, or nginx could find none to send a request to.
    FAIL_TIMEOUT = 2

    # The version of the manifest this plan writes (fleet.schema.json's manifest_version).
    MANIFEST_VERSION = 1

    attr_reader :name, :props, :ports, :process_manager

    def initialize(props, cpus:)
      @props = props
      @name = props[:name]
      @ports = Fleet.ports(props[:base_port], Fleet.instance_count(props[:processes], cpus))
      @process_manager = ProcessManager.for(props[:process_manager], instance_prefix: props[:instance_prefix])
    end

    def [](key)
      props.fetch(key)
    end

    def user
      props[:user]
    end

    def manifest_path
      ::File.join(props[:conf_dir], 'fleet.json')
    end

    def fifo(port)
      ::File.join(props[:fifo_dir], "#{port}.fifo")
    end

    def log(port)
      ::File.join(props[:log_dir], "#{port}.log")
    end

    def max_body_bytes
      Sizes.to_bytes(props[:client_max_body_size])
    end

    def max_conns
      Fleet.max_conns(props[:max_conns], props[:threads], props[:listen_backlog])
    end

    # What nginx tells each request's instance: how long a request may wait
    # in its queue during a burst, then during sustained overload (ms; the
    # store app sheds past it: store_app/overload.py). "0 0": never.
    def queue_ms
      "#{props[:burst_queue_ms]} #{props[:sustained_queue_ms]}"
    end

    # One "host:port" per instance, in port order: the nginx upstream.
    def backends
      ports.map { |port| Net.host_port(props[:bind_address], port) }
    end

    def balance_directive
      Nginx.balance_directive(props[:balance])
    end

    # What nginx listens on for this fleet: the port, on one address or all.
    def listen
      Nginx.listen(props[:listen_address], props[:listen])
    end

    # The uWSGI arguments of the instance on +port+ (a String port such as
    # "%i" stands for every instance of a systemd template unit).
    def uwsgi_args(port)
      env = props[:env].merge('UWSGI_FLEET_INSTANCE' => port.to_s, 'UWSGI_FLEET_MANIFEST' => manifest_path)
      UwsgiCommand.args(props, port: port, fifo: fifo(port), env: env)
    end

    # What uwsgi-fleetctl, the specs and the benchmark read about this fleet
    # (no secrets): exactly fleet.schema.json. Every derived fact is computed
    # here once, so no reader recomputes a rule.
    def manifest
      {
        'manifest_version' => MANIFEST_VERSION,
        'name' => name,
        'process_manager' => props[:process_manager],
        'process_manager_commands' => process_manager.commands,
        'ports' => ports,
        # Names and files of the instances, as formats with {port} (uwsgi-fleetctl fills them in).
        'instance_prefix' => props[:instance_prefix],
        'instance_name' => process_manager.instance_name('{port}'),
        'instance_file' => process_manager.instance_file('{port}'),
        'fifo' => fifo('{port}'),
        'log' => log('{port}'),
        'bind_address' => props[:bind_address],
        'threads' => props[:threads],
        'max_conns' => max_conns,
        'listen_backlog' => props[:listen_backlog],
        'burst_queue_ms' => props[:burst_queue_ms],
        'sustained_queue_ms' => props[:sustained_queue_ms],
        'user' => user,
        'fifo_dir' => props[:fifo_dir],
        'log_dir' => props[:log_dir],
        'upstream' => props[:upstream],
        'upstream_fail_timeout' => FAIL_TIMEOUT,
        'site_file' => props[:site_file],
        'listen' => props[:listen],
        'listen_address' => props[:listen_address],
        'server_name' => props[:server_name],
        'store_app_config' => props[:env]['STORE_APP_CONFIG'],
        'pythonpath' => props[:pythonpath],
      }
    end

    def manifest_json
      "#{JSON.pretty_generate(manifest)}\n"
    end
  end
end
