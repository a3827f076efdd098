#
# Cookbook:: uwsgi_fleet
# Resource:: uwsgi_fleet_store_app
#
# The embedded Sentry-compatible store app: its code, its config and its
# spool. A uwsgi_fleet runs it (store_app property), or any other WSGI app.
unified_mode true
provides :uwsgi_fleet_store_app
default_action :create

use 'partial/_chef_property_checks_off'
use 'partial/_packages'
use 'partial/_safe_directories'

description 'The embedded Sentry-compatible store endpoint: code, config (projects, keys, limits) and spool'

property :projects, Hash, default: {},
                          description: "{ '<digits>' => { 'public_key' => '<32 hex>', 'rate_limit' => {...} } }; empty: project 1 with a random key, kept in key_path"
property :spool_dir, String, default: lazy { |r| "/var/spool/uwsgi_fleet/#{r.name}" },
                             description: 'One JSON file per accepted event, under <spool_dir>/<project id>/ (absolute path, not /)'
property :rate_limit, Hash, default: UwsgiFleet::StoreApp::RATE_LIMIT,
                            description: "Rate limit of projects without their own: { 'events_per_second' => 0.001-1000000, 'burst' => 1-10000000 }, " \
                                                 'one bucket per project, whose sharing quota_backend sets'
property :max_event_bytes, Integer, default: UwsgiFleet::StoreApp::MAX_EVENT_BYTES,
                                    description: "Cap on an event's decoded size, 1-20 MiB (Relay's max_event_size is 1 MiB)"
property :max_attachment_bytes, Integer, default: UwsgiFleet::StoreApp::MAX_ATTACHMENT_BYTES,
                                         description: 'Cap on one attachment item once decoded, 1 MiB-1 GiB (SDKs drop attachments over 20 MiB ' \
                                                      'themselves); over it the item is dropped and counted, and the event that came with it stored'
property :max_body_size, String, default: UwsgiFleet::StoreApp::MAX_BODY_SIZE,
                                 description: "Cap on an envelope, as received and once decoded, an nginx size ('1m'-'1g'; Relay's max_envelope_size " \
                                              'is 100 MiB); a fleet that runs this app takes it as its client_max_body_size'
property :max_envelope_size, [String, nil],
                                             description: "Cap on a whole envelope once decoded, an nginx size ('1m'-'1g', at least max_event_bytes; " \
                                                          "Relay's max_envelope_size); nil: max_body_size (at least max_event_bytes), so that the app " \
                                                          'takes every identity envelope nginx lets through'
property :stream_maxlen, [Integer, nil],
                                        description: "Trim each project's Redis stream to about this many events (XADD MAXLEN ~), at least 1; nil: not trimmed"
property :simulated_hops, Integer, default: 0,
                                   description: 'Simulated network hops (auth and quota lookups) per request, 0-10; for the benchmark'
property :simulated_hop_ms, Numeric, default: 2,
                                     description: 'Milliseconds per simulated hop, 0-1000'
property :user, String, default: 'uwsgi_fleet',
                        description: 'The user of the fleet that runs the app: it reads the config and owns the spool'
property :install_dir, String, default: lazy { |r| "/opt/uwsgi_fleet/#{r.name}" },
                               description: 'The app is installed as <install_dir>/store_app'
property :config_path, String, default: lazy { |r| "/etc/uwsgi_fleet/#{r.name}/store_app.json" },
                               description: 'Where its config goes (0640 root:<user>: it holds the project keys)'
property :key_path, String, default: lazy { |r| "/etc/uwsgi_fleet/#{r.name}/default_project.key" },
                            description: "Where the default project's random key is kept when projects is empty (0600 root)"
property :redis_url, [String, nil],
                                    description: 'The shared Redis (uwsgi_fleet_redis), redis://<address>:<port>/<db>; nil: no Redis'
property :quota_redis_url, [String, nil], default: lazy { |r| r.redis_url },
                                          description: "The Redis of the quota's buckets (uwsgi_fleet_redis's quota instance, no persistence); nil: the node's own"
property :redis_password, [String, nil], sensitive: true,
                                         description: "Redis's password (keep it in a data bag)"
property :quota_backend, String, default: lazy { |r| UwsgiFleet::StoreApp.quota_backend(r.quota_redis_url) },
                                 description: "Where the projects' buckets live, and so who shares them: 'local' (this node's instances of this app) " \
                                                 "or 'redis' (every web node using it); see documentation/uwsgi_fleet_store_app.md, Rate limit"
property :forward_events, [true, false], default: lazy { |r| UwsgiFleet::StoreApp.forwarding?(r.redis_url) },
                                         description: 'Run the forwarder, which moves accepted events into a Redis stream per project'
property :process_manager, String, default: UwsgiFleet::ProcessManager::DEFAULT,
                                   description: "What runs the forwarder: #{UwsgiFleet::ProcessManager.described}"
property :log_dir, String, default: lazy { |r| "/var/log/uwsgi_fleet/store_app_#{r.name}" },
                           description: "The forwarder's log: <log_dir>/forwarder.log"

def after_created
  super
  errors = UwsgiFleet::Validation.store_app_errors(uwsgi_fleet_properties.merge(name: name), systemd: UwsgiFleet::NodeFacts.systemd?)
  UwsgiFleet::Validation.raise_if_any!(errors, subject: to_s, namer: UwsgiFleet::Validation.method(:property_name))
end

action_class do
  def props
    new_resource.uwsgi_fleet_properties.merge(name: new_resource.name)
  end

  def forwarder_pm
    UwsgiFleet::ProcessManager.named(new_resource.process_manager)
  end

  # The forwarder as its process manager runs a long-lived program (a
  # supervisor program, a systemd unit), running as the app user.
  def forwarder
    pm = forwarder_pm
    name = pm.forwarder_name(new_resource.name)
    service(pm::SERVICE) { action [:enable, :start] } if pm::SERVICE
    template pm.forwarder_file(new_resource.name) do
      cookbook pm::COOKBOOK
      source pm::FORWARDER_TEMPLATE
      mode '0644'
      variables(app: new_resource.name, name: name, user: new_resource.user,
                command: pm.command_line(UwsgiFleet::StoreApp.forwarder_args(props)),
                directory: pm.escape(new_resource.install_dir), log: pm.escape(::File.join(new_resource.log_dir, 'forwarder.log')))
      notifies :run, "execute[apply #{name}]", :immediately
    end
    # Start or restart it as its file says (its config and code are read at start).
    execute "apply #{name}" do
      command pm.forwarder_apply(name)
      action :nothing
    end
  end

  # As its process manager retires a program (the forwarder finishes its batch).
  def remove_forwarder
    pm = forwarder_pm
    pm.retire_forwarder(self, pm.forwarder_name(new_resource.name), pm.forwarder_file(new_resource.name))
  end
end

action :create do
  packages = UwsgiFleet::Packages::STORE_APP
  packages += %w(python3-redis) if new_resource.redis_url || new_resource.quota_redis_url
  packages += forwarder_pm::PACKAGES if new_resource.forward_events
  install_packages(packages)
  user new_resource.user do
    system true
    shell '/usr/sbin/nologin'
    home '/nonexistent'
    manage_home false
  end

  [new_resource.install_dir, ::File.dirname(new_resource.config_path)].uniq.each do |dir|
    root_directory(::File.dirname(dir)) if UwsgiFleet::Paths.claim?(::File.dirname(dir))
    root_directory(dir)
  end
  spool_parent = ::File.dirname(new_resource.spool_dir)
  root_directory(spool_parent) if UwsgiFleet::Paths.claim?(spool_parent)
  safe_directory(new_resource.spool_dir, owner: new_resource.user, mode: '0750')

  forwarder_apply = "execute[apply #{forwarder_pm.forwarder_name(new_resource.name)}]"
  forwarding = new_resource.forward_events
  remote_directory ::File.join(new_resource.install_dir, 'store_app') do
    cookbook 'uwsgi_fleet'
    source 'store_app'
    files_mode '0644'
    purge true
    notifies :run, forwarder_apply, :delayed if forwarding
  end

  default_key = UwsgiFleet::StoreApp.default_project_key(new_resource.key_path)
  file new_resource.key_path do
    content "#{default_key}\n"
    mode '0600'
    sensitive true
    only_if { new_resource.projects.empty? }
  end

  projects = UwsgiFleet::StoreApp.projects(new_resource.projects, default_key)
  file new_resource.config_path do
    content "#{JSON.pretty_generate(UwsgiFleet::StoreApp.config(props, projects: projects))}\n"
    owner 'root'
    group new_resource.user
    mode '0640'
    sensitive true
    notifies :run, forwarder_apply, :delayed if forwarding
  end

  # Accepted events leave the node: the forwarder next to the instances.
  if new_resource.forward_events
    root_directory(::File.dirname(new_resource.log_dir)) if UwsgiFleet::Paths.claim?(::File.dirname(new_resource.log_dir))
    safe_directory(new_resource.log_dir, owner: new_resource.user, mode: '0750')
    forwarder
  elsif ::File.exist?(forwarder_pm.forwarder_file(new_resource.name))
    remove_forwarder
  end
end

action :delete do
  # The forwarder, the code and the config go; the spool stays: it holds accepted events.
  remove_forwarder if ::File.exist?(forwarder_pm.forwarder_file(new_resource.name))
  directory ::File.join(new_resource.install_dir, 'store_app') do
    recursive true
    action :delete
  end
  file(new_resource.config_path) { action :delete }
  file(new_resource.key_path) { action :delete }
end
