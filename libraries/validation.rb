#
# Cookbook:: uwsgi_fleet
# Library:: validation
#
# Every attribute is checked here, at compile time, before any resource
# converges: a bad value fails the run and the node keeps its old config.
require 'ipaddr'

module UwsgiFleet
  # Raised with one line per bad attribute, naming it and its allowed values.
  class InvalidAttribute < ArgumentError; end

  # Pure checks over the plain attribute hash node['uwsgi_fleet'].
  module Validation
    BALANCE_METHODS = %w(least_conn round_robin random_two ip_hash).freeze
    USER_NAME = /\A[a-z_][a-z0-9_-]{0,31}\z/.freeze
    PYTHON_MODULE = /\A[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?\z/.freeze
    ENV_NAME = /\A[A-Za-z_][A-Za-z0-9_]*\z/.freeze
    PROJECT_ID = /\A[1-9][0-9]{0,9}\z/.freeze
    PUBLIC_KEY = /\A[0-9a-f]{32}\z/.freeze
    # Characters that would end or escape an nginx directive. A regex that
    # nginx rejects still gets through here, and `nginx -t` stops it.
    SERVER_NAME = /\A[^\s;{}'"#\\]+( [^\s;{}'"#\\]+)*\z/.freeze
    MAX_PORT = 65_535

    module_function

    # Raises InvalidAttribute listing every bad value in +attrs+ (node['uwsgi_fleet']).
    # +somaxconn+ is the kernel's net.core.somaxconn, the listen backlog's ceiling.
    # +cpus+ resolves processes 'auto'.
    def validate!(attrs, somaxconn:, cpus:)
      web = attrs['web'] || {}
      instances = Fleet.instance_count(web['processes'], cpus)
      instances = 1 unless int_in?(instances, 1, MAX_PORT)
      errors = web_errors(web, somaxconn, cpus) + app_errors(attrs['app'] || {}, instances)
      return true if errors.empty?
      raise InvalidAttribute, "uwsgi_fleet: invalid attributes, nothing was changed:\n  " + errors.join("\n  ")
    end

    def web_errors(web, somaxconn, cpus)
      errors = []
      base = web['base_port']
      errors << int_error('web', 'base_port', base, 1024, MAX_PORT)
      max_count = MAX_PORT - (int_in?(base, 1024, MAX_PORT) ? base : 1024) + 1
      processes = web['processes']
      unless int_in?(Fleet.instance_count(processes, cpus), 1, max_count)
        errors << message('web', 'processes', "must be 'auto' or an integer from 1 to #{max_count} " \
                          "(instance ports start at base_port #{base} and may not pass #{MAX_PORT})", processes)
      end
      errors << int_error('web', 'threads', web['threads'], 1, 256)
      errors << int_error('web', 'listen_backlog', web['listen_backlog'], 1, somaxconn)
      errors << int_error('web', 'buffer_size', web['buffer_size'], 4096, 65_535)
      errors << int_error('web', 'harakiri', web['harakiri'], 1, 3600)
      errors << bind_address_error(web['bind_address'])
      unless web['user'].is_a?(String) && USER_NAME.match?(web['user']) && web['user'] != 'root'
        errors << message('web', 'user', 'must be a system user name (lowercase, up to 32 characters) other than root', web['user'])
      end
      errors.concat(app_source_errors(web['app'] || {}))
      errors.concat(nginx_errors(web['nginx'] || {}, web, cpus))
      errors.compact
    end

    def bind_address_error(address)
      return if plain_ip_address?(address.to_s)
      message('web', 'bind_address', 'must be a plain IPv4 or IPv6 address such as 127.0.0.1 or ::1', address)
    end

    # IPAddr also takes CIDR ('127.0.0.1/8'), brackets and zone ids, which would
    # render broken sockets, so those are refused first.
    def plain_ip_address?(text)
      return false if text.match?(%r{[/\[\]%]})
      IPAddr.new(text)
      true
    rescue IPAddr::Error
      false
    end

    def app_source_errors(app)
      errors = []
      mod = app['module']
      file = app['wsgi_file']
      if present?(mod) == present?(file)
        errors << message('web', 'app', 'must set exactly one of module and wsgi_file', 'module' => mod, 'wsgi_file' => file)
      end
      errors << message('web', 'app', 'module must look like package.module or package.module:callable', mod) if present?(mod) && !PYTHON_MODULE.match?(mod)
      errors << path_error(%w(app wsgi_file), file) if present?(file)
      errors << path_error(%w(app chdir), app['chdir'])
      errors << path_error(%w(app virtualenv), app['virtualenv']) unless app['virtualenv'].nil?
      pythonpath = app['pythonpath']
      unless pythonpath.is_a?(Array) && pythonpath.all? { |p| absolute_path?(p) }
        errors << message('web', %w(app pythonpath), 'must be a list of absolute paths', pythonpath)
      end
      env = app['env']
      unless env.is_a?(Hash) && env.all? { |k, v| ENV_NAME.match?(k.to_s) && scalar?(v) }
        errors << message('web', %w(app env), 'must map NAME (letters, digits, _) to a string (no control characters) or number', env)
      end
      errors
    end

    def nginx_errors(nginx, web, cpus)
      errors = []
      listen = nginx['listen']
      if !int_in?(listen, 1, MAX_PORT)
        errors << int_error(%w(web nginx), 'listen', listen, 1, MAX_PORT)
      elsif (ports = instance_ports(web, cpus)).include?(listen)
        errors << message(%w(web nginx), 'listen', "is #{listen}, a port already used by a uWSGI instance " \
                          "(#{ports.first}..#{ports.last}); pick a port outside that range", listen)
      end
      unless nginx['server_name'].is_a?(String) && SERVER_NAME.match?(nginx['server_name'])
        errors << message(%w(web nginx), 'server_name', 'must be nginx server names separated by single spaces, without ; { } quotes, # or \\', nginx['server_name'])
      end
      max_body = Sizes.to_bytes(nginx['client_max_body_size'])
      unless max_body && max_body.between?(1024**2, 1024**3)
        errors << message(%w(web nginx), 'client_max_body_size', "must be an nginx size from '1m' to '1g' (a Sentry event is up to 1 MB)", nginx['client_max_body_size'])
      end
      buffer = Sizes.to_bytes(nginx['client_body_buffer_size'])
      unless buffer && buffer.between?(8 * 1024, max_body || 1024**3)
        errors << message(%w(web nginx), 'client_body_buffer_size', "must be an nginx size from '8k' to client_max_body_size", nginx['client_body_buffer_size'])
      end
      errors << message(%w(web nginx), 'balance', "must be one of #{BALANCE_METHODS.join(', ')}", nginx['balance']) unless BALANCE_METHODS.include?(nginx['balance'])
      unless nginx['worker_processes'] == 'auto' || int_in?(nginx['worker_processes'], 1, 256)
        errors << message(%w(web nginx), 'worker_processes', "must be 'auto' or an integer from 1 to 256", nginx['worker_processes'])
      end
      errors << int_error(%w(web nginx), 'client_timeout', nginx['client_timeout'], 1, 300)
      errors
    end

    # +instances+: each instance enforces burst / instances, which must be at least 1.
    def app_errors(app, instances)
      errors = []
      projects = app['projects']
      if projects.is_a?(Hash)
        projects.each { |id, project| errors.concat(project_errors(id, project, instances)) }
      else
        errors << message('app', 'projects', "must map a project id to { 'public_key' => '<32 hex>' }", projects)
      end
      spool = app['spool_dir']
      errors << message('app', 'spool_dir', 'must be an absolute path other than /', spool) unless absolute_path?(spool) && spool != '/'
      errors.concat(rate_limit_errors(%w(rate_limit), app['rate_limit'], instances))
      errors << int_error('app', 'max_event_bytes', app['max_event_bytes'], 1024**2, 20 * 1024**2)
      errors << int_error('app', 'simulated_hops', app['simulated_hops'], 0, 10)
      hop_ms = app['simulated_hop_ms']
      errors << message('app', 'simulated_hop_ms', 'must be a number from 0 to 1000', hop_ms) unless hop_ms.is_a?(Numeric) && hop_ms.between?(0, 1000)
      errors.compact
    end

    def project_errors(id, project, instances)
      errors = []
      errors << message('app', %w(projects), "has project id #{id.inspect}; ids must be digits (1 to 10 of them, no leading 0)", id) unless PROJECT_ID.match?(id.to_s)
      key = project.is_a?(Hash) ? project['public_key'] : nil
      errors << message('app', ['projects', id.to_s, 'public_key'], 'must be 32 lowercase hex characters, as Sentry keys are', key) unless key.is_a?(String) && PUBLIC_KEY.match?(key)
      errors.concat(rate_limit_errors(['projects', id.to_s, 'rate_limit'], project['rate_limit'], instances)) if project.is_a?(Hash) && project.key?('rate_limit')
      errors
    end

    def rate_limit_errors(path, limit, instances)
      return [message('app', path, "must be { 'events_per_second' => n, 'burst' => n }", limit)] unless limit.is_a?(Hash)
      errors = []
      rate = limit['events_per_second']
      errors << message('app', path + ['events_per_second'], 'must be a number from 0.001 to 1000000', rate) unless rate.is_a?(Numeric) && rate.between?(0.001, 1_000_000)
      errors << int_error('app', path + ['burst'], limit['burst'], instances, 10_000_000)
      errors
    end

    # -- small pieces ---------------------------------------------------------

    # The instance ports, or [] while base_port or processes is itself invalid.
    def instance_ports(web, cpus)
      count = Fleet.instance_count(web['processes'], cpus)
      return [] unless int_in?(web['base_port'], 1024, MAX_PORT) && int_in?(count, 1, MAX_PORT)
      Fleet.ports(web['base_port'], count)
    end

    def int_in?(value, min, max)
      value.is_a?(Integer) && value.between?(min, max)
    end

    def int_error(section, key, value, min, max)
      return if int_in?(value, min, max)
      message(section, key, "must be an integer from #{min} to #{max}", value)
    end

    def path_error(keys, value)
      return if absolute_path?(value)
      message('web', keys, 'must be an absolute path', value)
    end

    def absolute_path?(value)
      value.is_a?(String) && value.start_with?('/') && !value.include?("\0") && !value.match?(/\s/)
    end

    def present?(value)
      !value.nil? && !value.to_s.empty?
    end

    # A string or number that fits on one line of a supervisor file.
    def scalar?(value)
      value.is_a?(Numeric) || (value.is_a?(String) && !value.match?(/[[:cntrl:]]/))
    end

    # "node['uwsgi_fleet']['web']['threads'] must be ...; got 0"
    def message(section, keys, rule, value)
      path = (Array(section) + Array(keys)).map { |k| "['#{k}']" }.join
      "node['uwsgi_fleet']#{path} #{rule}; got #{value.inspect}"
    end
  end
end
