#
# Cookbook:: uwsgi_fleet
# Library:: nginx
#
module UwsgiFleet
  # What nginx answers by itself, as JSON like the app's own errors.
  module Nginx
    CONF = '/etc/nginx/nginx.conf'.freeze
    # Sites this recipe removes: Debian's default one is a second default_server on :80.
    REMOVED_SITES = ['/etc/nginx/sites-enabled/default'].freeze

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

    module_function

    # The `verify` command for a candidate nginx.conf: the whole config as the run
    # leaves it (this file in place, REMOVED_SITES gone) must pass `nginx -t`.
    def test_command(fleetctl)
      removes = REMOVED_SITES.map { |site| "--remove #{site}" }.join(' ')
      "#{fleetctl} nginx-test --put #{CONF}=%{path} #{removes}"
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
