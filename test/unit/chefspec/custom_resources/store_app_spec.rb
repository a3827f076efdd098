require_relative '../spec_helper'
require 'shellwords'

describe 'uwsgi_fleet_store_app' do
  step_into :uwsgi_fleet_store_app
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  config_path = '/etc/uwsgi_fleet/store/store_app.json'
  key_path = '/etc/uwsgi_fleet/store/default_project.key'
  packages = UwsgiFleet::Packages::STORE_APP.join(', ')

  def config
    JSON.parse(rendered('/etc/uwsgi_fleet/store/store_app.json'))
  end

  context 'with the defaults' do
    recipe do
      uwsgi_fleet_store_app 'store'
    end

    it 'installs python3, jsonschema and the brotli and zstd libraries, refreshing the apt lists first' do
      expect(chef_run).to install_package(packages)
      expect(chef_run).to periodic_apt_update('uwsgi_fleet').with(frequency: 86_400)
      expect(position(:apt_update, 'uwsgi_fleet')).to be < position(:package, packages)
    end

    it 'creates the user that runs it' do
      expect(chef_run).to create_user('uwsgi_fleet').with(system: true, shell: '/usr/sbin/nologin', home: '/nonexistent', manage_home: false)
    end

    it "creates its code and config directories as root's, with their shared parents" do
      %w(/opt/uwsgi_fleet /opt/uwsgi_fleet/store /etc/uwsgi_fleet /etc/uwsgi_fleet/store /var/spool/uwsgi_fleet).each do |dir|
        expect(chef_run).to create_directory(dir).with(owner: 'root', group: 'root', mode: '0755')
      end
      expect(position(:directory, '/opt/uwsgi_fleet')).to be < position(:directory, '/opt/uwsgi_fleet/store')
    end

    it "creates the spool as the user's alone, after the user" do
      expect(chef_run).to create_directory('/var/spool/uwsgi_fleet/store').with(owner: 'uwsgi_fleet', group: 'uwsgi_fleet', mode: '0750')
      expect(position(:user, 'uwsgi_fleet')).to be < position(:directory, '/var/spool/uwsgi_fleet/store')
    end

    it 'checks every directory before root manages it' do
      chef_run
      %w(/opt/uwsgi_fleet/store /etc/uwsgi_fleet/store /var/spool/uwsgi_fleet/store).each do |dir|
        expect(UwsgiFleet::Paths).to have_received(:problems).with(dir)
      end
    end

    it 'deploys the app, purging files that are no longer in the cookbook' do
      expect(chef_run).to create_remote_directory('/opt/uwsgi_fleet/store/store_app')
        .with(cookbook: 'uwsgi_fleet', source: 'store_app', files_mode: '0644', purge: true)
    end

    it 'runs no forwarder and removes none (no Redis, and none on the node)' do
      expect(resources.map(&:to_s).grep(/forwarder/)).to be_empty
      expect(chef_run.find_resources(:execute)).to be_empty
      expect(chef_run).not_to create_directory('/var/log/uwsgi_fleet/store_app_store')
      expect(chef_run.remote_directory('/opt/uwsgi_fleet/store/store_app').delayed_notifications).to be_empty
    end

    it "configures project '1' with a new random key and the default rate limit" do
      expect(config['projects'].keys).to eq(['1'])
      expect(config['projects']['1']['public_key']).to match(/\A[0-9a-f]{32}\z/)
      expect(config['projects']['1']['rate_limit']).to eq('events_per_second' => 1000, 'burst' => 2000)
    end

    it 'keeps that key, root-only, for the next converge' do
      key = config['projects']['1']['public_key']
      expect(chef_run).to create_file(key_path).with(mode: '0600', content: "#{key}\n", sensitive: true)
    end

    it 'writes the config the app trusts: 0640 root:<user>, sensitive (it holds the keys)' do
      expect(chef_run).to create_file(config_path).with(owner: 'root', group: 'uwsgi_fleet', mode: '0640', sensitive: true)
      expect(config).to eq(
        'config_version' => 1,
        'projects' => config['projects'], 'spool_dir' => '/var/spool/uwsgi_fleet/store', 'max_body_bytes' => 100 * 1024**2,
        'max_envelope_bytes' => 100 * 1024**2, 'max_event_bytes' => 1_048_576, 'max_attachment_bytes' => 20 * 1024**2,
        'simulated_hops' => 0, 'simulated_hop_ms' => 2,
        'quota' => { 'backend' => 'local', 'state_file' => '/var/spool/uwsgi_fleet/store/.quota' }, 'stream' => nil
      )
      expect(rendered(config_path)).to end_with("}\n")
      expect(rendered(config_path)).to match_schema(:store_app)
    end

    context 'when a default project key is already on the node' do
      let(:node_files) { { key_path => "#{'feedface' * 4}\n" } }

      it 'keeps it' do
        expect(config['projects']).to eq('1' => { 'public_key' => 'feedface' * 4, 'rate_limit' => { 'events_per_second' => 1000, 'burst' => 2000 } })
        expect(chef_run).to create_file(key_path).with(content: "#{'feedface' * 4}\n")
      end
    end

    context "when the shared parents are already root's" do
      let(:root_dirs) { UwsgiFleetSpec::ROOT_DIRS + %w(/opt/uwsgi_fleet /etc/uwsgi_fleet /var/spool/uwsgi_fleet) }

      it 'leaves them alone' do
        expect(chef_run.find_resources(:directory).map(&:name)).to eq(%w(/opt/uwsgi_fleet/store /etc/uwsgi_fleet/store /var/spool/uwsgi_fleet/store))
      end
    end

    context 'when the spool is unsafe' do
      before do
        allow(UwsgiFleet::Paths).to receive(:problems).with('/var/spool/uwsgi_fleet/store')
                                                      .and_return(['/var/spool/uwsgi_fleet is not owned by root'])
      end

      it 'stops before the app or its config is written' do
        expect { chef_run }.to raise_error(UwsgiFleet::Paths::Unsafe, /not owned by root/)
      end
    end
  end

  context 'with projects, paths and limits of its own' do
    recipe do
      uwsgi_fleet_store_app 'sentry' do
        projects('42' => { 'public_key' => 'a' * 32 },
                 '7' => { 'public_key' => 'b' * 32, 'rate_limit' => { 'events_per_second' => 5, 'burst' => 10 } })
        rate_limit('events_per_second' => 50, 'burst' => 100)
        user 'sentry_web'
        install_dir '/srv/sentry'
        config_path '/etc/sentry/store.json'
        key_path '/etc/sentry/default.key'
        spool_dir '/srv/spool/sentry'
        max_body_size '20m'
        max_event_bytes 2_097_152
        max_attachment_bytes 5_242_880
        simulated_hops 2
        simulated_hop_ms 0.5
      end
    end

    let(:config) { JSON.parse(rendered('/etc/sentry/store.json')) }

    it 'configures exactly those projects, sorted, with the rate limit falling back to the app one' do
      expect(config['projects']).to eq(
        '42' => { 'public_key' => 'a' * 32, 'rate_limit' => { 'events_per_second' => 50, 'burst' => 100 } },
        '7' => { 'public_key' => 'b' * 32, 'rate_limit' => { 'events_per_second' => 5, 'burst' => 10 } }
      )
    end

    it 'writes no default project key' do
      expect(chef_run).not_to create_file('/etc/sentry/default.key')
    end

    it 'uses its paths, user and limits' do
      expect(chef_run).to create_remote_directory('/srv/sentry/store_app')
      expect(chef_run).to create_file('/etc/sentry/store.json').with(group: 'sentry_web')
      expect(chef_run).to create_directory('/srv/spool/sentry').with(owner: 'sentry_web', mode: '0750')
      expect(chef_run).to create_user('sentry_web')
      expect(config).to include('spool_dir' => '/srv/spool/sentry', 'max_body_bytes' => 20 * 1024**2, 'max_envelope_bytes' => 20 * 1024**2,
                                'max_event_bytes' => 2_097_152, 'max_attachment_bytes' => 5_242_880, 'simulated_hops' => 2,
                                'simulated_hop_ms' => 0.5)
    end
  end

  context 'with its own envelope cap and a trimmed stream' do
    recipe do
      uwsgi_fleet_store_app 'store' do
        redis_url 'redis://10.0.0.5:6379/0'
        redis_password 'p' * 16
        max_envelope_size '50m'
        stream_maxlen 1_000_000
      end
    end

    it 'writes them, what only the app could set before, into a config of the schema' do
      expect(config['max_envelope_bytes']).to eq(UwsgiFleet::Sizes.to_bytes('50m'))
      expect(config['max_body_bytes']).to eq(UwsgiFleet::Sizes.to_bytes(UwsgiFleet::StoreApp::MAX_BODY_SIZE))
      expect(config['stream']['maxlen']).to eq(1_000_000)
      expect(rendered(config_path)).to match_schema(:store_app)
    end
  end

  context 'with an envelope cap below one event' do
    recipe do
      uwsgi_fleet_store_app 'store' do
        max_event_bytes 2_097_152
        max_envelope_size '1m'
        stream_maxlen 0
      end
    end

    it 'is refused before anything converges, naming both' do
      expect_refused_before_converge(/stream_maxlen must be an integer of at least 1, or nil; got 0\n  max_envelope_size must be at least max_event_bytes \(2097152\); got "1m"/)
    end
  end

  context 'with the shared Redis (one quota for the fleet, events forwarded), under supervisor' do
    program = '/etc/supervisor/conf.d/uwsgi_fleet_forwarder_store.conf'
    apply = 'apply uwsgi_fleet_forwarder_store'
    log_dir = '/var/log/uwsgi_fleet/store_app_store'

    recipe do
      uwsgi_fleet_store_app 'store' do
        redis_url 'redis://10.0.0.5:6379/0'
        redis_password 'p' * 16
      end
    end

    it "installs Redis's Python client and supervisor with the app's packages" do
      expect(chef_run).to install_package("#{packages}, python3-redis, supervisor")
      expect(chef_run.find_resources(:package).size).to eq(1)
    end

    context 'with a password holding characters a URL gives a meaning to' do
      recipe do
        uwsgi_fleet_store_app 'store' do
          redis_url 'redis://10.0.0.5:6379/0'
          redis_password 'pass/word?#%@:0123456789'
        end
      end

      it 'percent-encodes it in both URLs (the Redis client decodes it)' do
        url = 'redis://:pass%2Fword%3F%23%25%40%3A0123456789@10.0.0.5:6379/0'
        expect([config['quota']['url'], config['stream']['url']]).to eq([url, url])
      end
    end

    it 'keeps the quota in the same Redis by default (quota_redis_url is redis_url)' do
      expect(chef_run.find_resource(:uwsgi_fleet_store_app, 'store'))
        .to have_attributes(quota_redis_url: 'redis://10.0.0.5:6379/0', quota_backend: 'redis', forward_events: true)
    end

    it "writes the quota and stream of the config with Redis's URL and password" do
      url = "redis://:#{'p' * 16}@10.0.0.5:6379/0"
      expect(config['quota']).to eq('backend' => 'redis', 'state_file' => '/var/spool/uwsgi_fleet/store/.quota', 'url' => url,
                                    'key_prefix' => 'uwsgi_fleet:quota:', 'timeout_ms' => 50)
      expect(config['stream']).to eq('url' => url, 'key_prefix' => 'uwsgi_fleet:events:', 'batch' => 100,
                                     'status_file' => '/var/spool/uwsgi_fleet/store/.forwarder-status.json', 'dedup_seconds' => 3600,
                                     'maxlen' => nil)
      expect(chef_run).to create_file(config_path).with(mode: '0640', group: 'uwsgi_fleet', sensitive: true)
      expect(rendered(config_path)).to match_schema(:store_app)
    end

    it 'declares the password sensitive (Chef never shows its value)' do
      expect(resource_class(:uwsgi_fleet_store_app).properties[:redis_password].sensitive?).to be(true)
    end

    it "gives the forwarder a log directory of the user's alone, under a shared parent of root's" do
      expect(chef_run).to create_directory('/var/log/uwsgi_fleet').with(owner: 'root', mode: '0755')
      expect(chef_run).to create_directory(log_dir).with(owner: 'uwsgi_fleet', group: 'uwsgi_fleet', mode: '0750')
      expect(UwsgiFleet::Paths).to have_received(:problems).with(log_dir)
    end

    it 'starts supervisor, then writes the program, applied at once when it changes: added, then restarted' do
      expect(chef_run).to enable_service('supervisor')
      expect(chef_run).to start_service('supervisor')
      expect(chef_run).to create_template(program).with(cookbook: 'uwsgi_fleet', source: 'forwarder_program.conf.erb', mode: '0644')
      expect(chef_run.template(program)).to notify("execute[#{apply}]").to(:run).immediately
      expect(chef_run.execute(apply)).to do_nothing
      expect(chef_run.execute(apply).command).to eq(
        'supervisorctl reread && supervisorctl update uwsgi_fleet_forwarder_store && supervisorctl restart uwsgi_fleet_forwarder_store'
      )
      expect(position(:service, 'supervisor')).to be < position(:template, program)
    end

    it 'writes the program after the config and the log directory it uses' do
      expect(position(:file, config_path)).to be < position(:template, program)
      expect(position(:directory, log_dir)).to be < position(:template, program)
    end

    describe 'the program' do
      let(:content) { rendered(program) }

      it "runs the app's forwarder with this config, as the app user, from the app's directory" do
        expect(content).to include("[program:uwsgi_fleet_forwarder_store]\n")
          .and match(%r{^command=/usr/bin/python3 -m store_app\.forwarder --config /etc/uwsgi_fleet/store/store_app\.json$})
          .and match(/^user=uwsgi_fleet$/).and match(%r{^directory=/opt/uwsgi_fleet/store$})
      end

      it 'keeps it running, stops it with TERM (the batch in flight finishes) and logs to the log directory' do
        expect(content).to match(/^autostart=true$/).and match(/^autorestart=true$/).and match(/^stopsignal=TERM$/)
          .and match(/^stopwaitsecs=20$/).and match(%r{^stdout_logfile=#{log_dir}/forwarder\.log$}).and match(/^redirect_stderr=true$/)
      end
    end

    it 'applies the forwarder again at the end of the run when the code or the config changed' do
      expect(chef_run.remote_directory('/opt/uwsgi_fleet/store/store_app')).to notify("execute[#{apply}]").to(:run).delayed
      expect(chef_run.file(config_path)).to notify("execute[#{apply}]").to(:run).delayed
    end

    # (`supervisorctl update NAME` restarts a program only when its program file changed.)
    it 'restarts the forwarder when only the code or the config changed (it reads its config once, at start)' do
      expect(chef_run.execute(apply).command).to end_with('&& supervisorctl restart uwsgi_fleet_forwarder_store')
    end

    context 'with % in its paths (supervisor expands %(name)s)' do
      recipe do
        uwsgi_fleet_store_app 'store' do
          redis_url 'redis://10.0.0.5:6379/0'
          redis_password 'p' * 16
          install_dir '/opt/100%store'
          config_path '/etc/100%store/store_app.json'
          log_dir '/var/log/100%store'
        end
      end

      it 'doubles each % of command=, directory= and stdout_logfile=' do
        command = rendered(program)[/^command=(.*)$/, 1]
        expect(command.scan(/%+/).map(&:size)).to all(be_even)
        expect(Shellwords.split(command.gsub('%%', '%'))).to eq(['/usr/bin/python3', '-m', 'store_app.forwarder', '--config', '/etc/100%store/store_app.json'])
        expect(rendered(program)).to match(%r{^directory=/opt/100%%store$}).and match(%r{^stdout_logfile=/var/log/100%%store/forwarder\.log$})
      end
    end
  end

  context 'with the shared Redis, under systemd' do
    unit = '/etc/systemd/system/uwsgi-fleet-forwarder-store.service'
    apply = 'apply uwsgi-fleet-forwarder-store.service'

    recipe do
      uwsgi_fleet_store_app 'store' do
        redis_url 'redis://10.0.0.5:6379/0'
        redis_password 'p' * 16
        process_manager 'systemd'
        install_dir '/opt/100%store$HOME'
      end
    end

    it 'installs no supervisor, and starts none' do
      expect(chef_run).to install_package("#{packages}, python3-redis")
      expect(chef_run.find_resources(:service)).to be_empty
    end

    it 'writes a unit, applied at once when it changes: enabled and restarted' do
      expect(chef_run).to create_template(unit).with(cookbook: 'uwsgi_fleet', source: 'forwarder.service.erb', mode: '0644')
      expect(chef_run.template(unit)).to notify("execute[#{apply}]").to(:run).immediately
      expect(chef_run.execute(apply)).to do_nothing
      expect(chef_run.execute(apply).command).to eq(
        'systemctl daemon-reload && systemctl enable uwsgi-fleet-forwarder-store.service && systemctl restart uwsgi-fleet-forwarder-store.service'
      )
    end

    it 'restarts it at the end of the run when the code or the config changed' do
      expect(chef_run.remote_directory('/opt/100%store$HOME/store_app')).to notify("execute[#{apply}]").to(:run).delayed
      expect(chef_run.file(config_path)).to notify("execute[#{apply}]").to(:run).delayed
    end

    describe 'the unit' do
      let(:content) { rendered(unit) }

      it 'runs as the app user, restarts always, stops with TERM within 20 s, and is wanted by multi-user.target' do
        expect(content).to match(/^User=uwsgi_fleet$/).and match(/^Group=uwsgi_fleet$/).and match(/^Restart=always$/)
          .and match(/^TimeoutStopSec=20$/).and match(/^WantedBy=multi-user\.target$/)
          .and match(%r{^StandardOutput=append:/var/log/uwsgi_fleet/store_app_store/forwarder\.log$})
      end

      it 'quotes each argument of ExecStart=, and doubles % but keeps $ in WorkingDirectory= (specifiers only)' do
        expect(content).to match(%r{^ExecStart="/usr/bin/python3" "-m" "store_app\.forwarder" "--config" "#{Regexp.escape(config_path)}"$})
          .and match(%r{^WorkingDirectory=/opt/100%%store\$HOME$})
      end
    end
  end

  context "with the shared Redis's two instances: the events' (redis_url) and the quota's (quota_redis_url)" do
    recipe do
      uwsgi_fleet_store_app 'store' do
        redis_url 'redis://10.0.0.5:6379/0'
        quota_redis_url 'redis://10.0.0.5:6380/0'
        redis_password 'p' * 16
      end
    end

    it "keeps the quota in the quota's instance and streams the events to the events' one, with the one password" do
      expect(config['quota']).to include('backend' => 'redis', 'url' => "redis://:#{'p' * 16}@10.0.0.5:6380/0")
      expect(config['stream']).to include('url' => "redis://:#{'p' * 16}@10.0.0.5:6379/0")
    end

    it 'runs the forwarder' do
      expect(chef_run).to create_template('/etc/supervisor/conf.d/uwsgi_fleet_forwarder_store.conf')
    end
  end

  context 'with a Redis for the quota only (quota_redis_url, no redis_url)' do
    recipe do
      uwsgi_fleet_store_app 'store' do
        quota_redis_url 'redis://10.0.0.5:6380/0'
        redis_password 'p' * 16
      end
    end

    it "keeps the quota there, installs Redis's client, and forwards nothing (no supervisor, no forwarder)" do
      expect(chef_run).to install_package("#{packages}, python3-redis")
      expect(config['quota']).to include('backend' => 'redis', 'url' => "redis://:#{'p' * 16}@10.0.0.5:6380/0")
      expect(config['stream']).to be_nil
      expect(resources.map(&:to_s).grep(/forwarder/)).to be_empty
    end
  end

  context 'with the events forwarded and the quota left on the node (quota_redis_url nil)' do
    recipe do
      uwsgi_fleet_store_app 'store' do
        redis_url 'redis://10.0.0.5:6379/0'
        quota_redis_url nil
        redis_password 'p' * 16
      end
    end

    it 'keeps the quota local, and still forwards' do
      expect(config['quota']).to eq('backend' => 'local', 'state_file' => '/var/spool/uwsgi_fleet/store/.quota')
      expect(config['stream']).to include('url' => "redis://:#{'p' * 16}@10.0.0.5:6379/0")
    end
  end

  context 'with the quota in Redis and no forwarding' do
    recipe do
      uwsgi_fleet_store_app 'store' do
        redis_url 'redis://10.0.0.5:6379/0'
        redis_password 'p' * 16
        forward_events false
      end
    end

    it "installs Redis's client but no supervisor, and runs no forwarder" do
      expect(chef_run).to install_package("#{packages}, python3-redis")
      expect(config['quota']['backend']).to eq('redis')
      expect(config['stream']).to be_nil
      expect(resources.map(&:to_s).grep(/forwarder/)).to be_empty
    end
  end

  context 'with forwarding turned off while the node still has the forwarder (supervisor)' do
    program = '/etc/supervisor/conf.d/uwsgi_fleet_forwarder_store.conf'
    let(:node_files) { { program => "[program:uwsgi_fleet_forwarder_store]\n" } }

    recipe do
      uwsgi_fleet_store_app 'store'
    end

    it 'deletes the program and retires it at once (supervisor stops it and forgets it), after the config without a stream' do
      expect(chef_run).to delete_file(program)
      expect(chef_run.file(program)).to notify('execute[retire uwsgi_fleet_forwarder_store]').to(:run).immediately
      expect(chef_run.execute('retire uwsgi_fleet_forwarder_store')).to do_nothing
      expect(chef_run.execute('retire uwsgi_fleet_forwarder_store').command).to eq('supervisorctl reread && supervisorctl update uwsgi_fleet_forwarder_store')
      expect(config['stream']).to be_nil
      expect(position(:file, config_path)).to be < position(:file, program)
      expect(chef_run.find_resources(:template)).to be_empty
    end

    it 'neither restarts it nor starts supervisor for it' do
      expect(chef_run.find_resources(:execute).map(&:name)).to eq(['retire uwsgi_fleet_forwarder_store'])
      expect(chef_run.find_resources(:service)).to be_empty
    end
  end

  context 'with forwarding turned off while the node still has the forwarder (systemd)' do
    unit = '/etc/systemd/system/uwsgi-fleet-forwarder-store.service'
    let(:node_files) { { unit => "[Unit]\n" } }

    recipe do
      uwsgi_fleet_store_app 'store' do
        process_manager 'systemd'
      end
    end

    it 'stops and disables the unit, then deletes it' do
      expect(chef_run.service('uwsgi-fleet-forwarder-store.service').action).to eq(%i(stop disable))
      expect(chef_run).to stop_service('uwsgi-fleet-forwarder-store.service')
      expect(chef_run).to disable_service('uwsgi-fleet-forwarder-store.service')
      expect(chef_run).to delete_file(unit)
      expect(position(:service, 'uwsgi-fleet-forwarder-store.service')).to be < position(:file, unit)
    end

    it 'restarts nothing (the service resource has stopped it)' do
      expect(chef_run.find_resources(:execute)).to be_empty
      expect(chef_run.file(unit).immediate_notifications + chef_run.file(unit).delayed_notifications).to be_empty
    end
  end

  context 'forwarding under systemd on a node whose init is not systemd' do
    let(:init_comm) { "init\n" }

    recipe do
      file '/tmp/declared before the store app'
      uwsgi_fleet_store_app 'store' do
        redis_url 'redis://10.0.0.5:6379/0'
        redis_password 'p' * 16
        process_manager 'systemd'
      end
    end

    it 'refuses at compile time, before any resource converges (the unit would never run)' do
      expect_refused_before_converge(
        "uwsgi_fleet_store_app[store]: invalid properties, nothing was changed:\n  " \
        'process_manager must be supervisor on this node: systemd is not its init (PID 1); got "systemd"'
      )
    end

    context 'without forwarding (no forwarder to run)' do
      recipe do
        uwsgi_fleet_store_app 'store' do
          process_manager 'systemd'
        end
      end

      it 'is valid' do
        expect(chef_run).to create_file(config_path)
      end
    end
  end

  context 'using Redis without its password' do
    recipe do
      file '/tmp/declared before the store app'
      uwsgi_fleet_store_app 'store' do
        redis_url 'redis://10.0.0.5:6379/0'
      end
    end

    it 'refuses at compile time, before any resource converges, naming each use of the URL (never printed)' do
      expect_refused_before_converge(
        "uwsgi_fleet_store_app[store]: invalid properties, nothing was changed:\n  " \
        "redis_url and redis_password must be set when forward_events is true; got [sensitive]\n  " \
        'quota_redis_url and redis_password must be set when quota_backend is redis; got [sensitive]'
      )
    end
  end

  context 'with several bad properties' do
    recipe do
      uwsgi_fleet_store_app 'store' do
        spool_dir '/'
        projects('x' => { 'public_key' => 'nope' })
        simulated_hops 11
      end
    end

    it 'raises at compile time, before any resource converges, one message naming every bad property' do
      expect_refused_before_converge(
        "uwsgi_fleet_store_app[store]: invalid properties, nothing was changed:\n  " \
        "spool_dir must be an absolute path other than / (no .. segments); got \"/\"\n  " \
        "simulated_hops must be an integer from 0 to 10; got 11\n  " \
        "projects has project id \"x\"; ids must be strings of digits (1 to 10 of them, no leading 0); got \"x\"\n  " \
        "projects['x']['public_key'] must be 32 lowercase hex characters, as Sentry keys are; got \"nope\""
      )
    end
  end

  context 'action :delete' do
    recipe do
      uwsgi_fleet_store_app 'store' do
        action :delete
      end
    end

    it 'removes the code, the config and the key' do
      expect(chef_run).to delete_directory('/opt/uwsgi_fleet/store/store_app').with(recursive: true)
      expect(chef_run).to delete_file(config_path)
      expect(chef_run).to delete_file(key_path)
    end

    it 'keeps the spool (it holds accepted events), and installs nothing' do
      expect(chef_run.find_resources(:directory).map(&:name)).to eq(['/opt/uwsgi_fleet/store/store_app'])
      expect(chef_run.find_resources(:package)).to be_empty
    end

    it 'has no forwarder to remove when the node has none' do
      expect(resources.map(&:to_s).grep(/forwarder/)).to be_empty
    end

    context 'when the node has the forwarder' do
      let(:node_files) { { '/etc/supervisor/conf.d/uwsgi_fleet_forwarder_store.conf' => "[program:uwsgi_fleet_forwarder_store]\n" } }

      it 'removes it first, before the code it runs, and retires it at once' do
        expect(chef_run).to delete_file('/etc/supervisor/conf.d/uwsgi_fleet_forwarder_store.conf')
        expect(position(:file, '/etc/supervisor/conf.d/uwsgi_fleet_forwarder_store.conf'))
          .to be < position(:directory, '/opt/uwsgi_fleet/store/store_app')
        expect(chef_run.file('/etc/supervisor/conf.d/uwsgi_fleet_forwarder_store.conf'))
          .to notify('execute[retire uwsgi_fleet_forwarder_store]').to(:run).immediately
        expect(chef_run.execute('retire uwsgi_fleet_forwarder_store').command)
          .to eq('supervisorctl reread && supervisorctl update uwsgi_fleet_forwarder_store')
      end
    end

    context 'when the node has the forwarder as a systemd unit' do
      unit = '/etc/systemd/system/uwsgi-fleet-forwarder-store.service'
      let(:node_files) { { unit => "[Unit]\n" } }

      recipe do
        uwsgi_fleet_store_app 'store' do
          process_manager 'systemd'
          action :delete
        end
      end

      it 'stops and disables it, then deletes its unit, before the code it runs' do
        expect(chef_run.service('uwsgi-fleet-forwarder-store.service').action).to eq(%i(stop disable))
        expect(chef_run).to delete_file(unit)
        expect(position(:service, 'uwsgi-fleet-forwarder-store.service')).to be < position(:file, unit)
        expect(position(:file, unit)).to be < position(:directory, '/opt/uwsgi_fleet/store/store_app')
        expect(chef_run.find_resources(:execute)).to be_empty
      end
    end
  end

  describe 'the resource' do
    recipe do
      uwsgi_fleet_store_app 'store' do
        action :nothing
      end
    end

    let(:klass) { resource_class(:uwsgi_fleet_store_app) }

    it 'describes itself and every property it declares' do
      expect(klass.description).to match(/store endpoint/)
      own_properties(klass).each do |name, property|
        expect(property.description).to be_a(String).and(match(/\w{3}/)), "#{name} has no description"
      end
    end

    it 'has the actions :create (the default) and :delete' do
      expect(klass.default_action).to eq([:create])
      expect(klass.allowed_actions).to include(:create, :delete)
    end

    it 'validates every property it declares (a value of any wrong type is named in the message)' do
      chef_run
      own_properties(klass).each_key do |name|
        resource = klass.new('store', chef_run.run_context)
        resource.send(name, Object.new)
        expect { resource.after_created }.to raise_error(UwsgiFleet::InvalidConfiguration, /^  #{name}\b/), "#{name} escaped validation"
      end
    end

    it 'is valid with its defaults' do
      expect { klass.new('store', chef_run.run_context).after_created }.not_to raise_error
    end
  end
end
