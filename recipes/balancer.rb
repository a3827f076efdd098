#
# Cookbook:: uwsgi_fleet
# Recipe:: balancer
#
# nginx in front of the web nodes a Chef search finds in this node's
# environment. A search that finds none fails the run with a clear message,
# before anything changes: the last good config stays live.
balancer = node['uwsgi_fleet']['balancer']
query = UwsgiFleet::Search.in_environment(balancer['search'], node.chef_environment)
web_nodes = search(:node, query)
raise UwsgiFleet::InvalidConfiguration, "uwsgi_fleet::balancer: the search #{query.inspect} found no web node; " \
                                        'the balancer keeps its last good config' if web_nodes.empty?

uwsgi_fleet_balancer 'default' do
  backends UwsgiFleet::Search.backends(web_nodes)
  listen balancer['listen']
  listen_address balancer['listen_address']
  remove_sites ['/etc/nginx/sites-enabled/default']
end
