#
# Cookbook:: uwsgi_fleet
# Resource:: uwsgi_fleet_redis
#
# The Redis the web nodes share, as two instances on one node, on a private
# address only, with a password: the event streams (fsyncing every write) and
# the fleet's quota (no persistence: a rate-limit bucket is not worth an fsync
# per request).
unified_mode true
provides :uwsgi_fleet_redis
default_action :create

use 'partial/_chef_property_checks_off'
use 'partial/_packages'

description "Redis for the fleet's shared quota and event streams (Debian's redis-server)"

property :bind_address, [String, nil],
                                       description: 'The private address Redis listens on, and only there (required; not 0.0.0.0 or ::)'
property :port, Integer, default: 6379,
                         description: 'Its port: 1024-65535'
property :password, [String, nil], sensitive: true,
                                   description: 'requirepass (required): 16-128 characters, no spaces or quotes; keep it in a data bag'
property :appendfsync, String, default: 'always',
                               description: "The streams' AOF fsync policy: 'always' (an acknowledged event survives a crash or power cut) or 'everysec'"
property :quota_port, Integer, default: lazy { |r| r.port + 1 if r.port.is_a?(Integer) },
                               description: 'The port of the quota instance (redis-server@quota, no persistence): 1024-65535, not port'

# The two instances: [systemd unit, config file, pidfile, persistent].
INSTANCES = {
  'events' => ['redis-server', '/etc/redis/redis.conf', '/run/redis/redis-server.pid', true],
  'quota' => ['redis-server@quota', '/etc/redis/redis-quota.conf', '/run/redis-quota/redis-server.pid', false],
}.freeze

def after_created
  super
  errors = UwsgiFleet::Validation.redis_errors(uwsgi_fleet_properties.merge(name: name))
  UwsgiFleet::Validation.raise_if_any!(errors, subject: to_s, namer: UwsgiFleet::Validation.method(:property_name))
end

action :create do
  install_packages(%w(redis-server))
  props = new_resource.uwsgi_fleet_properties.merge(name: new_resource.name)
  INSTANCES.each do |instance, (unit, conf, pidfile, persistent)|
    template conf do
      cookbook 'uwsgi_fleet'
      source 'redis.conf.erb'
      owner 'redis'
      group 'redis'
      mode '0640'
      sensitive true
      variables(props.merge(instance: instance, pidfile: pidfile, persistent: persistent,
                            port: persistent ? props[:port] : props[:quota_port],
                            role: persistent ? 'the event streams' : "the fleet's quota"))
      notifies :restart, "service[#{unit}]", :immediately
    end
    service unit do
      action [:enable, :start]
    end
  end
end
