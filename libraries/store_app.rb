#
# Cookbook:: uwsgi_fleet
# Library:: store_app
#
require 'erb'
require 'securerandom'

module UwsgiFleet
  # The embedded Sentry store app (files/default/store_app): its config, and
  # what a fleet needs to run it.
  module StoreApp
    MODULE = 'store_app.wsgi:application'.freeze
    # Redis key prefixes; they must differ, or quota and stream keys would collide.
    QUOTA_PREFIX = 'uwsgi_fleet:quota:'.freeze
    STREAM_PREFIX = 'uwsgi_fleet:events:'.freeze
    DEFAULT_PROJECT_ID = '1'.freeze
    # The largest envelope, as received (nginx's client_max_body_size, the web fleet's and the
    # balancer's) and once decoded (the app's max_envelope_bytes): Relay's max_envelope_size
    # (100 MiB until 2025), and what Sentry's self-hosted nginx passes to Relay. Memory stays
    # bounded whatever the size: the app reads the body in chunks as it decodes it.
    MAX_BODY_SIZE = '100m'.freeze
    # One attachment item once decoded: sentry-java's and sentry-cocoa's own maxAttachmentSize
    # (the SDKs drop larger ones before sending). Over it the app drops the item, counts it
    # (invalid, too_large) and keeps the event that came with it; Relay would refuse the envelope.
    MAX_ATTACHMENT_BYTES = 20 * 1024**2
    # One event once decoded: Relay's max_event_size. The one default of it (the resource's
    # and the attribute's); the app has none (store_app.json always carries it).
    MAX_EVENT_BYTES = 1024**2
    # The rate limit of projects without their own (one bucket per project: who shares it,
    # documentation/uwsgi_fleet_store_app.md, "Rate limit").
    RATE_LIMIT = { 'events_per_second' => 1000, 'burst' => 2000 }.freeze
    # The version of the config this library writes (config.schema.json's config_version).
    CONFIG_VERSION = 1
    # The quota's Redis timeout, the forwarder's batch and how long it remembers an event id.
    QUOTA_TIMEOUT_MS = 50
    STREAM_BATCH = 100
    STREAM_DEDUP_SECONDS = 3600

    module_function

    # The key of the default project: the one already on the node, else a new random one.
    def default_project_key(path)
      existing = ::File.exist?(path) ? ::File.read(path).strip : ''
      existing.match?(Validation::PUBLIC_KEY) ? existing : SecureRandom.hex(16)
    end

    # Projects as configured, or project '1' with +default_key+ when none are.
    def projects(configured, default_key)
      return configured.to_h unless configured.to_h.empty?
      { DEFAULT_PROJECT_ID => { 'public_key' => default_key } }
    end

    # With a shared Redis, the quota's buckets live there and events are forwarded to it.
    def quota_backend(quota_redis_url)
      quota_redis_url ? 'redis' : 'local'
    end

    def forwarding?(redis_url)
      !redis_url.nil?
    end

    # The app's JSON config (+props+: the resource's validated properties):
    # exactly config.schema.json, every key written (the app has no defaults).
    # The app trusts the values: every one was checked by Validation.store_app_errors.
    def config(props, projects:)
      {
        'config_version' => CONFIG_VERSION,
        # A project's own limit, else the app's: validation gives every project one, so the
        # schema's null (no limit) is never written today.
        'projects' => projects.sort.to_h.transform_values do |project|
          { 'public_key' => project['public_key'], 'rate_limit' => (project['rate_limit'] || props[:rate_limit])&.to_h }
        end,
        'spool_dir' => props[:spool_dir],
        'quota' => quota(props),
        'stream' => stream(props),
        'max_body_bytes' => Sizes.to_bytes(props[:max_body_size]),
        'max_event_bytes' => props[:max_event_bytes],
        'max_envelope_bytes' => max_envelope_bytes(props),
        'max_attachment_bytes' => props[:max_attachment_bytes],
        'simulated_hops' => props[:simulated_hops],
        'simulated_hop_ms' => props[:simulated_hop_ms],
      }
    end

    # A whole envelope once decoded: max_envelope_size, else the body's size (so that an
    # identity envelope nginx lets through is never refused by the app), and never below
    # one event (an event the app takes always fits its envelope).
    def max_envelope_bytes(props)
      return Sizes.to_bytes(props[:max_envelope_size]) if props[:max_envelope_size]
      [Sizes.to_bytes(props[:max_body_size]), props[:max_event_bytes]].max
    end

    # Where the projects' buckets live (who shares them: documentation/uwsgi_fleet_store_app.md,
    # "Rate limit"); with Redis, the local file is the fallback while Redis does not answer.
    def quota(props)
      local = { 'backend' => 'local', 'state_file' => ::File.join(props[:spool_dir], '.quota') }
      return local unless props[:quota_backend] == 'redis'
      local.merge('backend' => 'redis', 'url' => with_password(props[:quota_redis_url], props), 'key_prefix' => QUOTA_PREFIX,
                  'timeout_ms' => QUOTA_TIMEOUT_MS)
    end

    # Where the forwarder moves accepted events: a Redis stream per project (null: none).
    def stream(props)
      return unless props[:forward_events]
      { 'url' => with_password(props[:redis_url], props), 'key_prefix' => STREAM_PREFIX, 'batch' => STREAM_BATCH,
        'status_file' => ::File.join(props[:spool_dir], '.forwarder-status.json'), 'dedup_seconds' => STREAM_DEDUP_SECONDS,
        # nil: the stream is not trimmed.
        'maxlen' => props[:stream_maxlen] }
    end

    # redis://:<password>@host:port/db (the config is 0640 root:<user>), the
    # password percent-encoded (the app's Redis client decodes it).
    def with_password(url, props)
      url.sub('redis://', "redis://:#{ERB::Util.url_encode(props[:redis_password])}@")
    end

    # The forwarder's arguments (the app's own module, with this app's config).
    def forwarder_args(props)
      ['/usr/bin/python3', '-m', 'store_app.forwarder', '--config', props[:config_path]]
    end

    # What a fleet sets to run the store app installed in +install_dir+ with
    # the config at +config_path+.
    def fleet_settings(install_dir:, config_path:)
      { app_module: MODULE, wsgi_file: nil, chdir: install_dir, pythonpath: [install_dir],
        env: { 'STORE_APP_CONFIG' => config_path } }
    end
  end
end
