#
# Cookbook:: uwsgi_fleet
# Library:: validation
#
# Every rule about a value, written once. The resources check all their
# properties here before they change anything, and report every bad one in a
# single message; the default recipe runs the same rules over its attributes
# and names them as attributes. The store app trusts the config Chef renders,
# so these rules exist nowhere else.
require 'ipaddr'

module UwsgiFleet
  # Raised with one line per bad value, naming it and its allowed values.
  class InvalidConfiguration < ArgumentError; end

  module Validation
    # One bad value: +path+ is the property and, for nested values, the keys
    # under it ([:projects, '1', 'public_key']).
    Error = Struct.new(:path, :rule, :value)

    # A rule for one value: what it must be (for the message) and the check.
    Rule = Struct.new(:allowed, :check) do
      def error(path, value)
        Error.new(Array(path), allowed.respond_to?(:call) ? allowed.call : allowed, value) unless check.call(value)
      end
    end

    BALANCE_METHODS = %w(least_conn round_robin random_two ip_hash).freeze
    # Fleet and app names end up in file, program, unit and upstream names.
    NAME = /\A[a-z][a-z0-9_]{0,30}\z/.freeze
    UPSTREAM = /\A[a-z][a-z0-9_]{0,62}\z/.freeze
    USER_NAME = /\A[a-z_][a-z0-9_-]{0,31}\z/.freeze
    PYTHON_MODULE = /\A[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?\z/.freeze
    ENV_NAME = /\A[A-Za-z_][A-Za-z0-9_]*\z/.freeze
    PROJECT_ID = /\A[1-9][0-9]{0,9}\z/.freeze
    PUBLIC_KEY = /\A[0-9a-f]{32}\z/.freeze
    # Characters that would end or escape an nginx directive. A regex that
    # nginx rejects still gets through here, and `nginx -t` stops it.
    SERVER_NAME = /\A[^\s;{}'"#\\]+( [^\s;{}'"#\\]+)*\z/.freeze
    # Up to 50: room for the default prefixes of the longest fleet name.
    PREFIX = /\A[a-z][a-z0-9_-]{0,49}\z/.freeze
    MAX_PORT = 65_535
    MIB = 1024**2
    # The longest a request may be told to wait in an instance's queue (ms).
    MAX_QUEUE_MS = 60_000

    module_function

    # -- building blocks ------------------------------------------------------

    def int(min, max)
      Rule.new("must be an integer from #{min} to #{max}", ->(v) { int_in?(v, min, max) })
    end

    def number(min, max)
      Rule.new("must be a number from #{min} to #{max}", ->(v) { v.is_a?(Numeric) && !v.is_a?(Complex) && v.between?(min, max) })
    end

    def one_of(values)
      Rule.new("must be one of #{values.join(', ')}", ->(v) { values.include?(v) })
    end

    # One of the process managers registered when the value is checked: a
    # wrapper cookbook's library may add one after this file is loaded.
    def process_manager
      Rule.new(-> { "must be one of #{ProcessManager.names.join(', ')}" }, ->(v) { ProcessManager.names.include?(v) })
    end

    def pattern(regex, allowed)
      Rule.new(allowed, ->(v) { v.is_a?(String) && regex.match?(v) })
    end

    def boolean
      Rule.new('must be true or false', ->(v) { [true, false].include?(v) })
    end

    def absolute_path
      Rule.new('must be an absolute path (no .. segments)', ->(v) { absolute_path?(v) })
    end

    # A directory root manages (creates, re-owns, deletes with the fleet): never / itself.
    def directory_path
      Rule.new('must be an absolute path other than / (no .. segments)', ->(v) { absolute_path?(v) && v.squeeze('/') != '/' })
    end

    # A file under /etc/nginx: its path goes into a verify command, where % would be a format.
    def nginx_path(allowed, suffix = '')
      Rule.new(allowed, ->(v) { absolute_path?(v) && v.start_with?('/etc/nginx/') && v.end_with?(suffix) && !v.include?('%') })
    end

    def optional(rule)
      Rule.new("#{rule.allowed}, or nil", ->(v) { v.nil? || rule.check.call(v) })
    end

    def int_in?(value, min, max)
      value.is_a?(Integer) && value.between?(min, max)
    end

    def absolute_path?(value)
      value.is_a?(String) && value.start_with?('/') && !value.include?("\0") && !value.match?(/\s/) &&
        !value.split('/').include?('..')
    end

    # IPAddr also takes CIDR ('127.0.0.1/8'), brackets and zone ids, which would
    # render broken sockets, so those are refused first.
    def plain_ip_address?(text)
      return false if !text.is_a?(String) || text.match?(%r{[/\[\]%]})
      IPAddr.new(text)
      true
    rescue IPAddr::Error
      false
    end

    # A string or number that fits on one line of a supervisor or unit file.
    def scalar?(value)
      value.is_a?(Numeric) || (value.is_a?(String) && !value.match?(/[[:cntrl:]]/))
    end

    # -- the rules ------------------------------------------------------------

    NGINX_SIZE = Rule.new("must be an nginx size from '1m' to '1g' (a Sentry event is up to 1 MB)",
                          ->(v) { (bytes = Sizes.to_bytes(v)) && bytes.between?(MIB, 1024**3) })
    # Fixed rules of uwsgi_fleet's properties; the ones that depend on the node
    # or on other properties are in fleet_errors.
    FLEET = {
      threads: int(1, 256),
      base_port: int(1024, MAX_PORT),
      bind_address: Rule.new('must be a plain IPv4 or IPv6 address such as 127.0.0.1 or ::1', ->(v) { plain_ip_address?(v) }),
      user: Rule.new('must be a system user name (lowercase, up to 32 characters) other than root',
                     ->(v) { v.is_a?(String) && USER_NAME.match?(v) && v != 'root' }),
      buffer_size: int(4096, 65_535),
      harakiri: int(1, 3600),
      process_manager: process_manager,
      store_app: optional(pattern(NAME, 'must be the name of a uwsgi_fleet_store_app')),
      app_module: optional(pattern(PYTHON_MODULE, 'must look like package.module or package.module:callable')),
      wsgi_file: optional(absolute_path),
      chdir: absolute_path,
      pythonpath: Rule.new('must be a list of absolute paths', ->(v) { v.is_a?(Array) && v.all? { |p| absolute_path?(p) } }),
      virtualenv: optional(absolute_path),
      env: Rule.new('must map NAME (a string of letters, digits, _) to a string (no control characters) or number',
                    ->(v) { v.is_a?(Hash) && v.all? { |k, x| k.is_a?(String) && ENV_NAME.match?(k) && scalar?(x) } }),
      listen: int(1, MAX_PORT),
      listen_address: optional(Rule.new('must be a plain IPv4 or IPv6 address', ->(v) { plain_ip_address?(v) })),
      server_name: pattern(SERVER_NAME, 'must be nginx server names separated by single spaces, without ; { } quotes, # or \\'),
      default_server: boolean,
      client_max_body_size: NGINX_SIZE,
      balance: one_of(BALANCE_METHODS),
      max_conns: Rule.new("must be 'auto' or an integer from 0 (no limit) to 65535", ->(v) { v == 'auto' || int_in?(v, 0, 65_535) }),
      burst_queue_ms: int(0, MAX_QUEUE_MS),
      sustained_queue_ms: int(0, MAX_QUEUE_MS),
      client_timeout: int(1, 300),
      remove_sites: Rule.new('must be a list of absolute paths under /etc/nginx (no .. or %)',
                             ->(v) { v.is_a?(Array) && v.all? { |p| nginx_path('').check.call(p) } }),
      nginx_main_config: Rule.new('must be the text of an nginx.conf, or nil', ->(v) { v.nil? || (v.is_a?(String) && !v.empty?) }),
      conf_dir: directory_path,
      fifo_dir: directory_path,
      log_dir: directory_path,
      instance_prefix: pattern(PREFIX, 'must be lowercase letters, digits, _ and -, starting with a letter (up to 50)'),
      upstream: pattern(UPSTREAM, 'must be lowercase letters, digits and _, starting with a letter (up to 63)'),
      site_file: nginx_path('must be an absolute path ending in .conf under /etc/nginx (no .. or %)', '.conf'),
    }.freeze

    SPECIFIC_ADDRESS = Rule.new('must be a plain IPv4 or IPv6 address of the node, not 0.0.0.0 or ::',
                                ->(v) { plain_ip_address?(v) && !IPAddr.new(v).to_i.zero? })
    REDIS_PASSWORD = Rule.new('must be 16-128 characters without spaces, quotes or backslashes',
                              ->(v) { v.is_a?(String) && v.match?(/\A[^\s'"\\]{16,128}\z/) })
    REDIS_URL = Rule.new('must be redis://<address>:<port>/<db> (IPv6 in brackets; the password is given apart), or nil',
                         ->(v) { v.nil? || (v.is_a?(String) && v.match?(%r{\Aredis://([^\s@/:\[\]]+|\[[0-9a-fA-F:.]+\])(:\d+)?/\d{1,2}\z})) })
    # Values never printed in a message.
    # (A Redis URL may carry a password too, against its rule.)
    SENSITIVE = %i(password redis_password redis_url quota_redis_url).freeze
    # What a message shows instead of a sensitive value.
    HIDDEN = Object.new.tap { |o| o.define_singleton_method(:inspect) { '[sensitive]' } }.freeze

    RATE_LIMIT = Rule.new("must be { 'events_per_second' => 0.001..1000000, 'burst' => 1..10000000 }",
                          lambda { |v|
                            v.is_a?(Hash) && v.keys.sort == %w(burst events_per_second) &&
                              number(0.001, 1_000_000).check.call(v['events_per_second']) && int_in?(v['burst'], 1, 10_000_000)
                          })
    STORE_APP = {
      user: FLEET[:user],
      spool_dir: directory_path,
      rate_limit: RATE_LIMIT,
      max_event_bytes: int(MIB, 20 * MIB),
      max_attachment_bytes: int(MIB, 1024 * MIB),
      max_body_size: NGINX_SIZE,
      max_envelope_size: optional(NGINX_SIZE),
      stream_maxlen: optional(Rule.new('must be an integer of at least 1', ->(v) { v.is_a?(Integer) && v >= 1 })),
      simulated_hops: int(0, 10),
      simulated_hop_ms: number(0, 1000),
      install_dir: directory_path,
      log_dir: directory_path,
      config_path: absolute_path,
      key_path: absolute_path,
      redis_url: REDIS_URL,
      quota_redis_url: REDIS_URL,
      redis_password: optional(REDIS_PASSWORD),
      quota_backend: one_of(%w(local redis)),
      forward_events: boolean,
      process_manager: process_manager,
    }.freeze

    BALANCER = {
      listen: int(1, MAX_PORT),
      listen_address: FLEET[:listen_address],
      server_name: FLEET[:server_name],
      default_server: boolean,
      balance: one_of(BALANCE_METHODS),
      client_max_body_size: NGINX_SIZE,
      client_timeout: int(1, 300),
      connect_timeout: int(1, 60),
      fail_timeout: int(1, 300),
      read_timeout: int(1, 3600),
      remove_sites: FLEET[:remove_sites],
      upstream: FLEET[:upstream],
      site_file: FLEET[:site_file],
    }.freeze

    REDIS = {
      bind_address: SPECIFIC_ADDRESS,
      port: int(1024, MAX_PORT),
      password: REDIS_PASSWORD,
      appendfsync: one_of(%w(always everysec)),
    }.freeze

    # Every error in a uwsgi_fleet's properties (+props+: property => value).
    # +cpus+ resolves processes 'auto'; +somaxconn+ caps the listen backlog;
    # +systemd+ says whether systemd is PID 1 on this node.
    # A fleet being deleted needs only its name: the node's manifest says the rest.
    def fleet_errors(props, cpus:, somaxconn:, systemd:, action: :create)
      return [name_error(props[:name])].compact if action == :delete

      errors = FLEET.map { |key, rule| rule.error(key, props[key]) }
      errors << name_error(props[:name])
      errors.concat(instance_errors(props, cpus))
      errors << int(1, somaxconn).error(:listen_backlog, props[:listen_backlog])
      errors.concat(body_buffer_errors(props))
      errors << queue_error(props)
      sources = props.values_at(:store_app, :app_module, :wsgi_file).compact
      errors << Error.new([:app_module], 'and wsgi_file (or a store_app): exactly one of them must be set',
                          props.slice(:store_app, :app_module, :wsgi_file).compact) unless sources.size == 1
      errors << process_manager_node_error(props[:process_manager], systemd)
      errors.compact
    end

    # What this node says about a process manager (systemd: it must be init).
    def process_manager_node_error(name, systemd)
      reason = ProcessManager.registered(name)&.node_error(systemd: systemd)
      Error.new([:process_manager], reason, name) if reason
    end

    # The sustained bound cannot exceed the burst one: it is what a request
    # may wait once the queue has not emptied for burst_queue_ms.
    def queue_error(props)
      burst, sustained = props.values_at(:burst_queue_ms, :sustained_queue_ms)
      return unless int_in?(burst, 0, MAX_QUEUE_MS) && int_in?(sustained, 0, MAX_QUEUE_MS) && sustained > burst
      Error.new([:sustained_queue_ms], "must not exceed burst_queue_ms (#{burst})", sustained)
    end

    def name_error(name)
      pattern(NAME, 'must be lowercase letters, digits and _, starting with a letter (up to 31)').error(:name, name)
    end

    # processes against the port range, and listen against the instance ports.
    def instance_errors(props, cpus)
      base = props[:base_port]
      max_count = MAX_PORT - (int_in?(base, 1024, MAX_PORT) ? base : 1024) + 1
      count = Fleet.instance_count(props[:processes], cpus)
      errors = []
      unless int_in?(count, 1, max_count)
        errors << Error.new([:processes], "must be 'auto' or an integer from 1 to #{max_count} " \
                                          "(instance ports start at base_port #{base} and may not pass #{MAX_PORT})", props[:processes])
        return errors
      end
      ports = int_in?(base, 1024, MAX_PORT) ? Fleet.ports(base, count) : []
      if ports.include?(props[:listen])
        errors << Error.new([:listen], "is #{props[:listen]}, a port already used by a uWSGI instance " \
                                       "(#{ports.first}..#{ports.last}); pick a port outside that range", props[:listen])
      end
      errors
    end

    # Every error in a uwsgi_fleet_store_app's properties.
    def store_app_errors(props, systemd: true)
      errors = STORE_APP.map { |key, rule| rule.error(key, props[key]) }
      errors << name_error(props[:name])
      errors.concat(redis_use_errors(props))
      errors << envelope_error(props)
      errors << process_manager_node_error(props[:process_manager], systemd) if props[:forward_events] == true
      projects = props[:projects]
      if projects.is_a?(Hash)
        projects.each { |id, project| errors.concat(project_errors(id, project)) }
      else
        errors << Error.new([:projects], "must map a project id to { 'public_key' => '<32 hex>' }", projects)
      end
      errors.compact
    end

    # A whole envelope holds at least one event: the app could never take an
    # event its envelope cap refuses.
    def envelope_error(props)
      event, size = props.values_at(:max_event_bytes, :max_envelope_size)
      # Unset: at least one event by its default (StoreApp.max_envelope_bytes); a bad value is reported by its own rule.
      return unless size && NGINX_SIZE.check.call(size) && STORE_APP[:max_event_bytes].check.call(event)
      Error.new([:max_envelope_size], "must be at least max_event_bytes (#{event})", size) if Sizes.to_bytes(size) < event
    end

    # The Redis settings depend on each other: a backend or a stream needs a URL and a password.
    def redis_use_errors(props)
      errors = []
      if props[:forward_events] == true && (props[:redis_url].nil? || props[:redis_password].nil?)
        errors << Error.new([:redis_url], 'and redis_password must be set when forward_events is true', props[:redis_url])
      end
      if props[:quota_backend] == 'redis' && (props[:quota_redis_url].nil? || props[:redis_password].nil?)
        errors << Error.new([:quota_redis_url], 'and redis_password must be set when quota_backend is redis', props[:quota_redis_url])
      end
      errors
    end

    # Every error in a uwsgi_fleet_balancer's properties.
    def balancer_errors(props, action: :create)
      return [name_error(props[:name])].compact if action == :delete
      errors = BALANCER.map { |key, rule| rule.error(key, props[key]) }
      errors << name_error(props[:name])
      backends = props[:backends]
      unless backends.is_a?(Array) && !backends.empty? && backends.all? { |b| backend?(b) }
        errors << Error.new([:backends], "must be a non-empty list of 'address:port' (no web node found?)", backends)
      end
      errors.concat(body_buffer_errors(props))
      errors.compact
    end

    # 'address:port' as nginx writes it: IPv6 in brackets, a port without leading zeros.
    def backend?(value)
      address, _, port = value.to_s.rpartition(':')
      ipv6 = address.start_with?('[') && address.end_with?(']')
      host = ipv6 ? address[1..-2] : address
      plain_ip_address?(host) && ipv6 == host.include?(':') && port.match?(/\A[1-9]\d*\z/) && int_in?(port.to_i, 1, MAX_PORT)
    end

    # Every error in a uwsgi_fleet_redis's properties.
    def redis_errors(props)
      errors = REDIS.map { |key, rule| rule.error(key, props[key]) } << name_error(props[:name])
      errors << Error.new([:quota_port], 'must be an integer from 1024 to 65535 other than port', props[:quota_port]) \
        unless int_in?(props[:quota_port], 1024, MAX_PORT) && props[:quota_port] != props[:port]
      errors.compact
    end

    def body_buffer_errors(props)
      buffer = Sizes.to_bytes(props[:client_body_buffer_size])
      return [] if buffer && buffer.between?(8 * 1024, Sizes.to_bytes(props[:client_max_body_size]) || 1024**3)
      [Error.new([:client_body_buffer_size], "must be an nginx size from '8k' to client_max_body_size", props[:client_body_buffer_size])]
    end

    def project_errors(id, project)
      errors = []
      errors << Error.new([:projects], "has project id #{id.inspect}; ids must be strings of digits (1 to 10 of them, no leading 0)", id) unless id.is_a?(String) && PROJECT_ID.match?(id)
      key = project.is_a?(Hash) ? project['public_key'] : nil
      errors << Error.new([:projects, id, 'public_key'], 'must be 32 lowercase hex characters, as Sentry keys are', key) unless key.is_a?(String) && PUBLIC_KEY.match?(key)
      errors << RATE_LIMIT.error([:projects, id, 'rate_limit'], project['rate_limit']) if project.is_a?(Hash) && project.key?('rate_limit')
      errors.compact
    end

    # Raises InvalidConfiguration listing +errors+, if any. +subject+ heads the
    # message; +namer+ turns an error's path into the name the operator set.
    def raise_if_any!(errors, subject:, namer:, noun: 'properties')
      return true if errors.empty?
      lines = errors.map { |e| "#{namer.call(e.path)} #{e.rule}; got #{(SENSITIVE.include?(e.path.first) ? HIDDEN : e.value).inspect}" }
      raise InvalidConfiguration, "#{subject}: invalid #{noun}, nothing was changed:\n  " + lines.join("\n  ")
    end

    # How a resource names a value: threads, projects['1']['public_key'].
    def property_name(path)
      first, *rest = path
      first.to_s + rest.map { |k| "['#{k}']" }.join
    end
  end
end
