#
# Cookbook:: uwsgi_fleet
# Library:: nginx
#
module UwsgiFleet
  # What nginx answers by itself, as JSON like the app's own errors.
  module Nginx
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

    # [[status, status sent to the client, JSON body]] for the error_page directives.
    def error_pages
      ERROR_REASONS.map do |status, reason|
        sent = status == 494 ? 400 : status
        [status, sent, JSON.generate('error' => reason)]
      end
    end
  end
end
