#
# Cookbook:: uwsgi_fleet
# Library:: store_app
#
require 'securerandom'

module UwsgiFleet
  # Settings of the embedded Sentry store app (files/default/store_app).
  module StoreApp
    CONFIG_PATH = '/etc/uwsgi_fleet/store_app.json'.freeze
    DEFAULT_KEY_PATH = '/etc/uwsgi_fleet/default_project.key'.freeze
    DEFAULT_PROJECT_ID = '1'.freeze

    module_function

    # The key of the default project: the one already on the node, else a new random one.
    def default_project_key(path = DEFAULT_KEY_PATH)
      existing = File.exist?(path) ? File.read(path).strip : ''
      existing.match?(Validation::PUBLIC_KEY) ? existing : SecureRandom.hex(16)
    end

    # Projects as configured, or project '1' with +default_key+ when none are.
    def projects(configured, default_key)
      return configured.to_h unless configured.to_h.empty?
      { DEFAULT_PROJECT_ID => { 'public_key' => default_key } }
    end

    # The app's JSON config. Each instance enforces rate_limit / instances, since
    # the instances share no memory.
    def config(app, projects:, instances:, max_body_bytes:)
      {
        'projects' => projects.sort.to_h.transform_values do |project|
          { 'public_key' => project['public_key'], 'rate_limit' => (project['rate_limit'] || app['rate_limit']).to_h }
        end,
        'spool_dir' => app['spool_dir'],
        'max_body_bytes' => max_body_bytes,
        'max_event_bytes' => app['max_event_bytes'],
        'simulated_hops' => app['simulated_hops'],
        'simulated_hop_ms' => app['simulated_hop_ms'],
        'instances' => instances,
      }
    end
  end
end
