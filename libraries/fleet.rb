#
# Cookbook:: uwsgi_fleet
# Library:: fleet
#
# Pure helpers: how many instances, which ports, what each one is called.
module UwsgiFleet
  # Where supervisor program files live and how instances are named.
  module Fleet
    SUPERVISOR_CONF_DIR = '/etc/supervisor/conf.d'.freeze
    PROGRAM_PREFIX = 'uwsgi_fleet_'.freeze

    module_function

    # Number of instances: an Integer as given, or 'auto' = CPU count, at least 2.
    def instance_count(processes, cpus)
      processes == 'auto' ? [cpus.to_i, 2].max : processes
    end

    # The N backend ports: base_port .. base_port + N - 1.
    def ports(base_port, count)
      (base_port...(base_port + count)).to_a
    end

    # Supervisor program name of the instance on +port+ (no space, ':' or '/').
    def program_name(port)
      "#{PROGRAM_PREFIX}#{port}"
    end

    # Supervisor config file of the instance on +port+.
    def program_conf(port, conf_dir = SUPERVISOR_CONF_DIR)
      File.join(conf_dir, "#{program_name(port)}.conf")
    end

    # Ports of instance files present in +conf_files+ but no longer wanted.
    def stale_ports(conf_files, wanted_ports)
      present = conf_files.map { |f| File.basename(f)[/\A#{PROGRAM_PREFIX}(\d+)\.conf\z/o, 1] }
      present.compact.map(&:to_i).sort - wanted_ports
    end

    # "host:port" as nginx and uWSGI write it (IPv6 literals in brackets).
    def host_port(address, port)
      address.include?(':') ? "[#{address}]:#{port}" : "#{address}:#{port}"
    end
  end
end
