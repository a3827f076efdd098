#
# Cookbook:: uwsgi_fleet
# Resource:: uwsgi_fleet
#
# One fleet: nginx in front of N single-process, T-thread uWSGI instances,
# each on its own port, run by supervisor or systemd. Several fleets can share
# a node: each has its own names, ports, upstream, manifest and directories.
unified_mode true
provides :uwsgi_fleet
default_action :create

use 'partial/_chef_property_checks_off'
use 'partial/_packages'
use 'partial/_safe_directories'
use 'partial/_nginx_site'

description 'nginx in front of N single-process, multi-threaded uWSGI instances (the Sentry web tier pattern)'

# -- the instances -----------------------------------------------------------

property :processes, [Integer, String], default: 'auto',
                                        description: "Number of uWSGI instances: an integer, or 'auto' (the node's CPU count, at least 2)"
property :threads, Integer, default: 8,
                            description: 'Threads per instance (each instance is one uWSGI worker process): 1-256'
property :base_port, Integer, default: 9000,
                              description: 'Instance i listens on base_port + i: 1024-65535'
property :bind_address, String, default: '127.0.0.1',
                                description: 'The address the instances listen on, and only there; nginx is the public face'
property :user, String, default: 'uwsgi_fleet',
                        description: 'Unprivileged system user that runs uWSGI (created if missing; not root)'
property :listen_backlog, Integer, default: 1024,
                                   description: "uWSGI's listen backlog per instance: 1 to the kernel's net.core.somaxconn"
property :buffer_size, Integer, default: 65_535,
                                description: "uWSGI's request header buffer, 4096-65535 (65535 is above anything nginx forwards)"
property :harakiri, Integer, default: 60,
                             description: 'Seconds before uWSGI kills a stuck request (1-3600); a stop waits this long + 5 s'
property :process_manager, String, default: UwsgiFleet::ProcessManager::DEFAULT,
                                   description: "What runs the instances: #{UwsgiFleet::ProcessManager.described}"

# -- the app -----------------------------------------------------------------

property :store_app, [String, nil],
                                    description: 'Run this uwsgi_fleet_store_app (declared before this fleet); or set app_module or wsgi_file'
property :app_module, [String, nil],
                                     description: 'The WSGI callable to load, as package.module[:callable]'
property :wsgi_file, [String, nil],
                                    description: 'A WSGI file to load instead of app_module (absolute path)'
property :chdir, String, default: '/opt/uwsgi_fleet',
                         description: 'Working directory of each instance (absolute path)'
property :pythonpath, Array, default: lazy { |r| [r.chdir] },
                             description: 'Directories added to sys.path (absolute paths)'
property :virtualenv, [String, nil],
                                     description: 'A virtualenv to run in (uWSGI --virtualenv); nil uses the system python3'
property :env, Hash, default: {},
                     description: "Extra environment variables for the app, e.g. { 'DJANGO_SETTINGS_MODULE' => 'app.settings' }"

# -- nginx -------------------------------------------------------------------

property :listen, Integer, default: 80,
                           description: 'The port nginx serves this fleet on (not one of the instance ports)'
property :listen_address, [String, nil],
                                         description: 'The address nginx serves this fleet on, e.g. the private address a balancer reaches; nil: every address'
property :server_name, String, default: '_',
                               description: "nginx server names, space separated (no ; { } ' \" # \\)"
property :default_server, [true, false], default: false,
                                         description: "Whether this fleet is nginx's default server on its port"
property :client_max_body_size, String, default: lazy { |r| (r.store_app && r.store_app_resource&.max_body_size) || UwsgiFleet::StoreApp::MAX_BODY_SIZE },
                                        description: "Largest request body, as an nginx size from '1m' to '1g': its store app's max_body_size " \
                                                     '(which it must equal), else 100m'
property :client_body_buffer_size, String, default: '1m',
                                           description: "Bodies up to this size stay in memory: an nginx size from '8k' to client_max_body_size"
property :balance, String, default: 'least_conn',
                           description: 'Upstream balancing: least_conn (as Sentry), round_robin, random_two or ip_hash'
property :max_conns, [Integer, String], default: 'auto',
                                        description: 'Requests nginx gives one instance at once (nginx max_conns); past that on every instance it sheds ' \
                                        "with a 503 and Retry-After. 'auto' = #{UwsgiFleet::Fleet::CONNS_PER_THREAD} x threads (at most threads + listen_backlog); 0 = no limit"
property :burst_queue_ms, Integer, default: 500,
                                   description: "How long a request may wait in an instance's queue while the queue has emptied within that time " \
                                               '(a burst), in ms, 0-60000; past it the store app sheds with a 503 and Retry-After. 0: never shed on time'
property :sustained_queue_ms, Integer, default: 50,
                                       description: 'How long a request may wait once the queue has not emptied for burst_queue_ms (sustained overload), ' \
                                                   'in ms: 0 to burst_queue_ms'
property :client_timeout, Integer, default: 10,
                                   description: 'Seconds of silence (header, body, send) before nginx cuts a client off: 1-300'
property :remove_sites, Array, default: [],
                               description: 'nginx files this fleet replaces, removed with its own (e.g. Debian\'s default site when this is the default server on :80)'
property :nginx_main_config, [String, nil],
                                            description: 'Text for /etc/nginx/nginx.conf, installed with this fleet (nil: the main config is left alone)'

# -- names and places (each fleet its own) -----------------------------------

property :conf_dir, String, default: lazy { |r| UwsgiFleet::Fleet.named_defaults(r.name, r.process_manager)[:conf_dir] },
                            description: 'Where the fleet manifest (fleet.json) lives: /etc/uwsgi_fleet/<name>'
property :fifo_dir, String, default: lazy { |r| UwsgiFleet::Fleet.named_defaults(r.name, r.process_manager)[:fifo_dir] },
                            description: "The instances' master FIFOs: /var/lib/uwsgi_fleet/<name>"
property :log_dir, String, default: lazy { |r| UwsgiFleet::Fleet.named_defaults(r.name, r.process_manager)[:log_dir] },
                           description: "The instances' logs: /var/log/uwsgi_fleet/<name>"
property :instance_prefix, String, default: lazy { |r| UwsgiFleet::Fleet.named_defaults(r.name, r.process_manager)[:instance_prefix] },
                                   description: "How the instances' names begin; by process manager: " +
                                                UwsgiFleet::ProcessManager.names.map { |n| "#{n} #{UwsgiFleet::ProcessManager.named(n).instance_prefix('<name>')}" }.join(', ')
property :upstream, String, default: lazy { |r| UwsgiFleet::Fleet.named_defaults(r.name, r.process_manager)[:upstream] },
                            description: "The nginx upstream's name: uwsgi_fleet_<name>"
property :site_file, String, default: lazy { |r| UwsgiFleet::Fleet.named_defaults(r.name, r.process_manager)[:site_file] },
                             description: "This fleet's nginx file (upstream and server): /etc/nginx/conf.d/uwsgi_fleet_<name>.conf"

# Every rule, checked at once when the resource is declared: a bad value stops
# the run before anything on the node changes, with one message naming them all.
def after_created
  super
  errors = UwsgiFleet::Validation.fleet_errors(
    uwsgi_fleet_properties.merge(name: name), cpus: UwsgiFleet::NodeFacts.cpus(node), somaxconn: UwsgiFleet::NodeFacts.somaxconn,
                                              systemd: UwsgiFleet::NodeFacts.systemd?, action: Array(action).first
  )
  errors.concat(node_errors) unless Array(action).first == :delete
  UwsgiFleet::Validation.raise_if_any!(errors, subject: to_s, namer: UwsgiFleet::Validation.method(:property_name))
end

# What the node and the run say about this fleet: its store app is declared,
# runs as the same user and takes the bodies nginx passes, and a fleet already
# on the node keeps its process manager (switching would leave the old one's
# instances on the same ports).
def node_errors
  errors = []
  if store_app
    app = store_app_resource
    errors << UwsgiFleet::Validation::Error.new([:store_app], 'must name a uwsgi_fleet_store_app declared before this fleet', store_app) unless app
    errors << UwsgiFleet::Validation::Error.new([:user], "must be the store app's user (#{app.user}): it reads its config and spool", user) if app && app.user != user
    errors << body_size_error(app) if app
  end
  running = (manifest = existing_manifest) && UwsgiFleet::LegacyManifest.process_manager(manifest)
  if running && running != process_manager
    errors << UwsgiFleet::Validation::Error.new([:process_manager], "is not what the fleet runs under on this node (#{running}): " \
                                                                    'delete the fleet first (action :delete), then create it', process_manager)
  end
  errors.compact
end

# nginx and the app must refuse the same bodies: a larger nginx limit has the app answer 413
# for what nginx let through, a smaller one loses envelopes the app would take.
def body_size_error(app)
  ours, its = [client_max_body_size, app.max_body_size].map { |size| UwsgiFleet::Sizes.to_bytes(size) }
  return if ours.nil? || its.nil? || ours == its # a bad size is reported by its own rule
  UwsgiFleet::Validation::Error.new([:client_max_body_size], "must be the store app's max_body_size (#{app.max_body_size}): " \
                                                             'nginx and the app must refuse the same bodies', client_max_body_size)
end

def existing_manifest
  return unless conf_dir.is_a?(String)
  path = ::File.join(conf_dir, 'fleet.json')
  ::File.exist?(path) ? JSON.parse(::File.read(path)) : nil
end

# The uwsgi_fleet_store_app this fleet runs, as declared in the run.
def store_app_resource
  run_context.resource_collection.find(uwsgi_fleet_store_app: store_app)
rescue Chef::Exceptions::ResourceNotFound
  nil
end

action_class do
  # The plan: properties as the instances run them (a store app's settings filled in).
  def plan
    @plan ||= begin
      props = new_resource.uwsgi_fleet_properties.merge(name: new_resource.name)
      if (app = new_resource.store_app && new_resource.store_app_resource)
        settings = UwsgiFleet::StoreApp.fleet_settings(install_dir: app.install_dir, config_path: app.config_path)
        props = props.merge(settings.merge(env: settings[:env].merge(props[:env])))
      end
      UwsgiFleet::FleetPlan.new(props, cpus: UwsgiFleet::NodeFacts.cpus(node))
    end
  end

  # For :delete: the fleet as the node has it (its manifest, of any version),
  # whatever the resource's other properties say.
  def existing_plan
    props = UwsgiFleet::LegacyManifest.properties(new_resource.existing_manifest, new_resource.uwsgi_fleet_properties.merge(name: new_resource.name))
    UwsgiFleet::FleetPlan.new(props, cpus: 1)
  end

  def fleetctl(*args)
    [UwsgiFleet::Tool::FLEETCTL, '--manifest', plan.manifest_path, *args].join(' ')
  end

  def site_source
    'nginx_site.conf.erb'
  end

  # The template's values, all computed here: the fleet's upstream sheds in its 502 page.
  def site_variables
    { plan: plan, fail_timeout: UwsgiFleet::FleetPlan::FAIL_TIMEOUT, shed: UwsgiFleet::Nginx.shed_answer(plan[:upstream]) }
  end

  def instances(action_name, fleet = plan)
    declare_resource(fleet.process_manager.class::RESOURCE, new_resource.name) do
      plan fleet
      action action_name
    end
  end

  # Shared parents (/var/lib/uwsgi_fleet, ...): root's, unless they already are.
  def parent_directories
    dirs = [new_resource.conf_dir, new_resource.fifo_dir, new_resource.log_dir].map { |d| ::File.dirname(d) }
    dirs.uniq.each { |dir| root_directory(dir) if UwsgiFleet::Paths.claim?(dir) }
  end
end

action :create do
  # 1. Install what the fleet runs on.
  install_packages(UwsgiFleet::Packages::FLEET + plan.process_manager.class::PACKAGES)
  install_fleetctl

  # 2. The nginx config this converge will leave behind, tested whole (with
  # every other site on the node) before anything else changes.
  test_nginx_candidate

  # 3. The user, the fleet's directories and its manifest.
  user plan.user do
    system true
    shell '/usr/sbin/nologin'
    home '/nonexistent'
    manage_home false
  end
  parent_directories
  root_directory(new_resource.conf_dir)
  safe_directory(new_resource.fifo_dir, owner: plan.user, mode: '0750')
  safe_directory(new_resource.log_dir, owner: plan.user, mode: '0750')
  file plan.manifest_path do
    content plan.manifest_json
    mode '0644'
  end

  # 4. Start the instances nginx is about to list (a new one answers before it gets traffic).
  instances(:start)

  # 5. Point nginx at exactly these instances.
  nginx_go_live

  # 6. Retire the instances no longer wanted (gracefully: running requests finish).
  instances(:prune)
end

action :reload do
  # A rolling reload: one instance's worker at a time finishes its requests and
  # a new one loads the app, while the master keeps the socket.
  execute "rolling reload of #{new_resource}" do
    command fleetctl('reload', *plan.ports)
    only_if { ::File.exist?(plan.manifest_path) }
  end
end

action :delete do
  # nginx first (no new request reaches the fleet), then the instances
  # (gracefully), then the fleet's files. Shared parents and the app stay.
  if new_resource.existing_manifest
    fleet = existing_plan
    nginx_remove_site(fleet[:site_file])
    # uwsgi-fleetctl, which retires the instances, reads version 1 only: an
    # older manifest is rewritten first.
    unless UwsgiFleet::LegacyManifest.current?(new_resource.existing_manifest)
      file(fleet.manifest_path) { content fleet.manifest_json }
    end
    instances(:stop, fleet)
    [fleet[:fifo_dir], fleet[:log_dir]].each do |dir|
      directory(dir) do
        recursive true
        action :delete
      end
    end
    file(fleet.manifest_path) { action :delete }
  end
  directory(new_resource.conf_dir) do
    action :delete
    only_if { ::Dir.exist?(new_resource.conf_dir) && ::Dir.empty?(new_resource.conf_dir) }
  end
end
