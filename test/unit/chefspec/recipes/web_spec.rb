require_relative '../spec_helper'

# The default recipe's wrapper: node['uwsgi_fleet'] (0.1.0's interface) onto one
# uwsgi_fleet_store_app and one uwsgi_fleet named 'default', with 0.1.0's paths.
describe 'uwsgi_fleet::web' do
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  let(:store_app) { chef_run.find_resource(:uwsgi_fleet_store_app, 'default') }
  let(:fleet) { chef_run.find_resource(:uwsgi_fleet, 'default') }

  context 'with the default attributes (Fauxhai debian 12 has 1 CPU: processes auto -> 2 instances)' do
    it 'declares one store app and one fleet, both named default, and nothing else' do
      expect(resources.map(&:to_s)).to eq(['uwsgi_fleet_store_app[default]', 'uwsgi_fleet[default]'])
      expect(chef_run).to create_uwsgi_fleet_store_app('default')
      expect(chef_run).to create_uwsgi_fleet('default')
    end

    it "gives the store app 0.1.0's paths and the app attributes" do
      expect(store_app).to have_attributes(
        install_dir: '/opt/uwsgi_fleet', config_path: '/etc/uwsgi_fleet/store_app.json', key_path: '/etc/uwsgi_fleet/default_project.key',
        spool_dir: '/var/spool/uwsgi_fleet', user: 'uwsgi_fleet', projects: {}, max_body_size: '100m', max_event_bytes: 1_048_576,
        max_attachment_bytes: 20_971_520,
        rate_limit: { 'events_per_second' => 1000, 'burst' => 2000 }, simulated_hops: 0, simulated_hop_ms: 2
      )
    end

    it "gives the fleet 0.1.0's conf_dir, program names and upstream, as the default server replacing Debian's site" do
      expect(fleet).to have_attributes(
        conf_dir: '/etc/uwsgi_fleet', instance_prefix: 'uwsgi_fleet_', upstream: 'uwsgi_fleet', default_server: true,
        remove_sites: ['/etc/nginx/sites-enabled/default'], process_manager: 'supervisor', store_app: nil
      )
    end

    it 'runs the store app it declares, with its config in the environment' do
      expect(fleet).to have_attributes(app_module: 'store_app.wsgi:application', wsgi_file: nil, chdir: '/opt/uwsgi_fleet',
                                       pythonpath: ['/opt/uwsgi_fleet'], env: { 'STORE_APP_CONFIG' => '/etc/uwsgi_fleet/store_app.json' })
    end

    it "writes the body and attachment size attributes as the resources' defaults (literals there: expected.py reads them)" do
      expect(chef_run.node['uwsgi_fleet']['web']['nginx']['client_max_body_size']).to eq(UwsgiFleet::StoreApp::MAX_BODY_SIZE)
      expect(chef_run.node['uwsgi_fleet']['app']['max_attachment_bytes']).to eq(UwsgiFleet::StoreApp::MAX_ATTACHMENT_BYTES)
      expect(chef_run.node['uwsgi_fleet']['app']['max_event_bytes']).to eq(UwsgiFleet::StoreApp::MAX_EVENT_BYTES)
    end

    it 'maps the web attributes onto the fleet' do
      expect(fleet).to have_attributes(
        processes: 'auto', threads: 8, base_port: 9000, bind_address: '127.0.0.1', user: 'uwsgi_fleet', listen_backlog: 1024,
        buffer_size: 65_535, harakiri: 60, listen: 80, server_name: '_', client_max_body_size: '100m',
        client_body_buffer_size: '1m', balance: 'least_conn', max_conns: 'auto', burst_queue_ms: 500, sustained_queue_ms: 50,
        client_timeout: 10, virtualenv: nil
      )
    end

    it 'keeps each fleet-named default that 0.1.0 did not have' do
      expect(fleet).to have_attributes(site_file: '/etc/nginx/conf.d/uwsgi_fleet_default.conf', fifo_dir: '/var/lib/uwsgi_fleet/default',
                                       log_dir: '/var/log/uwsgi_fleet/default')
    end

    it 'reloads the instances one at a time after a change of the app or its config' do
      expect(store_app).to notify('uwsgi_fleet[default]').to(:reload).delayed
    end

    it "leaves Debian's nginx.conf alone" do
      expect(fleet.nginx_main_config).to be_nil
    end

    it 'does not warn about worker_processes auto' do
      allow(Chef::Log).to receive(:warn)
      chef_run
      expect(Chef::Log).not_to have_received(:warn).with(/worker_processes/)
    end

    it 'says nothing about Redis when no node in its environment has the Redis role (as in local mode)' do
      allow(Chef::Log).to receive(:warn)
      chef_run
      expect(Chef::Log).not_to have_received(:warn).with(/Redis/)
    end
  end

  # The web role without ['app']['redis']['search'] while the Redis node is in the environment:
  # the node would quietly keep a quota of its own and forward nothing.
  context 'with no Redis attribute, in an environment where a node has the Redis role' do
    redis_role = UwsgiFleetSpec.attribute_defaults['redis']['role_name']
    let(:chef_runner) { runner_in('production') }
    let(:warned) { /uses no Redis/ }

    before do
      stub_search(:node, "(role:#{redis_role}) AND chef_environment:production")
        .and_return([stub_node('redis1', platform: 'debian', version: '12')])
      allow(Chef::Log).to receive(:warn)
    end

    it 'warns, naming the node found and the attribute to set, and converges without Redis' do
      expect(store_app).to have_attributes(redis_url: nil, quota_backend: 'local', forward_events: false)
      expect(Chef::Log).to have_received(:warn).with(
        "uwsgi_fleet: this web node uses no Redis, but redis1 has the role #{redis_role}: its quota stays per node " \
        "and no forwarder runs; set node['uwsgi_fleet']['app']['redis']['search'] to 'role:#{redis_role}'"
      )
    end

    context "with ['app']['redis']['url'] (a Redis named, not searched)" do
      default_attributes['uwsgi_fleet']['app']['redis']['url'] = 'redis://10.0.0.5:6379/0'
      before { stub_data_bag_item('uwsgi_fleet', 'redis').and_return('id' => 'redis', 'password' => 'Zq8xW3vN7pL2mK9sT4rY') }

      it 'says nothing' do
        chef_run
        expect(Chef::Log).not_to have_received(:warn).with(warned)
      end
    end

    context "with ['redis']['role_name'] nil" do
      default_attributes['uwsgi_fleet']['redis']['role_name'] = nil

      it 'does not look, and says nothing' do
        chef_run
        expect(Chef::Log).not_to have_received(:warn).with(warned)
      end
    end
  end

  context 'with every attribute set' do
    default_attributes['uwsgi_fleet'] = {
      'web' => {
        'processes' => 3, 'threads' => 6, 'base_port' => 8100, 'bind_address' => '::1', 'user' => 'svc_web',
        'listen_backlog' => 2048, 'buffer_size' => 32_768, 'harakiri' => 30,
        'app' => { 'module' => 'app:application', 'chdir' => '/srv/app', 'virtualenv' => '/srv/venv', 'env' => { 'GREETING' => 'hello' } },
        'nginx' => { 'listen' => 8080, 'server_name' => 'sentry.example.com sentry', 'client_max_body_size' => '20m',
                     'client_body_buffer_size' => '2m', 'balance' => 'ip_hash', 'max_conns' => 5, 'client_timeout' => 30,
                     'burst_queue_ms' => 900, 'sustained_queue_ms' => 90 }
      },
      'app' => {
        'projects' => { '42' => { 'public_key' => 'a' * 32 } }, 'spool_dir' => '/srv/spool',
        'rate_limit' => { 'events_per_second' => 5, 'burst' => 10 }, 'max_event_bytes' => 2_097_152,
        'max_attachment_bytes' => 8_388_608, 'simulated_hops' => 2, 'simulated_hop_ms' => 0.5
      },
    }
    # (Chef merges arrays of the default levels: an override replaces the cookbook's.)
    override_attributes['uwsgi_fleet']['web']['app']['pythonpath'] = ['/srv/app', '/srv/lib']

    it 'maps each onto its property' do
      expect(fleet).to have_attributes(
        processes: 3, threads: 6, base_port: 8100, bind_address: '::1', user: 'svc_web', listen_backlog: 2048, buffer_size: 32_768,
        harakiri: 30, app_module: 'app:application', chdir: '/srv/app', pythonpath: ['/srv/app', '/srv/lib'], virtualenv: '/srv/venv',
        env: { 'STORE_APP_CONFIG' => '/etc/uwsgi_fleet/store_app.json', 'GREETING' => 'hello' }, listen: 8080,
        server_name: 'sentry.example.com sentry', client_max_body_size: '20m', client_body_buffer_size: '2m', balance: 'ip_hash',
        max_conns: 5, client_timeout: 30, burst_queue_ms: 900, sustained_queue_ms: 90
      )
      expect(store_app).to have_attributes(
        user: 'svc_web', projects: { '42' => { 'public_key' => 'a' * 32 } }, spool_dir: '/srv/spool',
        rate_limit: { 'events_per_second' => 5, 'burst' => 10 }, max_event_bytes: 2_097_152, max_body_size: '20m',
        max_attachment_bytes: 8_388_608, simulated_hops: 2, simulated_hop_ms: 0.5
      )
    end
  end

  context 'with a wsgi_file' do
    default_attributes['uwsgi_fleet']['web']['app']['wsgi_file'] = '/srv/app/wsgi.py'

    it 'runs it instead of the module' do
      expect(fleet).to have_attributes(wsgi_file: '/srv/app/wsgi.py', app_module: nil)
    end
  end

  context 'with the systemd process manager' do
    default_attributes['uwsgi_fleet']['web']['process_manager'] = 'systemd'

    it "names the units after the fleet (0.1.0's program names are supervisor's)" do
      expect(fleet).to have_attributes(process_manager: 'systemd', instance_prefix: 'uwsgi-fleet-default')
    end

    context 'on a node whose init is not systemd' do
      let(:init_comm) { "tini\n" }

      it 'fails, naming the attribute' do
        expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration,
                                           /^  node\['uwsgi_fleet'\]\['web'\]\['process_manager'\] must be supervisor on this node/)
      end
    end
  end

  context "with ['web']['nginx']['max_conns'] 0 (no limit)" do
    default_attributes['uwsgi_fleet']['web']['nginx']['max_conns'] = 0

    it 'gives it to the fleet as it is' do
      expect(fleet.max_conns).to eq(0)
    end
  end

  context "with an ['web']['nginx']['max_conns'] other than auto or an integer" do
    default_attributes['uwsgi_fleet']['web']['nginx']['max_conns'] = 'none'

    it 'fails before any resource is declared, naming the attribute' do
      expect_any_instance_of(Chef::ResourceCollection).not_to receive(:insert)
      expect { chef_run }.to raise_error(
        UwsgiFleet::InvalidConfiguration,
        "uwsgi_fleet: invalid attributes, nothing was changed:\n  node['uwsgi_fleet']['web']['nginx']['max_conns'] " \
        "must be 'auto' or an integer from 0 (no limit) to 65535; got \"none\""
      )
    end
  end

  context 'with an invalid attribute (threads 0)' do
    default_attributes['uwsgi_fleet']['web']['threads'] = 0

    it 'fails the run naming the attribute' do
      expect { chef_run }.to raise_error(
        UwsgiFleet::InvalidConfiguration,
        "uwsgi_fleet: invalid attributes, nothing was changed:\n  node['uwsgi_fleet']['web']['threads'] must be an integer from 1 to 256; got 0"
      )
    end

    it 'fails before any resource is declared' do
      expect_any_instance_of(Chef::ResourceCollection).not_to receive(:insert)
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration)
    end
  end

  context 'with several invalid attributes' do
    default_attributes['uwsgi_fleet']['web']['nginx']['listen'] = 9001
    default_attributes['uwsgi_fleet']['web']['processes'] = 4
    default_attributes['uwsgi_fleet']['app']['spool_dir'] = '/'

    it 'reports them all at once' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration) { |error|
        expect(error.message.lines.map(&:strip)).to eq([
                                                         'uwsgi_fleet: invalid attributes, nothing was changed:',
                                                         "node['uwsgi_fleet']['web']['nginx']['listen'] is 9001, a port already used by a uWSGI instance (9000..9003); " \
                                                         'pick a port outside that range; got 9001',
                                                         %(node['uwsgi_fleet']['app']['spool_dir'] must be an absolute path other than / (no .. segments); got "/"),
                                                       ])
      }
    end
  end

  context 'when the listen backlog exceeds net.core.somaxconn' do
    let(:somaxconn) { "512\n" }

    it 'fails the run' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration, /\['listen_backlog'\] must be an integer from 1 to 512; got 1024/)
    end
  end

  context "with processes 'auto' on 8 CPUs" do
    automatic_attributes['cpu']['total'] = 8

    it 'passes validation with 8 instances, listen 80 outside their ports' do
      expect { chef_run }.not_to raise_error
    end
  end

  context 'upgrading from 0.1.0, whose nginx.conf held the fleet' do
    let(:node_files) do
      { '/etc/nginx/nginx.conf' => "#{UwsgiFleet::Nginx::LEGACY_MARKER} with the fleet's upstream.\nuser www-data;\n" }
    end

    it "restores Debian's nginx.conf with the fleet" do
      expect(fleet.nginx_main_config).to eq(UwsgiFleet::Nginx::DEBIAN_MAIN_CONFIG)
    end
  end

  context "with Debian's nginx.conf already restored" do
    let(:node_files) { { '/etc/nginx/nginx.conf' => UwsgiFleet::Nginx::DEBIAN_MAIN_CONFIG } }

    it 'leaves it alone' do
      expect(fleet.nginx_main_config).to be_nil
    end
  end

  context 'with a worker_processes other than auto (retired)' do
    default_attributes['uwsgi_fleet']['web']['nginx']['worker_processes'] = 4

    it 'warns that it is no longer applied, and converges' do
      allow(Chef::Log).to receive(:warn)
      expect { chef_run }.not_to raise_error
      expect(Chef::Log).to have_received(:warn).with(
        "uwsgi_fleet: node['uwsgi_fleet']['web']['nginx']['worker_processes'] is no longer applied: " \
        "nginx.conf is the distribution's (set worker_processes there)"
      )
    end
  end
end

# The same run with the resources stepped into: what 0.1.0's users find on the node.
describe 'uwsgi_fleet::web, converged' do
  step_into :uwsgi_fleet, :uwsgi_fleet_store_app, :uwsgi_fleet_supervisor_instances, :uwsgi_fleet_systemd_instances
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  let(:chef_run) { chef_runner.converge('uwsgi_fleet::web') }
  let(:symlinks) { ['/etc/nginx/sites-enabled/default'] }
  let(:site) { '/etc/nginx/conf.d/uwsgi_fleet_default.conf' }

  it "runs 0.1.0's supervisor programs, uwsgi_fleet_<port>" do
    %w(9000 9001).each do |port|
      expect(chef_run).to create_template("/etc/supervisor/conf.d/uwsgi_fleet_#{port}.conf")
      expect(rendered("/etc/supervisor/conf.d/uwsgi_fleet_#{port}.conf")).to include("[program:uwsgi_fleet_#{port}]\n")
        .and include('--env STORE_APP_CONFIG\\=/etc/uwsgi_fleet/store_app.json')
    end
  end

  it 'serves upstream uwsgi_fleet as the default server on :80, replacing the default site' do
    expect(rendered(site)).to include("upstream uwsgi_fleet {\n").and match(/^\s+listen 80 default_server;$/)
      .and match(/^\s+uwsgi_pass uwsgi_fleet;$/)
    expect(chef_run).to delete_link('/etc/nginx/sites-enabled/default')
  end

  it 'gives each instance at most 8 x 8 threads of requests, and sheds past that on every one with a JSON 503' do
    expect(rendered(site).scan(/^\s*server (\S+) .*max_conns=(\d+);$/)).to eq([%w(127.0.0.1:9000 64), %w(127.0.0.1:9001 64)])
    expect(rendered(site)).to include(%(if ($upstream_addr ~ "(^|, )uwsgi_fleet$") {), "return 503 '#{UwsgiFleet::Nginx.shed_body}';")
    expect(JSON.parse(rendered('/etc/uwsgi_fleet/fleet.json'))).to include('threads' => 8, 'max_conns' => 64)
    expect(rendered(site)).to include('uwsgi_param FLEET_QUEUE_MS "500 50";')
  end

  it "writes the manifest and the store app's config where 0.1.0 kept them" do
    expect(chef_run).to create_file('/etc/uwsgi_fleet/fleet.json')
    expect(JSON.parse(rendered('/etc/uwsgi_fleet/fleet.json'))).to include('instance_prefix' => 'uwsgi_fleet_', 'upstream' => 'uwsgi_fleet',
                                                                           'store_app_config' => '/etc/uwsgi_fleet/store_app.json')
    expect(chef_run).to create_file('/etc/uwsgi_fleet/store_app.json')
    expect(rendered('/etc/uwsgi_fleet/fleet.json')).to match_schema(:fleet)
    expect(rendered('/etc/uwsgi_fleet/store_app.json')).to match_schema(:store_app)
    expect(chef_run).to create_remote_directory('/opt/uwsgi_fleet/store_app')
    expect(chef_run).to create_directory('/var/spool/uwsgi_fleet').with(owner: 'uwsgi_fleet', mode: '0750')
  end

  it 'keeps project keys out of the world-readable manifest' do
    key = JSON.parse(rendered('/etc/uwsgi_fleet/store_app.json'))['projects']['1']['public_key']
    expect(key).to match(/\A\h{32}\z/)
    expect(rendered('/etc/uwsgi_fleet/fleet.json')).not_to include(key)
  end

  it 'converges the store app before the fleet that runs it' do
    expect(position(:file, '/etc/uwsgi_fleet/store_app.json')).to be < position(:file, '/etc/uwsgi_fleet/fleet.json')
  end

  context 'with 0.1.0 programs of more ports than wanted' do
    let(:supervisor_confs) { (9000..9003).map { |port| "/etc/supervisor/conf.d/uwsgi_fleet_#{port}.conf" } }

    it 'retires the others' do
      %w(9002 9003).each { |port| expect(chef_run).to delete_file("/etc/supervisor/conf.d/uwsgi_fleet_#{port}.conf") }
      %w(9000 9001).each { |port| expect(chef_run).not_to delete_file("/etc/supervisor/conf.d/uwsgi_fleet_#{port}.conf") }
    end
  end

  context 'upgrading from 0.1.0, whose nginx.conf held the fleet' do
    let(:node_files) { { '/etc/nginx/nginx.conf' => "#{UwsgiFleet::Nginx::LEGACY_MARKER} with the fleet's upstream.\n" } }

    it "puts Debian's nginx.conf back, tested with the fleet's new site file, before the site goes live" do
      main = chef_run.file('/etc/nginx/nginx.conf')
      expect(main.content).to eq(UwsgiFleet::Nginx::DEBIAN_MAIN_CONFIG)
      expect(verify_commands(main).first).to match(%r{--put #{site}=\S+\.candidate --put /etc/nginx/nginx.conf=%\{path\} --remove /etc/nginx/sites-enabled/default\z})
      expect(position(:file, '/etc/nginx/nginx.conf')).to be < position(:template, site)
    end
  end

  context 'when a default project key is already on the node' do
    let(:node_files) { { '/etc/uwsgi_fleet/default_project.key' => "#{'feedface' * 4}\n" } }

    it 'keeps it' do
      expect(JSON.parse(rendered('/etc/uwsgi_fleet/store_app.json'))['projects']['1']['public_key']).to eq('feedface' * 4)
    end
  end
end

# The warning's search against a Chef server (chef-zero, as in local mode): a node with the Redis
# role in the web node's environment, and one in another environment.
describe 'uwsgi_fleet::web, with no Redis attribute, on a Chef server' do
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  redis_role = UwsgiFleetSpec.attribute_defaults['redis']['role_name']
  let(:redis_nodes) { { 'redis1' => 'production', 'redis9' => 'staging' } }
  let(:chef_runner) do
    ChefSpec::ServerRunner.new(chef_runner_options) do |node, server|
      %w(production staging).each { |env| server.create_environment(env, description: env) }
      redis_nodes.each { |name, env| server.create_node(name, chef_environment: env, run_list: ["role[#{redis_role}]"]) }
      node.chef_environment('production')
    end
  end
  let(:chef_run) { chef_runner.converge('uwsgi_fleet::web') }

  before { allow(Chef::Log).to receive(:warn) }

  it 'warns about the Redis node of its own environment only' do
    chef_run
    expect(Chef::Log).to have_received(:warn).with(/\Auwsgi_fleet: this web node uses no Redis, but redis1 has the role #{redis_role}:/)
  end

  context 'with no node of the Redis role (local mode on a fresh machine)' do
    let(:redis_nodes) { {} }

    it 'says nothing' do
      chef_run
      expect(Chef::Log).not_to have_received(:warn).with(/uses no Redis/)
    end
  end
end
