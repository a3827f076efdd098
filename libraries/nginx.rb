#
# Cookbook:: uwsgi_fleet
# Library:: nginx
#
require 'json'

module UwsgiFleet
  # nginx: the files a fleet changes, how the whole config is tested before
  # they go live, and what nginx answers by itself.
  module Nginx
    CONF = '/etc/nginx/nginx.conf'.freeze
    # The first line of the nginx.conf that release 0.1.0 owned; see LEGACY_MAIN_CONFIG.
    LEGACY_MARKER = '# Managed by Chef (uwsgi_fleet). Tested whole'.freeze

    # Debian 12's own nginx.conf (nginx-common 1.22.1, comments left out). An
    # upgrade from 0.1.0, whose nginx.conf held the fleet's upstream and server,
    # puts this back while that fleet moves to its own file in conf.d/.
    DEBIAN_MAIN_CONFIG = <<~CONF.freeze
      # Debian 12's nginx.conf, restored by uwsgi_fleet on upgrade from 0.1.0 (which owned this file).
      user www-data;
      worker_processes auto;
      pid /run/nginx.pid;
      error_log /var/log/nginx/error.log;
      include /etc/nginx/modules-enabled/*.conf;

      events {
          worker_connections 768;
      }

      http {
          sendfile on;
          tcp_nopush on;
          types_hash_max_size 2048;

          include /etc/nginx/mime.types;
          default_type application/octet-stream;

          ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; # Dropping SSLv3, ref: POODLE
          ssl_prefer_server_ciphers on;

          access_log /var/log/nginx/access.log;

          gzip on;

          include /etc/nginx/conf.d/*.conf;
          include /etc/nginx/sites-enabled/*;
      }
    CONF

    # Status => reason for the errors nginx produces without the app
    # (494: request header too large, sent to the client as 400).
    ERROR_REASONS = {
      400 => 'bad request',
      405 => 'method not allowed',
      408 => 'request timed out',
      411 => 'length required',
      413 => 'request body too large',
      414 => 'request URI too long',
      494 => 'request headers too large',
      500 => 'internal error',
      502 => 'no backend available',
      503 => 'service unavailable',
      504 => 'backend timed out',
    }.freeze

    # What nginx answers when it can give a request to no instance (every one
    # holds max_conns, or none is up): shed at once instead of queueing. 503,
    # as Relay answers when its queue is full: the node is out of capacity,
    # not the client over a quota (429), and monitoring counts it as the
    # server's. Retry-After and X-Sentry-Rate-Limits (no categories: all of
    # them) make SDKs pause: sentry-python and the JavaScript SDKs honour the
    # latter on any status, and the JavaScript SDKs Retry-After too.
    # The status, Retry-After and reason are the store app's data file (shed.json),
    # which protocol.py reads too: the app sheds on queue time with the same answer.
    # Read from the cookbook's files/ when the library loads (Chef syncs every
    # file of a cookbook before it loads libraries: no_lazy_load, true by default).
    def self.store_app_data(name)
      path = ::File.expand_path("../files/default/store_app/#{name}", __dir__)
      [path, JSON.parse(::File.read(path)).freeze]
    end

    SHED_FILE, SHED = store_app_data('shed.json')
    SHED_STATUS = SHED['status']
    SHED_RETRY_AFTER = SHED['retry_after']
    SHED_HEADERS = {
      'Retry-After' => SHED_RETRY_AFTER.to_s,
      'X-Sentry-Rate-Limits' => "#{SHED_RETRY_AFTER}::organization:#{SHED['reason']}",
      'X-Sentry-Error' => SHED['reason'],
    }.freeze

    # Relay's CORS policy, the store app's own data file (protocol.py reads it too):
    # nginx's own answers carry the same CORS headers as the app's, written once.
    CORS_FILE, CORS = store_app_data('cors.json')

    module_function

    # The CORS headers of every answer, as the store app sends them (protocol.CORS_HEADERS).
    def cors_headers
      { 'Access-Control-Allow-Origin' => CORS['allow_origin'], 'Access-Control-Expose-Headers' => CORS['expose_headers'].join(', ') }
    end

    # The listen directive's argument: every address (nil) or only +address+.
    def listen(address, port)
      address ? Net.host_port(address, port) : port.to_s
    end

    # The upstream's balancing directive (round robin is nginx's default: none).
    def balance_directive(balance)
      { 'least_conn' => 'least_conn;', 'random_two' => 'random two least_conn;',
        'ip_hash' => 'ip_hash;', 'round_robin' => nil }.fetch(balance)
    end

    # The shed answer's JSON body.
    def shed_body
      JSON.generate('error' => 'overloaded: no instance free, retry later', 'retry_after' => SHED_RETRY_AFTER)
    end

    # $upstream_addr holds the upstream's name, not an address, when nginx could
    # pick no server (documented for ngx_http_upstream_module): the shed case.
    def shed_condition(upstream)
      %($upstream_addr ~ "(^|, )#{upstream}$")
    end

    # The shed answer of the fleet whose upstream is +upstream+, for its 502
    # page: when to give it, with which status, headers (CORS first) and body.
    def shed_answer(upstream)
      { condition: shed_condition(upstream), status: SHED_STATUS, headers: cors_headers.merge(SHED_HEADERS), body: shed_body }
    end

    # `uwsgi-fleetctl nginx-test` for the whole config as a run leaves it:
    # +candidates+ ({live path => file with its new content}) in place, +removes+ gone.
    def test_command(fleetctl, candidates:, removes:)
      args = candidates.map { |dest, src| "--put #{dest}=#{src}" } + removes.map { |site| "--remove #{site}" }
      "#{fleetctl} nginx-test #{args.join(' ')}"
    end

    # True when /etc/nginx/nginx.conf is the one 0.1.0 rendered.
    def legacy_main_config?(path = CONF)
      ::File.exist?(path) && ::File.open(path, &:gets).to_s.start_with?(LEGACY_MARKER)
    end

    # [[status, status sent to the client, JSON body]] for the error_page directives.
    def error_pages
      ERROR_REASONS.map do |status, reason|
        sent = status == 494 ? 400 : status
        [status, sent, JSON.generate('error' => reason)]
      end
    end
  end
end
