#
# Cookbook:: uwsgi_fleet
# Recipe:: web
#
# The attribute interface of 0.1.0, kept for existing users: node['uwsgi_fleet']
# becomes one uwsgi_fleet_store_app and one uwsgi_fleet, both named 'default',
# with 0.1.0's attributes, paths and program names. New cookbooks declare the
# resources themselves (documentation/uwsgi_fleet.md).
attrs = node['uwsgi_fleet'].to_hash

# A shared Redis (scaled out): found by Chef search in this environment (its
# events instance and its quota instance), or named; its password from a data
# bag item.
redis = {}
if (query = attrs.dig('app', 'redis', 'search'))
  query = UwsgiFleet::Search.in_environment(query, node.chef_environment)
  found = search(:node, query)
  raise UwsgiFleet::InvalidConfiguration, "uwsgi_fleet: the Redis search #{query.inspect} found #{found.size} nodes; " \
                                          'it must find exactly one' unless found.size == 1
  redis[:url] = UwsgiFleet::Search.redis_url(found.first)
  redis[:quota_url] = UwsgiFleet::Search.quota_url(found.first)
end
if redis[:url] || attrs.dig('app', 'redis', 'url') || attrs.dig('app', 'redis', 'quota_url')
  redis[:password] = data_bag_item(attrs['redis']['data_bag'], attrs['redis']['data_bag_item'])['password']
end

# A web node with no Redis keeps a quota of its own and forwards nothing, which
# is quiet: when a node with the Redis role is in this environment, the web
# role most likely lacks ['app']['redis']['search']. Say so. (Local mode
# without such nodes, or ['redis']['role_name'] nil: nothing to find, nothing said.)
redis_role = attrs.dig('redis', 'role_name')
if redis_role && attrs['app']['redis'].values_at('search', 'url', 'quota_url').none?
  query = UwsgiFleet::Search.in_environment("role:#{redis_role}", node.chef_environment)
  unused = search(:node, query).map(&:name).sort
  unless unused.empty?
    Chef::Log.warn("uwsgi_fleet: this web node uses no Redis, but #{unused.join(', ')} has the role #{redis_role}: " \
                   'its quota stays per node and no forwarder runs; set ' \
                   "node['uwsgi_fleet']['app']['redis']['search'] to 'role:#{redis_role}'")
  end
end

# Every attribute first, named as the operator set it: a bad one fails here,
# before anything on the node changes.
UwsgiFleet::Attributes.validate!(attrs, cpus: UwsgiFleet::NodeFacts.cpus(node),
                                        somaxconn: UwsgiFleet::NodeFacts.somaxconn,
                                        systemd: UwsgiFleet::NodeFacts.systemd?, redis: redis)

if attrs.dig('web', 'nginx', 'worker_processes') != 'auto'
  Chef::Log.warn("uwsgi_fleet: node['uwsgi_fleet']['web']['nginx']['worker_processes'] is no longer applied: " \
                 "nginx.conf is the distribution's (set worker_processes there)")
end

uwsgi_fleet_store_app UwsgiFleet::Attributes::NAME do
  UwsgiFleet::Attributes.store_app_properties(attrs, redis).except(:name).each { |key, value| send(key, value) }
  # New code or config: one instance's worker at a time reloads.
  notifies :reload, "uwsgi_fleet[#{UwsgiFleet::Attributes::NAME}]", :delayed
end

uwsgi_fleet UwsgiFleet::Attributes::NAME do
  UwsgiFleet::Attributes.fleet_properties(attrs).except(:name).each { |key, value| send(key, value) }
  # Upgrading from 0.1.0, whose nginx.conf held this fleet's upstream and
  # server: Debian's nginx.conf comes back, tested with the fleet's new file.
  nginx_main_config UwsgiFleet::Nginx::DEBIAN_MAIN_CONFIG if UwsgiFleet::Nginx.legacy_main_config?
end
