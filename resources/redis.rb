#
# Cookbook:: uwsgi_fleet
# Resource:: uwsgi_fleet_redis
#
# The Redis the web nodes share: one quota per project for the whole fleet,
# and a stream of accepted events per project. On a node of its own, on a
# private address only, with a password, fsyncing every write.
unified_mode true
provides :uwsgi_fleet_redis
default_action :create

use 'partial/_validated'
use 'partial/_packages'

description "Redis for the fleet's shared quota and event streams (Debian's redis-server)"

property :bind_address, [String, nil], default: nil,
         description: 'The private address Redis listens on, and only there (required; not 0.0.0.0 or ::)'
property :port, Integer, default: 6379,
         description: 'Its port: 1024-65535'
property :password, [String, nil], default: nil, sensitive: true,
         description: 'requirepass (required): 16-128 characters, no spaces or quotes; keep it in a data bag'
property :appendfsync, String, default: 'always',
         description: "AOF fsync policy: 'always' (an acknowledged event survives a crash or power cut) or 'everysec'"

def after_created
  super
  errors = UwsgiFleet::Validation.redis_errors(uwsgi_fleet_properties.merge(name: name))
  UwsgiFleet::Validation.raise_if_any!(errors, subject: to_s, namer: UwsgiFleet::Validation.method(:property_name))
end

action :create do
  install_packages(%w(redis-server))
  props = new_resource.uwsgi_fleet_properties.merge(name: new_resource.name)
  template '/etc/redis/redis.conf' do
    cookbook 'uwsgi_fleet'
    source 'redis.conf.erb'
    owner 'redis'
    group 'redis'
    mode '0640'
    sensitive true
    variables(props)
    notifies :restart, 'service[redis-server]', :immediately
  end
  service 'redis-server' do
    action [:enable, :start]
  end
end
