#
# Cookbook:: uwsgi_fleet
# Recipe:: web
#
# nginx in front of N single-process, T-thread uWSGI instances run by supervisor.
# Read top to bottom: validate, install, configure the app, start or resize the
# instances, point nginx at them, retire what is no longer wanted.

# 0. Validate every attribute first: a bad one fails here, before anything changes.
plan = uwsgi_fleet_plan
fifo_dir = '/var/lib/uwsgi_fleet'
fleetctl = '/usr/local/sbin/uwsgi-fleetctl'

# 1. Install. A fresh node's apt lists may be empty (cloud and container images
# ship without them), and stale lists name packages the mirror no longer has.
apt_update 'uwsgi_fleet' do
  frequency 86_400
  action :periodic
end

# The periodic stamp can outlive the lists it vouches for (`rm -rf
# /var/lib/apt/lists/*`, image builds): then update regardless.
apt_update 'uwsgi_fleet: the apt lists are empty' do
  action :update
  only_if { UwsgiFleet::Packages.apt_lists_empty? }
end

package UwsgiFleet::Packages::NAMES

cookbook_file fleetctl do
  source 'uwsgi_fleetctl.py'
  mode '0755'
end

# The nginx config this run will leave behind, tested whole (`nginx -t`) before
# anything else changes: this nginx.conf, with the sites this run removes
# already gone (Debian's default site would otherwise clash with ours on :80).
# A config nginx rejects stops the run here, with the node untouched.
template ::File.join(Chef::Config[:file_cache_path], 'uwsgi_fleet-nginx.conf.candidate') do
  source 'nginx.conf.erb'
  mode '0600'
  variables(plan: plan)
  verify UwsgiFleet::Nginx.test_command(fleetctl)
end

user plan.user do
  system true
  shell '/usr/sbin/nologin'
  home '/nonexistent'
  manage_home false
end

directory '/etc/uwsgi_fleet' do
  owner 'root'
  group plan.user
  mode '0750'
end

directory fifo_dir do
  owner plan.user
  group plan.user
  mode '0750'
end

directory plan.app['spool_dir'] do
  owner plan.user
  group plan.user
  mode '0750'
end

directory '/var/log/uwsgi_fleet' do
  mode '0755'
end

# What uwsgi-fleetctl and the specs read about the fleet; no secrets.
file '/etc/uwsgi_fleet/fleet.json' do
  content "#{JSON.pretty_generate(plan.manifest(fifo_dir: fifo_dir))}\n"
  mode '0644'
end

# 2. Configure the app. A change reloads the instances one at a time (delayed,
# after any resize), each worker finishing its requests while the master keeps
# the socket open.
remote_directory '/opt/uwsgi_fleet/store_app' do
  source 'store_app'
  files_mode '0644'
  purge true
  notifies :run, 'execute[rolling reload of uwsgi instances]', :delayed
end

default_key = UwsgiFleet::StoreApp.default_project_key
projects = UwsgiFleet::StoreApp.projects(plan.app['projects'], default_key)

file UwsgiFleet::StoreApp::DEFAULT_KEY_PATH do
  content "#{default_key}\n"
  mode '0600'
  only_if { plan.app['projects'].empty? }
end

file UwsgiFleet::StoreApp::CONFIG_PATH do
  content "#{JSON.pretty_generate(UwsgiFleet::StoreApp.config(plan.app, projects: projects, instances: plan.ports.size, max_body_bytes: plan.max_body_bytes))}\n"
  owner 'root'
  group plan.user
  mode '0640'
  sensitive true
  notifies :run, 'execute[rolling reload of uwsgi instances]', :delayed
end

execute 'rolling reload of uwsgi instances' do
  command "#{fleetctl} reload #{plan.ports.join(' ')}"
  action :nothing
end

# 3. Start supervisor, then each instance. One program file per instance, so a
# resize adds or removes only those instances and a change restarts them one at
# a time (immediately, so the next one waits until this one serves again).
service 'supervisor' do
  supports status: true
  action [:enable, :start]
  # supervisord starts its programs in the background; the run ends once they serve.
  notifies :run, 'execute[wait until uwsgi instances serve]', :delayed
end

execute 'wait until uwsgi instances serve' do
  command "#{fleetctl} wait #{plan.ports.join(' ')}"
  action :nothing
end

plan.ports.each do |port|
  template UwsgiFleet::Fleet.program_conf(port) do
    source 'uwsgi_instance.conf.erb'
    mode '0644'
    variables(
      program: UwsgiFleet::Fleet.program_name(port),
      command: plan.command(port, fifo_dir: fifo_dir),
      user: plan.user,
      directory: plan.web['app']['chdir'],
      stop_wait: plan.web['harakiri'] + 5,
      log: "/var/log/uwsgi_fleet/#{port}.log"
    )
    notifies :run, "execute[apply uwsgi instance #{port}]", :immediately
  end

  execute "apply uwsgi instance #{port}" do
    command "#{fleetctl} apply #{port}"
    action :nothing
  end
end

# 4. Point nginx at exactly these instances. The whole nginx.conf is tested with
# `nginx -t` as a temp file, before it replaces the live one: a config that
# fails never reaches the disk nginx reads.
UwsgiFleet::Nginx::REMOVED_SITES.each do |site|
  link site do
    action :delete
    notifies :reload, 'service[nginx]', :delayed
  end
end

template UwsgiFleet::Nginx::CONF do
  source 'nginx.conf.erb'
  mode '0644'
  variables(plan: plan)
  verify UwsgiFleet::Nginx.test_command(fleetctl)
  # Immediately: on a shrink, nginx must stop using an instance before step 5 retires it.
  notifies :reload, 'service[nginx]', :immediately
end

service 'nginx' do
  supports status: true, reload: true
  # Tests the live config, signals the master, and waits for the new workers.
  reload_command "#{fleetctl} nginx-reload"
  action [:enable, :start]
end

# 5. Retire instances no longer wanted: their program file goes, and supervisor
# stops them gracefully (HUP: in-flight requests finish) and forgets them.
UwsgiFleet::Fleet.stale_ports(Dir.glob(UwsgiFleet::Fleet.program_conf('*')), plan.ports).each do |port|
  file UwsgiFleet::Fleet.program_conf(port) do
    action :delete
    notifies :run, "execute[retire uwsgi instance #{port}]", :immediately
  end

  execute "retire uwsgi instance #{port}" do
    command "#{fleetctl} apply #{port}"
    action :nothing
  end
end
