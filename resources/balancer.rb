#
# Cookbook:: uwsgi_fleet
# Resource:: uwsgi_fleet_balancer
#
# nginx on a node of its own in front of the web nodes (each one's nginx, on
# the address it exposes). uwsgi_fleet::balancer finds the backends with a
# Chef search; the resource takes them as given.
unified_mode true
provides :uwsgi_fleet_balancer
default_action :create

use 'partial/_chef_property_checks_off'
use 'partial/_packages'
use 'partial/_nginx_site'

description 'nginx balancing over the web nodes (their nginx), as Sentry runs many web nodes behind a load balancer'

property :backends, Array, default: [],
                           description: "The web nodes, as 'address:port' (their nginx); never empty"
property :listen, Integer, default: 80,
                           description: 'The port the balancer serves on'
property :listen_address, [String, nil],
                                         description: 'The address it serves on; nil: every address of the node'
property :server_name, String, default: '_',
                               description: "nginx server names, space separated (no ; { } ' \" # \\)"
property :default_server, [true, false], default: true,
                                         description: "Whether this is nginx's default server on its port"
property :balance, String, default: 'least_conn',
                           description: 'least_conn, round_robin, random_two or ip_hash'
property :client_max_body_size, String, default: UwsgiFleet::StoreApp::MAX_BODY_SIZE,
                                        description: "Largest request body, an nginx size from '1m' to '1g': at least the web nodes' (100m)"
property :client_body_buffer_size, String, default: '1m',
                                           description: "Bodies up to this size stay in memory: an nginx size from '8k' to client_max_body_size"
property :client_timeout, Integer, default: 10,
                                   description: 'Seconds of client silence before nginx cuts it off: 1-300'
property :connect_timeout, Integer, default: 1,
                                    description: 'Seconds to connect to a web node before the request goes to the next one: 1-60'
property :fail_timeout, Integer, default: 5,
                                 description: 'Seconds a web node that failed a connect is left out: 1-300'
property :read_timeout, Integer, default: 70,
                                 description: "Seconds to wait for a web node's answer: 1-3600 (above the web nodes' harakiri)"
property :remove_sites, Array, default: [],
                               description: 'nginx files this balancer replaces (e.g. Debian\'s default site), removed with its own'
property :upstream, String, default: lazy { |r| "uwsgi_fleet_balancer_#{r.name}" },
                            description: "The nginx upstream's name: uwsgi_fleet_balancer_<name>"
property :site_file, String, default: lazy { |r| "/etc/nginx/conf.d/uwsgi_fleet_balancer_#{r.name}.conf" },
                             description: "The balancer's nginx file: /etc/nginx/conf.d/uwsgi_fleet_balancer_<name>.conf"

def after_created
  super
  errors = UwsgiFleet::Validation.balancer_errors(uwsgi_fleet_properties.merge(name: name), action: Array(action).first)
  UwsgiFleet::Validation.raise_if_any!(errors, subject: to_s, namer: UwsgiFleet::Validation.method(:property_name))
end

action_class do
  def site_source
    'balancer_site.conf.erb'
  end

  def site_variables
    props = new_resource.uwsgi_fleet_properties
    props.merge(name: new_resource.name, listen: UwsgiFleet::Nginx.listen(props[:listen_address], props[:listen]),
                balance_directive: UwsgiFleet::Nginx.balance_directive(props[:balance]))
  end
end

action :create do
  install_packages(%w(nginx) + UwsgiFleet::Packages::FLEETCTL)
  install_fleetctl
  test_nginx_candidate
  nginx_go_live
end

action :delete do
  nginx_remove_site
end
