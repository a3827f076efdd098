#
# Cookbook:: uwsgi_fleet
# Library:: attributes
#
module UwsgiFleet
  # The default recipe's interface (node['uwsgi_fleet'], as in 0.1.0) mapped
  # onto the properties of one uwsgi_fleet_store_app and one uwsgi_fleet. The
  # same table names a bad value by the attribute the operator set.
  module Attributes
    FLEET = {
      processes: %w(web processes), threads: %w(web threads), base_port: %w(web base_port),
      bind_address: %w(web bind_address), user: %w(web user), listen_backlog: %w(web listen_backlog),
      buffer_size: %w(web buffer_size), harakiri: %w(web harakiri), process_manager: %w(web process_manager),
      app_module: %w(web app module), wsgi_file: %w(web app wsgi_file), chdir: %w(web app chdir),
      pythonpath: %w(web app pythonpath), virtualenv: %w(web app virtualenv), env: %w(web app env),
      listen: %w(web nginx listen), listen_address: %w(web nginx listen_address), server_name: %w(web nginx server_name),
      client_max_body_size: %w(web nginx client_max_body_size),
      client_body_buffer_size: %w(web nginx client_body_buffer_size), balance: %w(web nginx balance),
      max_conns: %w(web nginx max_conns), burst_queue_ms: %w(web nginx burst_queue_ms),
      sustained_queue_ms: %w(web nginx sustained_queue_ms),
      client_timeout: %w(web nginx client_timeout)
    }.freeze
    STORE_APP = {
      user: %w(web user), projects: %w(app projects), spool_dir: %w(app spool_dir),
      rate_limit: %w(app rate_limit), max_event_bytes: %w(app max_event_bytes), max_attachment_bytes: %w(app max_attachment_bytes),
      max_body_size: %w(web nginx client_max_body_size), max_envelope_size: %w(app max_envelope_size),
      stream_maxlen: %w(app stream_maxlen), simulated_hops: %w(app simulated_hops),
      simulated_hop_ms: %w(app simulated_hop_ms), redis_url: %w(app redis url), quota_redis_url: %w(app redis quota_url),
      process_manager: %w(web process_manager)
    }.freeze

    # Where 0.1.0 kept things: the default recipe keeps them there.
    NAME = 'default'.freeze
    LEGACY_STORE_APP = {
      name: NAME, install_dir: '/opt/uwsgi_fleet', config_path: '/etc/uwsgi_fleet/store_app.json',
      key_path: '/etc/uwsgi_fleet/default_project.key', log_dir: '/var/log/uwsgi_fleet/store_app_default'
    }.freeze
    LEGACY_FLEET = {
      name: NAME, conf_dir: '/etc/uwsgi_fleet', upstream: 'uwsgi_fleet',
      # This fleet is the default server on :80, as Debian's default site is.
      default_server: true, remove_sites: ['/etc/nginx/sites-enabled/default']
    }.freeze

    module_function

    # {property => value} from node['uwsgi_fleet'] (+attrs+, a plain Hash).
    def properties(map, attrs)
      map.transform_values { |path| attrs.dig(*path) }
    end

    # +redis+: { url:, password: } of the shared Redis the recipe found, if any.
    # +redis+: { url:, quota_url:, password: } of the shared Redis the recipe found, if any.
    def store_app_properties(attrs, redis = {})
      url = redis[:url] || attrs.dig('app', 'redis', 'url')
      quota_url = (redis[:quota_url] || attrs.dig('app', 'redis', 'quota_url') || url if attrs.dig('app', 'redis', 'quota') != false)
      properties(STORE_APP, attrs).merge(LEGACY_STORE_APP).merge(
        redis_url: url, quota_redis_url: quota_url, redis_password: redis[:password],
        quota_backend: StoreApp.quota_backend(quota_url), forward_events: StoreApp.forwarding?(url)
      )
    end

    # The fleet runs the app named by web.app, with the store app's config in its environment.
    def fleet_properties(attrs)
      props = properties(FLEET, attrs).merge(LEGACY_FLEET)
      # Under 0.1.0's process manager, 0.1.0's program names (uwsgi_fleet_<port>).
      legacy = LegacyManifest::DEFAULTS_0_1_0
      props[:instance_prefix] = legacy['program_prefix'] if props[:process_manager] == legacy['process_manager']
      # Anything but a Hash is left as it is, for the env rule to report.
      props[:env] = { 'STORE_APP_CONFIG' => LEGACY_STORE_APP[:config_path] }.merge(props[:env]) if props[:env].is_a?(Hash)
      props[:wsgi_file] = nil if props[:wsgi_file].to_s.empty?
      props[:app_module] = nil if props[:wsgi_file]
      props
    end

    # Values the recipe takes from elsewhere than an attribute.
    LABELS = { redis_password: "the 'password' of the data bag item named by node['uwsgi_fleet']['redis']" }.freeze

    # "node['uwsgi_fleet']['web']['threads']" for an error about the threads property.
    def namer(map)
      lambda do |path|
        property, *rest = path
        next LABELS[property] if LABELS.key?(property)
        keys = map.fetch(property, [property.to_s]) + rest
        "node['uwsgi_fleet']" + keys.map { |k| "['#{k}']" }.join
      end
    end

    # Raises InvalidConfiguration naming every bad attribute, before anything changes.
    def validate!(attrs, cpus:, somaxconn:, systemd:, redis: {})
      fleet = Fleet.named_defaults(NAME, attrs.dig('web', 'process_manager')).merge(fleet_properties(attrs))
      store = Validation.store_app_errors(store_app_properties(attrs, redis), systemd: systemd)
      # Without its own attribute the quota's URL is the url's: its errors are the url's, reported there.
      store.reject! { |e| e.path.first == :quota_redis_url } if redis[:quota_url].nil? && attrs.dig('app', 'redis', 'quota_url').nil?
      errors = Validation.fleet_errors(fleet, cpus: cpus, somaxconn: somaxconn, systemd: systemd).map { |e| named(e, FLEET) } +
               store.map { |e| named(e, STORE_APP) }
      quota = attrs.dig('app', 'redis', 'quota')
      errors << Validation::Error.new(["node['uwsgi_fleet']['app']['redis']['quota']"], 'must be true or false', quota) unless [true, false].include?(quota)
      Validation.raise_if_any!(errors.uniq { |e| [e.path, e.rule] }, subject: 'uwsgi_fleet', namer: :first.to_proc, noun: 'attributes')
    end

    # The error with its path turned into the attribute's name (sensitive values stay hidden).
    def named(error, map)
      value = Validation::SENSITIVE.include?(error.path.first) ? Validation::HIDDEN : error.value
      Validation::Error.new([namer(map).call(error.path)], error.rule, value)
    end
  end
end
