require_relative '../spec_helper'
require 'shellwords'

describe 'uwsgi_fleet::web' do
  platform 'debian', '12'
  include_context 'uwsgi_fleet machine stubs'

  fleetctl = '/usr/local/sbin/uwsgi-fleetctl'
  nginx_conf = '/etc/nginx/nginx.conf'
  config_path = '/etc/uwsgi_fleet/store_app.json'
  key_path = '/etc/uwsgi_fleet/default_project.key'
  conf = ->(port) { "/etc/supervisor/conf.d/uwsgi_fleet_#{port}.conf" }
  packages = 'nginx, supervisor, uwsgi-core, uwsgi-plugin-python3, python3, iproute2, libbrotli1, libzstd1'

  # The rendered content of +path+ in the run.
  def rendered(path)
    resource = chef_run.find_resource(:template, path) || chef_run.find_resource(:file, path)
    raise "no template or file #{path} in the run" unless resource
    ChefSpec::Renderer.new(chef_run, resource).content
  end

  # The uWSGI arguments of the instance on +port+, as supervisor reads its command= line.
  def instance_args(port)
    command = rendered("/etc/supervisor/conf.d/uwsgi_fleet_#{port}.conf")[/^command=(.*)$/, 1]
    Shellwords.split(command.gsub('%%', '%'))
  end

  def upstream_servers
    rendered('/etc/nginx/nginx.conf').scan(/^\s*server (\S+) max_fails=1 fail_timeout=2s;$/).flatten
  end

  # Position of a resource in the resource collection (the converge order).
  def position(type, name)
    chef_run.resource_collection.all_resources.index { |r| r.declared_type == type && r.name == name } ||
      raise("no #{type}[#{name}] in the run")
  end

  context 'with the default attributes (Fauxhai debian 12 has 1 CPU: processes auto -> 2 instances)' do
    it 'converges' do
      expect { chef_run }.not_to raise_error
    end

    it 'installs nginx, supervisor, uWSGI with the python3 plugin, python3, iproute2 and the brotli and zstd libraries in one package resource' do
      expect(chef_run).to install_package(packages)
      expect(chef_run.package(packages).package_name).to eq(
        %w(nginx supervisor uwsgi-core uwsgi-plugin-python3 python3 iproute2 libbrotli1 libzstd1)
      )
    end

    it 'refreshes the apt lists at most daily, before installing (a fresh node has none)' do
      expect(chef_run).to periodic_apt_update('uwsgi_fleet').with(frequency: 86_400)
      expect(position(:apt_update, 'uwsgi_fleet')).to be < position(:package, packages)
    end

    context 'when the apt lists are empty although the periodic stamp is fresh' do
      before { allow(UwsgiFleet::Packages).to receive(:apt_lists_empty?).and_return(true) }

      it 'updates them regardless, before installing' do
        expect(chef_run).to update_apt_update('uwsgi_fleet: the apt lists are empty')
        expect(position(:apt_update, 'uwsgi_fleet: the apt lists are empty')).to be < position(:package, packages)
      end
    end

    context 'when the apt lists are there' do
      before { allow(UwsgiFleet::Packages).to receive(:apt_lists_empty?).and_return(false) }

      it 'leaves them to the periodic update' do
        expect(chef_run).not_to update_apt_update('uwsgi_fleet: the apt lists are empty')
      end
    end

    it 'tests the candidate nginx config as the run leaves it, before anything else changes' do
      candidate = chef_run.resource_collection.all_resources.find { |r| r.name.to_s.end_with?('uwsgi_fleet-nginx.conf.candidate') }
      expect(candidate.verifications.map { |v| v.instance_variable_get(:@command) }).to eq(
        ["#{fleetctl} nginx-test --put #{nginx_conf}=%{path} --remove /etc/nginx/sites-enabled/default"]
      )
      first_change = chef_run.resource_collection.all_resources.index { |r| r.declared_type == :user }
      expect(chef_run.resource_collection.all_resources.index(candidate)).to be < first_change
      # The tool it runs is installed first.
      expect(position(:cookbook_file, fleetctl)).to be < chef_run.resource_collection.all_resources.index(candidate)
    end

    it 'creates the app user as a system user without a login or home' do
      expect(chef_run).to create_user('uwsgi_fleet').with(system: true, shell: '/usr/sbin/nologin', home: '/nonexistent', manage_home: false)
    end

    it 'creates /etc/uwsgi_fleet readable by the app group only' do
      expect(chef_run).to create_directory('/etc/uwsgi_fleet').with(owner: 'root', group: 'uwsgi_fleet', mode: '0750')
    end

    it 'creates the FIFO directory owned by the app user' do
      expect(chef_run).to create_directory('/var/lib/uwsgi_fleet').with(owner: 'uwsgi_fleet', group: 'uwsgi_fleet', mode: '0750')
    end

    it 'creates the spool directory 0750, owned by the app user' do
      expect(chef_run).to create_directory('/var/spool/uwsgi_fleet').with(owner: 'uwsgi_fleet', group: 'uwsgi_fleet', mode: '0750')
    end

    it 'creates the log directory' do
      expect(chef_run).to create_directory('/var/log/uwsgi_fleet').with(mode: '0755')
    end

    it 'creates the user before the directories it owns' do
      expect(position(:user, 'uwsgi_fleet')).to be < position(:directory, '/etc/uwsgi_fleet')
    end

    it 'installs uwsgi-fleetctl' do
      expect(chef_run).to create_cookbook_file(fleetctl).with(source: 'uwsgi_fleetctl.py', mode: '0755')
    end

    it 'writes the fleet manifest for uwsgi-fleetctl' do
      expect(chef_run).to create_file('/etc/uwsgi_fleet/fleet.json').with(mode: '0644')
      expect(JSON.parse(rendered('/etc/uwsgi_fleet/fleet.json'))).to include(
        'ports' => [9000, 9001], 'bind_address' => '127.0.0.1', 'threads' => 4, 'user' => 'uwsgi_fleet',
        'fifo_dir' => '/var/lib/uwsgi_fleet', 'program_prefix' => 'uwsgi_fleet_', 'listen' => 80
      )
    end

    it 'keeps project keys out of the world-readable manifest' do
      key = JSON.parse(rendered(config_path))['projects']['1']['public_key']
      expect(rendered('/etc/uwsgi_fleet/fleet.json')).not_to include(key)
    end

    it 'deploys the store app, reloading the instances one by one afterwards' do
      expect(chef_run).to create_remote_directory('/opt/uwsgi_fleet/store_app').with(source: 'store_app', files_mode: '0644', purge: true)
      expect(chef_run.remote_directory('/opt/uwsgi_fleet/store_app')).to notify('execute[rolling reload of uwsgi instances]').to(:run).delayed
    end

    it 'writes the app config 0640, group app user, sensitive' do
      expect(chef_run).to create_file(config_path).with(owner: 'root', group: 'uwsgi_fleet', mode: '0640', sensitive: true)
    end

    it 'reloads the instances one by one after a config change' do
      expect(chef_run.file(config_path)).to notify('execute[rolling reload of uwsgi instances]').to(:run).delayed
    end

    it 'defines the rolling reload over every port, run only by notification' do
      reload = chef_run.execute('rolling reload of uwsgi instances')
      expect(reload).to do_nothing
      expect(reload.command).to eq("#{fleetctl} reload 9000 9001")
    end

    it "configures project '1' with a new random key and the default rate limit" do
      config = JSON.parse(rendered(config_path))
      expect(config['projects'].keys).to eq(['1'])
      expect(config['projects']['1']['public_key']).to match(/\A[0-9a-f]{32}\z/)
      expect(config['projects']['1']['rate_limit']).to eq('events_per_second' => 1000, 'burst' => 2000)
      expect(config).to include('instances' => 2, 'max_body_bytes' => 2 * 1024**2, 'spool_dir' => '/var/spool/uwsgi_fleet',
                                'max_event_bytes' => 1_048_576, 'simulated_hops' => 0, 'simulated_hop_ms' => 2)
    end

    it 'stores the default key it configured, root-only' do
      key = JSON.parse(rendered(config_path))['projects']['1']['public_key']
      expect(chef_run).to create_file(key_path).with(mode: '0600', content: "#{key}\n")
    end

    it 'enables and starts supervisor' do
      expect(chef_run).to enable_service('supervisor')
      expect(chef_run).to start_service('supervisor')
    end

    it 'waits, at the end of a run that started supervisor, until every instance serves' do
      expect(chef_run.service('supervisor')).to notify('execute[wait until uwsgi instances serve]').to(:run).delayed
      wait = chef_run.execute('wait until uwsgi instances serve')
      expect(wait.command).to eq('/usr/local/sbin/uwsgi-fleetctl wait 9000 9001')
      expect(wait).to do_nothing
    end

    it 'writes one supervisor program file per instance port, and no more' do
      expect(chef_run).to create_template(conf.call(9000)).with(source: 'uwsgi_instance.conf.erb', mode: '0644')
      expect(chef_run).to create_template(conf.call(9001)).with(source: 'uwsgi_instance.conf.erb', mode: '0644')
      instance_templates = chef_run.find_resources(:template).map(&:name).grep(%r{\A/etc/supervisor/conf\.d/})
      expect(instance_templates).to eq([conf.call(9000), conf.call(9001)])
    end

    it 'renders each program: one uWSGI process with 4 threads on its own port' do
      [9000, 9001].each do |port|
        expect(chef_run).to render_file(conf.call(port))
          .with_content("[program:uwsgi_fleet_#{port}]\n")
          .with_content(%r{^command=/usr/bin/uwsgi --plugin python3 --master --processes 1 --threads 4 --socket 127\.0\.0\.1:#{port} })
          .with_content("--master-fifo /var/lib/uwsgi_fleet/#{port}.fifo")
          .with_content("--env STORE_APP_INSTANCE\\=#{port}")
      end
    end

    it 'renders the uWSGI options that make reloads and stops graceful' do
      args = instance_args(9001)
      expect(args).to include('--lazy-apps', '--need-app', '--die-on-term', '--exit-on-reload')
      expect(args.each_cons(2).to_a).to include(
        ['--processes', '1'], ['--threads', '4'], ['--socket', '127.0.0.1:9001'], ['--module', 'store_app.wsgi:application'],
        ['--env', 'STORE_APP_CONFIG=/etc/uwsgi_fleet/store_app.json'], ['--env', 'STORE_APP_INSTANCE=9001']
      )
    end

    it 'stops instances with HUP (a graceful stop with --exit-on-reload), waiting harakiri + 5 s' do
      expect(chef_run).to render_file(conf.call(9000))
        .with_content(/^stopsignal=HUP$/)
        .with_content(/^stopwaitsecs=65$/)
        .with_content(/^user=uwsgi_fleet$/)
        .with_content(%r{^directory=/opt/uwsgi_fleet$})
        .with_content(%r{^stdout_logfile=/var/log/uwsgi_fleet/9000\.log$})
        .with_content(/^killasgroup=true$/)
    end

    it 'applies each instance right after its program file changes' do
      [9000, 9001].each do |port|
        expect(chef_run.template(conf.call(port))).to notify("execute[apply uwsgi instance #{port}]").to(:run).immediately
        apply = chef_run.execute("apply uwsgi instance #{port}")
        expect(apply).to do_nothing
        expect(apply.command).to eq("#{fleetctl} apply #{port}")
      end
    end

    it 'starts supervisor before the instances and applies them before nginx points at them' do
      expect(position(:service, 'supervisor')).to be < position(:template, conf.call(9000))
      expect(position(:template, conf.call(9001))).to be < position(:template, nginx_conf)
    end

    it 'removes the default nginx site, reloading nginx' do
      expect(chef_run).to delete_link('/etc/nginx/sites-enabled/default')
      expect(chef_run.link('/etc/nginx/sites-enabled/default')).to notify('service[nginx]').to(:reload).delayed
    end

    it 'renders nginx.conf' do
      expect(chef_run).to create_template(nginx_conf).with(source: 'nginx.conf.erb', mode: '0644')
    end

    it 'verifies nginx.conf with nginx -t, as the run leaves the whole config, before it replaces the live one' do
      verifications = chef_run.template(nginx_conf).verifications
      expect(verifications.map { |v| v.instance_variable_get(:@command) }).to eq(
        ["#{fleetctl} nginx-test --put #{nginx_conf}=%{path} --remove /etc/nginx/sites-enabled/default"]
      )
    end

    it 'reloads nginx immediately after nginx.conf changes' do
      expect(chef_run.template(nginx_conf)).to notify('service[nginx]').to(:reload).immediately
    end

    it 'lists exactly one upstream server per instance' do
      expect(upstream_servers).to eq(%w(127.0.0.1:9000 127.0.0.1:9001))
    end

    it 'balances with least_conn over a shared zone' do
      expect(chef_run).to render_file(nginx_conf)
        .with_content(/^\s+least_conn;$/)
        .with_content(/^\s+zone uwsgi_fleet 64k;$/)
    end

    it 'hides the nginx version' do
      expect(chef_run).to render_file(nginx_conf).with_content(/^\s+server_tokens off;$/)
    end

    it 'passes the client address and scheme to the app as HTTP_* params' do
      expect(chef_run).to render_file(nginx_conf)
        .with_content(/^\s+uwsgi_param HTTP_X_FORWARDED_FOR \$proxy_add_x_forwarded_for;$/)
        .with_content(/^\s+uwsgi_param HTTP_X_REAL_IP \$remote_addr;$/)
        .with_content(/^\s+uwsgi_param HTTP_X_FORWARDED_PROTO \$scheme;$/)
        .with_content(/^\s+uwsgi_pass uwsgi_fleet;$/)
    end

    it 'limits request bodies and times out slow clients' do
      expect(chef_run).to render_file(nginx_conf)
        .with_content(/^\s+client_max_body_size 2m;$/)
        .with_content(/^\s+client_body_buffer_size 1m;$/)
        .with_content(/^\s+client_header_timeout 10s;$/)
        .with_content(/^\s+client_body_timeout 10s;$/)
        .with_content(/^\s+send_timeout 10s;$/)
        .with_content(/^\s+uwsgi_read_timeout 65s;$/)
    end

    it "answers nginx's own errors with JSON from named locations" do
      error_page = ->(status) { rendered(nginx_conf)[/^ *error_page #{status} = @error_#{status};\n(?:.*\n){4}/].lines.map(&:strip) }
      expect(error_page.call(502)).to eq(
        ['error_page 502 = @error_502;', 'location @error_502 {', 'default_type application/json;', %(return 502 '{"error":"no backend available"}';), '}']
      )
      expect(error_page.call(494)).to eq(
        ['error_page 494 = @error_494;', 'location @error_494 {', 'default_type application/json;', %(return 400 '{"error":"request headers too large"}';), '}']
      )
      expect(rendered(nginx_conf).scan(/^\s+error_page (\d+) = @error_\1;$/).flatten.map(&:to_i)).to eq(UwsgiFleet::Nginx::ERROR_REASONS.keys)
    end

    it 'listens on port 80 for any name, with auto worker processes' do
      expect(chef_run).to render_file(nginx_conf)
        .with_content(/^\s+listen 80 default_server;$/)
        .with_content(/^\s+server_name _;$/)
        .with_content(/^worker_processes auto;$/)
    end

    it 'enables and starts nginx, reloading it through uwsgi-fleetctl' do
      expect(chef_run).to enable_service('nginx')
      expect(chef_run).to start_service('nginx')
      expect(chef_run.service('nginx').reload_command).to eq("#{fleetctl} nginx-reload")
    end

    it 'retires nothing when no stale program files exist' do
      expect(chef_run.find_resources(:file).map(&:name).grep(%r{/conf\.d/})).to be_empty
      expect(chef_run.find_resources(:execute).map(&:name).grep(/\Aretire/)).to be_empty
    end
  end

  context 'with 3 processes of 8 threads, another base port and user' do
    default_attributes['uwsgi_fleet']['web']['processes'] = 3
    default_attributes['uwsgi_fleet']['web']['threads'] = 8
    default_attributes['uwsgi_fleet']['web']['base_port'] = 8100
    default_attributes['uwsgi_fleet']['web']['user'] = 'svc_web'
    default_attributes['uwsgi_fleet']['web']['harakiri'] = 30
    default_attributes['uwsgi_fleet']['app']['spool_dir'] = '/srv/spool'

    it 'writes a program file per port, each with one process of 8 threads' do
      [8100, 8101, 8102].each do |port|
        expect(chef_run).to create_template(conf.call(port))
        expect(instance_args(port).each_cons(2).to_a).to include(['--processes', '1'], ['--threads', '8'], ['--socket', "127.0.0.1:#{port}"])
        expect(chef_run).to render_file(conf.call(port)).with_content(/^user=svc_web$/).with_content(/^stopwaitsecs=35$/)
      end
      expect(chef_run).not_to create_template(conf.call(8103))
    end

    it 'lists the 3 instances upstream' do
      expect(upstream_servers).to eq(%w(127.0.0.1:8100 127.0.0.1:8101 127.0.0.1:8102))
      expect(chef_run).to render_file(nginx_conf).with_content(/^\s+uwsgi_read_timeout 35s;$/)
    end

    it 'runs as, and gives its directories to, the configured user' do
      expect(chef_run).to create_user('svc_web').with(system: true)
      expect(chef_run).to create_directory('/srv/spool').with(owner: 'svc_web', group: 'svc_web', mode: '0750')
      expect(chef_run).to create_directory('/etc/uwsgi_fleet').with(group: 'svc_web')
      expect(chef_run).to create_file(config_path).with(group: 'svc_web')
    end

    it 'tells every instance there are 3 of them and reloads all 3' do
      expect(JSON.parse(rendered(config_path))['instances']).to eq(3)
      expect(chef_run.execute('rolling reload of uwsgi instances').command).to eq("#{fleetctl} reload 8100 8101 8102")
    end
  end

  context "with processes 'auto' on 8 CPUs" do
    automatic_attributes['cpu']['total'] = 8

    it 'runs 8 instances on ports 9000..9007' do
      (9000..9007).each { |port| expect(chef_run).to create_template(conf.call(port)) }
      expect(chef_run).not_to create_template(conf.call(9008))
      expect(upstream_servers).to eq((9000..9007).map { |port| "127.0.0.1:#{port}" })
      expect(JSON.parse(rendered('/etc/uwsgi_fleet/fleet.json'))['ports']).to eq((9000..9007).to_a)
    end
  end

  context 'with an explicit processes count on 8 CPUs' do
    automatic_attributes['cpu']['total'] = 8
    default_attributes['uwsgi_fleet']['web']['processes'] = 2

    it 'runs the configured count' do
      expect(upstream_servers).to eq(%w(127.0.0.1:9000 127.0.0.1:9001))
    end
  end

  context 'when stale instance files exist (only 2 ports wanted)' do
    default_attributes['uwsgi_fleet']['web']['processes'] = 2
    let(:supervisor_confs) { [conf.call(9000), conf.call(9005), conf.call(9001), conf.call(9002)] }

    it 'deletes the program file of each stale instance' do
      expect(chef_run).to delete_file(conf.call(9005))
      expect(chef_run).to delete_file(conf.call(9002))
    end

    it 'keeps the wanted instances' do
      expect(chef_run).not_to delete_file(conf.call(9000))
      expect(chef_run).not_to delete_file(conf.call(9001))
      expect(chef_run).to create_template(conf.call(9000))
    end

    it 'retires each stale instance right after its file goes' do
      [9002, 9005].each do |port|
        expect(chef_run.file(conf.call(port))).to notify("execute[retire uwsgi instance #{port}]").to(:run).immediately
        retire = chef_run.execute("retire uwsgi instance #{port}")
        expect(retire).to do_nothing
        expect(retire.command).to eq("#{fleetctl} apply #{port}")
      end
    end

    it 'retires them only after nginx stopped using them' do
      expect(position(:template, nginx_conf)).to be < position(:file, conf.call(9002))
      expect(position(:service, 'nginx')).to be < position(:file, conf.call(9002))
    end

    it 'lists only the wanted instances upstream' do
      expect(upstream_servers).to eq(%w(127.0.0.1:9000 127.0.0.1:9001))
    end
  end

  context 'when a default project key is already on the node' do
    let(:existing_key) { 'feedface' * 4 }

    it 'keeps it' do
      expect(JSON.parse(rendered(config_path))['projects']).to eq(
        '1' => { 'public_key' => 'feedface' * 4, 'rate_limit' => { 'events_per_second' => 1000, 'burst' => 2000 } }
      )
      expect(chef_run).to create_file(key_path).with(content: "#{'feedface' * 4}\n")
    end
  end

  context 'with projects configured' do
    default_attributes['uwsgi_fleet']['app']['projects'] = {
      '42' => { 'public_key' => 'a' * 32 },
      '7' => { 'public_key' => 'b' * 32, 'rate_limit' => { 'events_per_second' => 5, 'burst' => 10 } },
    }

    it 'configures exactly those, with the per-project rate limit falling back to the app one' do
      expect(JSON.parse(rendered(config_path))['projects']).to eq(
        '42' => { 'public_key' => 'a' * 32, 'rate_limit' => { 'events_per_second' => 1000, 'burst' => 2000 } },
        '7' => { 'public_key' => 'b' * 32, 'rate_limit' => { 'events_per_second' => 5, 'burst' => 10 } }
      )
    end

    it 'does not write a default project key' do
      expect(chef_run).not_to create_file(key_path)
    end
  end

  context 'with balance round_robin' do
    default_attributes['uwsgi_fleet']['web']['nginx']['balance'] = 'round_robin'

    it 'renders no balancing directive (round robin is the nginx default)' do
      content = rendered(nginx_conf)
      upstream = content[/upstream uwsgi_fleet \{(.*?)\}/m, 1].lines.reject { |line| line.strip.start_with?('#') }.join
      expect(upstream).not_to match(/least_conn|ip_hash|random/)
      expect(upstream).to include('zone uwsgi_fleet 64k;')
    end
  end

  { 'random_two' => 'random two least_conn;', 'ip_hash' => 'ip_hash;' }.each do |balance, directive|
    context "with balance #{balance}" do
      default_attributes['uwsgi_fleet']['web']['nginx']['balance'] = balance

      it "renders #{directive}" do
        expect(chef_run).to render_file(nginx_conf).with_content(/^\s+#{Regexp.escape(directive)}$/)
        expect(rendered(nginx_conf)).not_to match(/^\s+least_conn;$/)
      end
    end
  end

  context 'with an IPv6 bind address and other nginx settings' do
    default_attributes['uwsgi_fleet']['web']['bind_address'] = '::1'
    default_attributes['uwsgi_fleet']['web']['nginx']['listen'] = 8080
    default_attributes['uwsgi_fleet']['web']['nginx']['server_name'] = 'sentry.example.com sentry'
    default_attributes['uwsgi_fleet']['web']['nginx']['client_max_body_size'] = '20m'
    default_attributes['uwsgi_fleet']['web']['nginx']['worker_processes'] = 4
    default_attributes['uwsgi_fleet']['web']['nginx']['client_timeout'] = 30

    it 'binds the instances and points nginx at bracketed IPv6 addresses' do
      expect(instance_args(9000).each_cons(2).to_a).to include(['--socket', '[::1]:9000'])
      expect(upstream_servers).to eq(%w([::1]:9000 [::1]:9001))
    end

    it 'renders the nginx settings' do
      expect(chef_run).to render_file(nginx_conf)
        .with_content(/^\s+listen 8080 default_server;$/)
        .with_content(/^\s+server_name sentry\.example\.com sentry;$/)
        .with_content(/^\s+client_max_body_size 20m;$/)
        .with_content(/^worker_processes 4;$/)
        .with_content(/^\s+client_body_timeout 30s;$/)
    end

    it 'tells the app the body limit in bytes' do
      expect(JSON.parse(rendered(config_path))['max_body_bytes']).to eq(20 * 1024**2)
    end
  end

  context 'with a wsgi_file app in a virtualenv, with env' do
    default_attributes['uwsgi_fleet']['web']['app']['module'] = nil
    default_attributes['uwsgi_fleet']['web']['app']['wsgi_file'] = '/srv/app/wsgi.py'
    default_attributes['uwsgi_fleet']['web']['app']['chdir'] = '/srv/app'
    default_attributes['uwsgi_fleet']['web']['app']['pythonpath'] = ['/srv/app', '/srv/lib']
    default_attributes['uwsgi_fleet']['web']['app']['virtualenv'] = '/srv/venv'
    default_attributes['uwsgi_fleet']['web']['app']['env'] = { 'LOG_FORMAT' => '%(message)s', 'GREETING' => 'hello world' }

    it 'renders the app source, paths and env into each command' do
      pairs = instance_args(9000).each_cons(2).to_a
      expect(pairs).to include(
        ['--wsgi-file', '/srv/app/wsgi.py'], ['--chdir', '/srv/app'], ['--pythonpath', '/srv/app'], ['--pythonpath', '/srv/lib'],
        ['--virtualenv', '/srv/venv'], ['--env', 'LOG_FORMAT=%(message)s'], ['--env', 'GREETING=hello world']
      )
      expect(instance_args(9000)).not_to include('--module')
    end

    it 'doubles % in the command for supervisor' do
      command = rendered(conf.call(9000))[/^command=(.*)$/, 1]
      expect(command.scan(/%+/)).to all(eq('%%'))
    end

    it 'runs each instance in chdir' do
      expect(chef_run).to render_file(conf.call(9000)).with_content(%r{^directory=/srv/app$})
    end
  end

  context 'with a % in chdir' do
    default_attributes['uwsgi_fleet']['web']['app']['chdir'] = '/opt/100%app'

    it 'doubles it in directory=, which supervisor expands like command=' do
      directory = rendered(conf.call(9000))[/^directory=(.*)$/, 1]
      expect(directory).to eq('/opt/100%%app')
      # What supervisor makes of it ('%%' -> '%') is the directory uWSGI is given.
      expect(instance_args(9000).each_cons(2).to_a).to include(['--chdir', directory.gsub('%%', '%')])
    end
  end

  context 'with an invalid attribute (threads 0)' do
    default_attributes['uwsgi_fleet']['web']['threads'] = 0

    it 'fails the run with InvalidAttribute naming the attribute' do
      expect { chef_run }.to raise_error(
        UwsgiFleet::InvalidAttribute, /node\['uwsgi_fleet'\]\['web'\]\['threads'\] must be an integer from 1 to 256; got 0/
      )
    end

    it 'fails before any resource is declared' do
      expect_any_instance_of(Chef::ResourceCollection).not_to receive(:insert)
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidAttribute)
    end
  end

  context 'with several invalid attributes' do
    default_attributes['uwsgi_fleet']['web']['nginx']['listen'] = 9001
    default_attributes['uwsgi_fleet']['web']['processes'] = 4
    default_attributes['uwsgi_fleet']['app']['spool_dir'] = '/'

    it 'reports them all at once' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidAttribute) { |error|
        expect(error.message).to include("node['uwsgi_fleet']['web']['nginx']['listen'] is 9001, a port already used by a uWSGI instance (9000..9003)")
        expect(error.message).to include("node['uwsgi_fleet']['app']['spool_dir'] must be an absolute path other than /")
      }
    end
  end

  context 'when the listen backlog exceeds net.core.somaxconn' do
    let(:somaxconn) { "512\n" }

    it 'fails the run' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidAttribute, /\['listen_backlog'\] must be an integer from 1 to 512; got 1024/)
    end
  end
end
