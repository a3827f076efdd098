require_relative '../spec_helper'
require 'open3'

describe 'uwsgi_fleet' do
  step_into :uwsgi_fleet, :uwsgi_fleet_supervisor_instances, :uwsgi_fleet_systemd_instances
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  fleetctl = '/usr/local/sbin/uwsgi-fleetctl'
  manifest = '/etc/uwsgi_fleet/api/fleet.json'
  site = '/etc/nginx/conf.d/uwsgi_fleet_api.conf'
  conf = ->(port) { "/etc/supervisor/conf.d/uwsgi_fleet_api_#{port}.conf" }
  fleet_packages = UwsgiFleet::Packages::FLEET.join(', ')
  test_site = "#{fleetctl} nginx-test --put #{site}=%{path}"

  # The candidates live in the run's file cache (a new one per ChefSpec runner).
  let(:candidate_site) { chef_run && File.join(Chef::Config[:file_cache_path], 'uwsgi_fleet-api-uwsgi_fleet_api.conf.candidate') }
  let(:candidate_main) { chef_run && File.join(Chef::Config[:file_cache_path], 'uwsgi_fleet-api-nginx.conf.candidate') }

  # The upstream servers of the site file, in order.
  def upstream_servers(path = '/etc/nginx/conf.d/uwsgi_fleet_api.conf')
    rendered(path).scan(/^\s*server (\S+) max_fails=1 fail_timeout=2s max_conns=\d+;$/).flatten
  end

  # The max_conns of each upstream server, in order.
  def upstream_max_conns(path = '/etc/nginx/conf.d/uwsgi_fleet_api.conf')
    rendered(path).scan(/^\s*server \S+ .*max_conns=(\d+);$/).flatten.map(&:to_i)
  end

  # The lines of the error page of +status+ (its error_page and its named location), stripped.
  def error_page(content, status)
    content[/^ *error_page #{status} = @error_#{status};\n *location @error_#{status} \{\n(?:.*\n)*? {4}\}\n/].lines.map(&:strip)
  end

  context 'with an app module, under supervisor (the default)' do
    recipe do
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
        chdir '/opt/test_api'
        user 'api_fleet'
        processes 3
        threads 2
        base_port 9100
        server_name 'api.example'
      end
    end

    describe 'packages' do
      it 'refreshes the apt lists at most daily, before installing (a fresh node has none)' do
        expect(chef_run).to periodic_apt_update('uwsgi_fleet').with(frequency: 86_400)
        expect(position(:apt_update, 'uwsgi_fleet')).to be < position(:package, "#{fleet_packages}, supervisor")
      end

      it 'waits for another apt (unattended-upgrades on a fresh image): update retried, the install waiting for the lock' do
        waits = { retries: UwsgiFleet::Packages::APT_RETRIES, retry_delay: UwsgiFleet::Packages::APT_RETRY_DELAY }
        expect(chef_run).to periodic_apt_update('uwsgi_fleet').with(waits)
        expect(chef_run.find_resource(:apt_update, 'uwsgi_fleet: the apt lists are empty')).to have_attributes(waits)
        expect(chef_run).to install_package("#{fleet_packages}, supervisor")
          .with(options: ['-o', "DPkg::Lock::Timeout=#{UwsgiFleet::Packages::APT_RETRIES * UwsgiFleet::Packages::APT_RETRY_DELAY}"])
      end

      it 'leaves lists that are there to the periodic update' do
        expect(chef_run).not_to update_apt_update('uwsgi_fleet: the apt lists are empty')
      end

      context 'when the apt lists are empty although the periodic stamp is fresh' do
        let(:apt_lists_empty) { true }

        it 'updates them regardless, before installing' do
          expect(chef_run).to update_apt_update('uwsgi_fleet: the apt lists are empty')
          expect(position(:apt_update, 'uwsgi_fleet: the apt lists are empty')).to be < position(:package, "#{fleet_packages}, supervisor")
        end
      end

      it 'installs nginx, uWSGI with python3, iproute2 and supervisor in one package resource' do
        expect(chef_run).to install_package("#{fleet_packages}, supervisor")
        expect(chef_run.find_resources(:package).size).to eq(1)
      end

      it 'installs uwsgi-fleetctl' do
        expect(chef_run).to create_cookbook_file(fleetctl).with(cookbook: 'uwsgi_fleet', source: 'uwsgi-fleetctl', mode: '0755')
        expect(chef_run).to create_remote_directory(UwsgiFleet::Tool::PACKAGE).with(source: 'uwsgi_fleetctl')
      end
    end

    describe 'the candidate nginx config' do
      it 'is tested whole (with every other site) before anything else changes, by the tool just installed' do
        template = chef_run.template(candidate_site)
        expect(template).to be_truthy
        expect(verify_commands(template)).to eq([test_site])
        expect(template.source).to eq('nginx_site.conf.erb')
        expect(template.mode).to eq('0600')
        expect(position(:cookbook_file, fleetctl)).to be < position(:template, candidate_site)
        first_change = resources.index { |r| %i(user directory file).include?(r.declared_type) && r.name != candidate_main }
        expect(position(:template, candidate_site)).to be < first_change
      end

      it 'is the very site file that goes live' do
        expect(rendered(candidate_site)).to eq(rendered(site))
      end

      it 'has no main config to test without nginx_main_config' do
        expect(chef_run).not_to create_file(candidate_main)
      end
    end

    describe 'user, directories and manifest' do
      it 'creates the fleet user as a system user without a login or home' do
        expect(chef_run).to create_user('api_fleet').with(system: true, shell: '/usr/sbin/nologin', home: '/nonexistent', manage_home: false)
      end

      it "creates the shared parents as root's, readable by all (a fresh node has none)" do
        %w(/etc/uwsgi_fleet /var/lib/uwsgi_fleet /var/log/uwsgi_fleet).each do |dir|
          expect(chef_run).to create_directory(dir).with(owner: 'root', group: 'root', mode: '0755')
        end
      end

      it "creates the fleet's conf_dir as root's, and its FIFO and log directories as the user's alone" do
        expect(chef_run).to create_directory('/etc/uwsgi_fleet/api').with(owner: 'root', group: 'root', mode: '0755')
        expect(chef_run).to create_directory('/var/lib/uwsgi_fleet/api').with(owner: 'api_fleet', group: 'api_fleet', mode: '0750')
        expect(chef_run).to create_directory('/var/log/uwsgi_fleet/api').with(owner: 'api_fleet', group: 'api_fleet', mode: '0750')
      end

      it 'creates the user before the directories it owns, and parents before children' do
        expect(position(:user, 'api_fleet')).to be < position(:directory, '/var/lib/uwsgi_fleet/api')
        expect(position(:directory, '/var/lib/uwsgi_fleet')).to be < position(:directory, '/var/lib/uwsgi_fleet/api')
      end

      context "when the shared parents are already root's" do
        let(:root_dirs) { UwsgiFleetSpec::ROOT_DIRS + %w(/etc/uwsgi_fleet /var/lib/uwsgi_fleet /var/log/uwsgi_fleet) }

        it 'leaves them alone' do
          expect(chef_run.find_resources(:directory).map(&:name)).to eq(%w(/etc/uwsgi_fleet/api /var/lib/uwsgi_fleet/api /var/log/uwsgi_fleet/api))
        end
      end

      it 'checks every directory before root manages it' do
        chef_run
        %w(/etc/uwsgi_fleet /etc/uwsgi_fleet/api /var/lib/uwsgi_fleet/api /var/log/uwsgi_fleet/api).each do |dir|
          expect(UwsgiFleet::Paths).to have_received(:problems).with(dir)
        end
      end

      context 'when a directory is unsafe (a symlink planted by the app user)' do
        before do
          allow(UwsgiFleet::Paths).to receive(:problems).with('/var/lib/uwsgi_fleet/api').and_return(['/var/lib/uwsgi_fleet/api is a symlink'])
        end

        it 'stops the run before the manifest, the instances or nginx change' do
          expect { chef_run }.to raise_error(UwsgiFleet::Paths::Unsafe, %r{root will not manage /var/lib/uwsgi_fleet/api: /var/lib/uwsgi_fleet/api is a symlink})
        end
      end

      it 'writes the manifest, readable by all, with the names and ports of this fleet' do
        expect(chef_run).to create_file(manifest).with(mode: '0644')
        expect(JSON.parse(rendered(manifest))).to include(
          'name' => 'api', 'process_manager' => 'supervisor', 'ports' => [9100, 9101, 9102], 'user' => 'api_fleet',
          'instance_name' => 'uwsgi_fleet_api_{port}', 'upstream' => 'uwsgi_fleet_api', 'site_file' => site, 'threads' => 2,
          'max_conns' => 16, 'server_name' => 'api.example'
        )
        expect(rendered(manifest)).to match_schema(:fleet)
      end
    end

    describe 'the instances' do
      it 'are started by uwsgi_fleet_supervisor_instances with the plan, once the manifest is written' do
        instances = resources[positions(:uwsgi_fleet_supervisor_instances, 'api').first]
        expect(instances.plan.ports).to eq([9100, 9101, 9102])
        expect(instances.performed_actions).to eq([:start])
        expect(position(:file, manifest)).to be < position(:uwsgi_fleet_supervisor_instances, 'api')
      end

      it 'are one program file per port, each applied as soon as it changes' do
        [9100, 9101, 9102].each do |port|
          expect(chef_run).to create_template(conf.call(port)).with(source: 'supervisor_program.conf.erb')
          expect(chef_run.template(conf.call(port))).to notify("execute[apply #{port}]").to(:run).immediately
        end
        expect(chef_run).not_to create_template(conf.call(9103))
      end

      it 'run the app as the fleet user with 2 threads each' do
        expect(rendered(conf.call(9100))).to match(/^user=api_fleet$/)
          .and include('--threads 2 --socket 127.0.0.1:9100').and include('--module api_app:application')
          .and match(%r{^directory=/opt/test_api$})
      end

      it 'are retired, when no longer wanted, only after nginx has stopped using them' do
        prune = positions(:uwsgi_fleet_supervisor_instances, 'api').last
        expect(resources[prune].performed_actions).to eq([:prune])
        expect(prune).to be > position(:template, site)
        expect(prune).to be > position(:execute, 'reload nginx for uwsgi_fleet[api]')
      end
    end

    describe 'the live site file' do
      let(:content) { rendered(site) }

      it 'is tested whole again, as a temp file, before it replaces the live one' do
        expect(chef_run).to create_template(site).with(cookbook: 'uwsgi_fleet', source: 'nginx_site.conf.erb', mode: '0644')
        expect(verify_commands(chef_run.template(site))).to eq([test_site])
      end

      it 'goes live after the instances it lists have started, with nginx running' do
        expect(position(:uwsgi_fleet_supervisor_instances, 'api')).to be < position(:template, site)
        expect(chef_run).to enable_service('nginx')
        expect(chef_run).to start_service('nginx')
        expect(position(:service, 'nginx')).to be < position(:template, site)
      end

      it 'lists exactly the instances upstream, balanced with least_conn over a shared zone' do
        expect(upstream_servers).to eq(%w(127.0.0.1:9100 127.0.0.1:9101 127.0.0.1:9102))
        expect(content.scan(/^\s*server \S+ .*;$/).map(&:strip)).to eq(
          [9100, 9101, 9102].map { |port| "server 127.0.0.1:#{port} max_fails=1 fail_timeout=2s max_conns=16;" }
        )
        expect(content).to include("upstream uwsgi_fleet_api {\n    least_conn;\n    # Shared by all nginx workers")
          .and match(/^\s+zone uwsgi_fleet_api 64k;$/)
      end

      it 'serves on its port and names, not as the default server, without the nginx version' do
        expect(content).to match(/^\s+listen 80;$/).and match(/^\s+server_name api\.example;$/).and match(/^\s+server_tokens off;$/)
      end

      it 'passes requests to the upstream, moving on to the next instance on an error, POSTs too' do
        expect(content).to match(/^\s+uwsgi_pass uwsgi_fleet_api;$/)
          .and match(/^\s+uwsgi_next_upstream error timeout non_idempotent;$/)
          .and match(/^\s+uwsgi_next_upstream_tries 3;$/)
          .and match(/^\s+uwsgi_read_timeout 65s;$/)
      end

      it 'passes the client address and scheme to the app as HTTP_* params' do
        expect(content).to match(/^\s+uwsgi_param HTTP_X_FORWARDED_FOR \$proxy_add_x_forwarded_for;$/)
          .and match(/^\s+uwsgi_param HTTP_X_REAL_IP \$remote_addr;$/)
          .and match(/^\s+uwsgi_param HTTP_X_FORWARDED_PROTO \$scheme;$/)
      end

      it 'limits request bodies and times out slow clients' do
        expect(content).to match(/^\s+client_max_body_size 100m;$/).and match(/^\s+client_body_buffer_size 1m;$/)
          .and match(/^\s+client_header_timeout 10s;$/).and match(/^\s+client_body_timeout 10s;$/).and match(/^\s+send_timeout 10s;$/)
      end

      it "answers nginx's own errors with JSON that browsers may read (CORS)" do
        cors = UwsgiFleetSpec.cors_add_headers
        expect(error_page(content, 504)).to eq(['error_page 504 = @error_504;', 'location @error_504 {', 'default_type application/json;', *cors,
                                                %(return 504 '{"error":"backend timed out"}';), '}'])
        expect(error_page(content, 502)).to start_with('error_page 502 = @error_502;', 'location @error_502 {', 'default_type application/json;', *cors)
          .and end_with(%(return 502 '{"error":"no backend available"}';), '}')
        expect(error_page(content, 494)).to include(%(return 400 '{"error":"request headers too large"}';))
        expect(content.scan(/^\s+error_page (\d+) = @error_\1;$/).flatten.map(&:to_i)).to eq(UwsgiFleet::Nginx::ERROR_REASONS.keys)
      end

      # nginx sets $upstream_addr to the upstream's name when it can pick no server.
      it 'sheds a request no instance can take (each holds max_conns) with a JSON 503, Retry-After and X-Sentry-Rate-Limits, CORS too' do
        page = error_page(content, 502)
        shed = page[page.index('if ($upstream_addr ~ "(^|, )uwsgi_fleet_api$") {')..]
        expect(shed.take(7)).to eq([
                                     'if ($upstream_addr ~ "(^|, )uwsgi_fleet_api$") {',
                                     *UwsgiFleetSpec.cors_add_headers,
                                     'add_header Retry-After "1" always;',
                                     'add_header X-Sentry-Rate-Limits "1::organization:overloaded" always;',
                                     'add_header X-Sentry-Error "overloaded" always;',
                                     "return 503 '#{UwsgiFleet::Nginx.shed_body}';",
                                   ])
        expect(shed[7]).to eq('}')
        expect(JSON.parse(shed[6][/\Areturn 503 '(.*)';\z/, 1])).to eq('error' => 'overloaded: no instance free, retry later', 'retry_after' => 1)
      end

      it 'sheds only in place of the 502 (no other page has the shed block)' do
        expect(content.scan(/^\s*return 503 .*$/).map(&:strip)).to eq(
          ["return 503 '#{UwsgiFleet::Nginx.shed_body}';", %(return 503 '{"error":"service unavailable"}';)]
        )
        expect(content.scan('$upstream_addr').size).to eq(1)
      end

      it 'mentions no removal' do
        expect(content).not_to include('Converged together with')
      end
    end

    describe 'the nginx reload' do
      let(:reload) { chef_run.execute('reload nginx for uwsgi_fleet[api]') }

      it 'tests the live config and reloads nginx through uwsgi-fleetctl, once, after the site file' do
        expect(reload.command).to eq("#{fleetctl} nginx-reload")
        expect(chef_run.find_resources(:execute).map(&:name).grep(/reload nginx/)).to eq(['reload nginx for uwsgi_fleet[api]'])
        expect(position(:template, site)).to be < position(:execute, 'reload nginx for uwsgi_fleet[api]')
      end

      it 'runs only if the site file changed' do
        expect(chef_run).not_to run_execute('reload nginx for uwsgi_fleet[api]')
        expect(guard_passes?(reload)).to be(false)
        chef_run.template(site).updated_by_last_action(true)
        expect(guard_passes?(reload)).to be(true)
      end

      it 'ignores a change of the candidate (it is not live)' do
        chef_run.template(candidate_site).updated_by_last_action(true)
        expect(guard_passes?(reload)).to be(false)
      end
    end

    it 'declares its steps in order: packages, candidate test, user, directories, manifest, instances, nginx, reload, prune' do
      steps = [
        [:apt_update, 'uwsgi_fleet'], [:package, "#{fleet_packages}, supervisor"], [:cookbook_file, fleetctl],
        [:template, candidate_site], [:user, 'api_fleet'], [:directory, '/etc/uwsgi_fleet/api'],
        [:directory, '/var/lib/uwsgi_fleet/api'], [:directory, '/var/log/uwsgi_fleet/api'], [:file, manifest],
        [:uwsgi_fleet_supervisor_instances, 'api'], [:service, 'nginx'], [:template, site],
        [:execute, 'reload nginx for uwsgi_fleet[api]']
      ].map { |type, name| position(type, name) }
      steps << positions(:uwsgi_fleet_supervisor_instances, 'api').last
      expect(steps).to eq(steps.sort)
      expect(steps.uniq.size).to eq(steps.size)
    end

    it 'retires nothing when the node has only the wanted programs' do
      expect(chef_run.find_resources(:execute).map(&:name).grep(/\Aretire/)).to be_empty
    end
  end

  context 'when the node has programs of ports no longer wanted (a shrink)' do
    let(:supervisor_confs) { [9100, 9101, 9102, 9103].map(&conf) + ['/etc/supervisor/conf.d/uwsgi_fleet_store_9000.conf'] }

    recipe do
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
        processes 2
        base_port 9100
      end
    end

    it 'lists only the wanted instances upstream' do
      expect(upstream_servers).to eq(%w(127.0.0.1:9100 127.0.0.1:9101))
    end

    it "retires the others (and no other fleet's) after nginx has been pointed away from them" do
      expect(chef_run.find_resources(:file).map(&:name) & supervisor_confs).to eq([conf.call(9102), conf.call(9103)])
      expect(position(:execute, 'reload nginx for uwsgi_fleet[api]')).to be < position(:file, conf.call(9102))
      expect(chef_run.file(conf.call(9103))).to notify('execute[retire 9103]').to(:run).immediately
    end
  end

  context 'with its FIFOs under /tmp (1777, root-owned: a shared parent that others may write)' do
    before do
      allow(File).to receive(:lstat).and_call_original
      allow(File).to receive(:lstat).with('/tmp').and_return(instance_double(File::Stat, directory?: true, symlink?: false, uid: 0, mode: 0o41777))
      allow(UwsgiFleet::Paths).to receive(:claim?).with('/tmp').and_call_original
    end

    recipe do
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
        fifo_dir '/tmp/api_fifo'
      end
    end

    it 'leaves /tmp as it is (an existing directory of root\'s is not claimed), and makes the FIFO directory in it' do
      expect(chef_run).not_to create_directory('/tmp')
      expect(UwsgiFleet::Paths).to have_received(:claim?).with('/tmp')
      expect(chef_run).to create_directory('/tmp/api_fifo').with(owner: 'uwsgi_fleet', mode: '0750')
    end
  end

  context 'with a shared parent that 0.1.0 left to the app user' do
    before do
      allow(File).to receive(:lstat).and_call_original
      allow(File).to receive(:lstat).with('/var/lib/uwsgi_fleet').and_return(instance_double(File::Stat, uid: 1000))
      allow(UwsgiFleet::Paths).to receive(:claim?).with('/var/lib/uwsgi_fleet').and_call_original
    end

    let(:root_dirs) { UwsgiFleetSpec::ROOT_DIRS + %w(/etc/uwsgi_fleet /var/log/uwsgi_fleet) }

    recipe do
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
      end
    end

    it "claims it back for root (0755), and leaves root's own parents alone" do
      expect(chef_run).to create_directory('/var/lib/uwsgi_fleet').with(owner: 'root', group: 'root', mode: '0755')
      expect(chef_run).not_to create_directory('/etc/uwsgi_fleet')
      expect(chef_run).not_to create_directory('/var/log/uwsgi_fleet')
    end
  end

  context 'with the systemd process manager' do
    recipe do
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
        process_manager 'systemd'
        base_port 9100
        harakiri 30
      end
    end

    it 'installs no supervisor' do
      expect(chef_run).to install_package(fleet_packages)
    end

    it 'names its units uwsgi-fleet-<name>@<port>.service in the manifest' do
      expect(JSON.parse(rendered(manifest))).to include('process_manager' => 'systemd', 'instance_prefix' => 'uwsgi-fleet-api',
                                                        'instance_name' => 'uwsgi-fleet-api@{port}.service')
      expect(rendered(manifest)).to match_schema(:fleet)
    end

    it 'starts the instances as units of one template, then prunes them, around the nginx change' do
      starts, prunes = positions(:uwsgi_fleet_systemd_instances, 'api')
      expect(resources[starts].performed_actions).to eq([:start])
      expect(resources[prunes].performed_actions).to eq([:prune])
      expect(starts).to be < position(:template, site)
      expect(prunes).to be > position(:execute, 'reload nginx for uwsgi_fleet[api]')
      expect(chef_run.find_resources(:uwsgi_fleet_supervisor_instances)).to be_empty
    end

    it 'renders a unit that stops each instance gracefully with SIGHUP' do
      unit = '/etc/systemd/system/uwsgi-fleet-api@.service'
      expect(chef_run).to create_template(unit)
      expect(chef_run.template(unit)).to notify('execute[systemctl daemon-reload]').to(:run).immediately
      expect(chef_run.template(unit)).to notify('execute[restart the running instances one at a time]').to(:run).immediately
      expect(rendered(unit)).to match(/^KillSignal=SIGHUP$/).and match(/^KillMode=mixed$/).and match(/^TimeoutStopSec=35$/)
        .and include('"--socket" "127.0.0.1:%i"')
      %w(uwsgi-fleet-api@9100.service uwsgi-fleet-api@9101.service).each { |name| expect(chef_run).to start_service(name) }
    end

    context 'on a node whose init is not systemd' do
      let(:init_comm) { "tini\n" }

      it 'refuses, naming process_manager, before anything converges' do
        expect_refused_before_converge(/^  process_manager must be supervisor on this node: systemd is not its init \(PID 1\); got "systemd"$/)
      end
    end
  end

  context 'as the default server, replacing the default site and the main config' do
    let(:symlinks) { ['/etc/nginx/sites-enabled/default'] }

    recipe do
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
        base_port 9100
        listen 8080
        default_server true
        balance 'round_robin'
        bind_address '::1'
        remove_sites ['/etc/nginx/sites-enabled/default', '/etc/nginx/conf.d/old.conf']
        nginx_main_config "events {}\nhttp { include /etc/nginx/conf.d/*.conf; }\n"
      end
    end

    let(:removes) { '--remove /etc/nginx/sites-enabled/default --remove /etc/nginx/conf.d/old.conf' }

    it 'renders listen ... default_server, IPv6 backends and no balancing directive (round robin is the default)' do
      expect(rendered(site)).to match(/^\s+listen 8080 default_server;$/)
      expect(upstream_servers).to eq(%w([::1]:9100 [::1]:9101))
      upstream = rendered(site)[/upstream uwsgi_fleet_api \{(.*?)\}/m, 1].lines.reject { |line| line.strip.start_with?('#') }.join
      expect(upstream).not_to match(/least_conn|ip_hash|random/)
    end

    it 'says in the site file which removals it is converged with' do
      expect(rendered(site)).to include('# Converged together with: the removal of /etc/nginx/sites-enabled/default, /etc/nginx/conf.d/old.conf.')
    end

    it 'writes the candidate main config first, and tests the candidate site with it and without the removed sites' do
      expect(chef_run).to create_file(candidate_main).with(mode: '0600', content: "events {}\nhttp { include /etc/nginx/conf.d/*.conf; }\n")
      expect(verify_commands(chef_run.template(candidate_site))).to eq(
        ["#{fleetctl} nginx-test --put #{site}=%{path} --put /etc/nginx/nginx.conf=#{candidate_main} #{removes}"]
      )
      expect(position(:file, candidate_main)).to be < position(:template, candidate_site)
    end

    it 'replaces the main config, tested with the candidate site, before the live site' do
      main = chef_run.file('/etc/nginx/nginx.conf')
      expect(main.content).to eq("events {}\nhttp { include /etc/nginx/conf.d/*.conf; }\n")
      expect(main.mode).to eq('0644')
      expect(verify_commands(main)).to eq(["#{fleetctl} nginx-test --put #{site}=#{candidate_site} --put /etc/nginx/nginx.conf=%{path} #{removes}"])
      expect(position(:file, '/etc/nginx/nginx.conf')).to be < position(:template, site)
      expect(verify_commands(chef_run.template(site))).to eq(
        ["#{fleetctl} nginx-test --put #{site}=%{path} --put /etc/nginx/nginx.conf=#{candidate_main} #{removes}"]
      )
    end

    it 'removes the replaced sites (a link as a link) after the site file, before the one reload' do
      expect(chef_run).to delete_link('/etc/nginx/sites-enabled/default')
      expect(chef_run).to delete_file('/etc/nginx/conf.d/old.conf')
      expect(position(:template, site)).to be < position(:link, '/etc/nginx/sites-enabled/default')
      expect(position(:file, '/etc/nginx/conf.d/old.conf')).to be < position(:execute, 'reload nginx for uwsgi_fleet[api]')
    end

    it 'reloads nginx if any of its files changed: main config, site or a removal' do
      reload = chef_run.execute('reload nginx for uwsgi_fleet[api]')
      expect(guard_passes?(reload)).to be(false)
      chef_run.link('/etc/nginx/sites-enabled/default').updated_by_last_action(true)
      expect(guard_passes?(reload)).to be(true)
    end

    it 'reloads nginx when only the main config changed' do
      reload = chef_run.execute('reload nginx for uwsgi_fleet[api]')
      chef_run.file('/etc/nginx/nginx.conf').updated_by_last_action(true)
      expect(guard_passes?(reload)).to be(true)
    end
  end

  { 'random_two' => 'random two least_conn;', 'ip_hash' => 'ip_hash;' }.each do |balance, directive|
    context "with balance #{balance}" do
      recipe do
        uwsgi_fleet 'api' do
          app_module 'api_app:application'
          balance balance
        end
      end

      it "renders #{directive}" do
        expect(rendered(site)).to match(/^\s+#{Regexp.escape(directive)}$/)
        expect(rendered(site)).not_to match(/^\s+least_conn;$/)
      end
    end
  end

  context 'with its default max_conns and threads (auto: 8 x 8)' do
    recipe do
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
      end
    end

    it 'gives each instance at most 64 requests at once, in the site file and the manifest' do
      expect(upstream_max_conns).to eq([64, 64])
      expect(JSON.parse(rendered(manifest))).to include('threads' => 8, 'listen_backlog' => 1024, 'max_conns' => 64)
    end

    it "tells each request's instance when nginx passed it on and how long it may queue (500 ms, 50 ms sustained)" do
      expect(rendered(site)).to match(/^\s+uwsgi_param FLEET_QUEUE_START \$msec;\n\s+uwsgi_param FLEET_QUEUE_MS "500 50";\n\s+uwsgi_pass /)
      expect(JSON.parse(rendered(manifest))).to include('burst_queue_ms' => 500, 'sustained_queue_ms' => 50)
    end
  end

  context 'with queue bounds set (0 0: never shed on time)' do
    recipe do
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
        burst_queue_ms 0
        sustained_queue_ms 0
      end
    end

    it 'renders them for the app and writes them in the manifest' do
      expect(rendered(site)).to include('uwsgi_param FLEET_QUEUE_MS "0 0";')
      expect(JSON.parse(rendered(manifest))).to include('burst_queue_ms' => 0, 'sustained_queue_ms' => 0)
    end
  end

  context 'with queue bounds out of range' do
    recipe do
      file '/tmp/declared before the fleet'
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
        burst_queue_ms 60_001
        sustained_queue_ms(-1)
      end
    end

    it 'refuses at compile time, naming each and the allowed values' do
      expect_refused_before_converge(
        "uwsgi_fleet[api]: invalid properties, nothing was changed:\n  " \
        "burst_queue_ms must be an integer from 0 to 60000; got 60001\n  " \
        'sustained_queue_ms must be an integer from 0 to 60000; got -1'
      )
    end
  end

  context 'with a sustained queue bound above the burst one' do
    recipe do
      file '/tmp/declared before the fleet'
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
        burst_queue_ms 100
        sustained_queue_ms 200
      end
    end

    it 'refuses at compile time, naming both' do
      expect_refused_before_converge(
        "uwsgi_fleet[api]: invalid properties, nothing was changed:\n  " \
        'sustained_queue_ms must not exceed burst_queue_ms (100); got 200'
      )
    end
  end

  { 0 => 'no limit', 3 => 'an integer' }.each do |max_conns, what|
    context "with max_conns #{max_conns} (#{what})" do
      recipe do
        uwsgi_fleet 'api' do
          app_module 'api_app:application'
          threads 4
          max_conns max_conns
        end
      end

      it 'renders it as it is on every upstream server, and writes it in the manifest' do
        expect(upstream_max_conns).to eq([max_conns, max_conns])
        expect(JSON.parse(rendered(manifest))['max_conns']).to eq(max_conns)
      end
    end
  end

  context 'with a max_conns that is neither auto nor an integer from 0 to 65535' do
    recipe do
      file '/tmp/declared before the fleet'
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
        max_conns '8'
      end
    end

    it 'refuses at compile time, before any resource converges' do
      expect_refused_before_converge(
        "uwsgi_fleet[api]: invalid properties, nothing was changed:\n  " \
        "max_conns must be 'auto' or an integer from 0 (no limit) to 65535; got \"8\""
      )
    end
  end

  context 'running a uwsgi_fleet_store_app declared before it' do
    recipe do
      uwsgi_fleet_store_app 'store' do
        action :nothing
      end
      uwsgi_fleet 'store' do
        store_app 'store'
        env('A' => '1')
        chdir '/ignored'
      end
    end

    it "runs the store app's module from its install_dir, with its config in the environment" do
      command = rendered('/etc/supervisor/conf.d/uwsgi_fleet_store_9000.conf')[/^command=(.*)$/, 1]
      expect(command).to include('--chdir /opt/uwsgi_fleet/store --pythonpath /opt/uwsgi_fleet/store --module store_app.wsgi:application')
        .and include('--env A\\=1 --env STORE_APP_CONFIG\\=/etc/uwsgi_fleet/store/store_app.json')
      expect(rendered('/etc/supervisor/conf.d/uwsgi_fleet_store_9000.conf')).to match(%r{^directory=/opt/uwsgi_fleet/store$})
    end

    it "names the store app's config in the manifest" do
      expect(JSON.parse(rendered('/etc/uwsgi_fleet/store/fleet.json'))['store_app_config']).to eq('/etc/uwsgi_fleet/store/store_app.json')
      expect(rendered('/etc/uwsgi_fleet/store/fleet.json')).to match_schema(:fleet)
    end
  end

  context 'naming a store app that is not declared before it' do
    recipe do
      uwsgi_fleet 'store' do
        store_app 'store'
      end
      uwsgi_fleet_store_app 'store'
    end

    it 'refuses at compile time' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration,
                                         /^  store_app must name a uwsgi_fleet_store_app declared before this fleet; got "store"$/)
    end
  end

  context "running a store app as a user other than the store app's" do
    recipe do
      file '/tmp/declared before the fleet'
      uwsgi_fleet_store_app 'store'
      uwsgi_fleet 'store' do
        store_app 'store'
        user 'web'
      end
    end

    it 'refuses at compile time: the instances could read neither the config (0640 root:uwsgi_fleet) nor the spool (0750)' do
      expect_refused_before_converge(
        "uwsgi_fleet[store]: invalid properties, nothing was changed:\n  " \
        "user must be the store app's user (uwsgi_fleet): it reads its config and spool; got \"web\""
      )
    end
  end

  context "running a store app: nginx takes the store app's body size" do
    recipe do
      uwsgi_fleet_store_app 'store' do
        max_body_size '30m'
        action :nothing
      end
      uwsgi_fleet 'store' do
        store_app 'store'
      end
    end

    it "renders the store app's max_body_size as client_max_body_size, so that nginx and the app refuse the same bodies" do
      expect(chef_run.uwsgi_fleet('store').client_max_body_size).to eq('30m')
      expect(rendered('/etc/nginx/conf.d/uwsgi_fleet_store.conf')).to match(/^\s+client_max_body_size 30m;$/)
    end
  end

  context "running a store app with a client_max_body_size other than the store app's" do
    recipe do
      file '/tmp/declared before the fleet'
      uwsgi_fleet_store_app 'store' do
        max_body_size '30m'
      end
      uwsgi_fleet 'store' do
        store_app 'store'
        client_max_body_size '100m'
        user 'web'
      end
    end

    it 'refuses at compile time, in the one message with every other error' do
      expect_refused_before_converge(
        "uwsgi_fleet[store]: invalid properties, nothing was changed:\n  " \
        "user must be the store app's user (uwsgi_fleet): it reads its config and spool; got \"web\"\n  " \
        "client_max_body_size must be the store app's max_body_size (30m): nginx and the app must refuse the same bodies; got \"100m\""
      )
    end
  end

  context 'running a store app with the same body size written another way' do
    recipe do
      uwsgi_fleet_store_app 'store' do
        max_body_size '30m'
        action :nothing
      end
      uwsgi_fleet 'store' do
        store_app 'store'
        client_max_body_size '30720k'
      end
    end

    it 'is valid: the sizes are compared in bytes' do
      expect(rendered('/etc/nginx/conf.d/uwsgi_fleet_store.conf')).to match(/^\s+client_max_body_size 30720k;$/)
    end
  end

  context "running a store app as the store app's own user" do
    recipe do
      uwsgi_fleet_store_app 'store' do
        user 'web'
        action :nothing
      end
      uwsgi_fleet 'store' do
        store_app 'store'
        user 'web'
      end
    end

    it 'is valid' do
      expect(chef_run).to create_user('web')
    end
  end

  context 'switching process manager on a node where the fleet already runs' do
    let(:node_files) { { manifest => JSON.generate('name' => 'api', 'process_manager' => 'supervisor', 'ports' => [9000, 9001]) } }

    recipe do
      file '/tmp/declared before the fleet'
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
        process_manager 'systemd'
      end
    end

    it 'refuses at compile time, before any resource converges (the old instances would keep the ports)' do
      expect_refused_before_converge(
        "uwsgi_fleet[api]: invalid properties, nothing was changed:\n  " \
        'process_manager is not what the fleet runs under on this node (supervisor): ' \
        'delete the fleet first (action :delete), then create it; got "systemd"'
      )
    end

    context 'when the manifest is 0.1.0\'s (no process_manager: it ran supervisor only)' do
      let(:node_files) { { manifest => JSON.generate('ports' => [9000, 9001]) } }

      it 'takes it as supervisor, and refuses systemd' do
        expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration, /^  process_manager is not what the fleet runs under on this node \(supervisor\)/)
      end
    end

    context 'when the manifest already says systemd' do
      let(:node_files) { { manifest => JSON.generate('name' => 'api', 'process_manager' => 'systemd', 'ports' => [9000, 9001]) } }

      it 'converges' do
        expect(chef_run).to create_file(manifest)
      end
    end
  end

  context 'deleting a fleet with a process manager other than the one it runs under' do
    let(:node_files) do
      { manifest => JSON.generate('name' => 'api', 'process_manager' => 'supervisor', 'ports' => [9000], 'instance_prefix' => 'uwsgi_fleet_api_',
                                  'site_file' => site, 'fifo_dir' => '/var/lib/uwsgi_fleet/api', 'log_dir' => '/var/log/uwsgi_fleet/api') }
    end

    recipe do
      uwsgi_fleet 'api' do
        process_manager 'systemd'
        action :delete
      end
    end

    it 'is not refused (:delete follows the manifest)' do
      expect(chef_run.find_resource(:uwsgi_fleet_supervisor_instances, 'api').performed_actions).to eq([:stop])
    end
  end

  context 'with several bad properties' do
    recipe do
      file '/tmp/declared before the fleet'
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
        threads 0
        balance 'fastest'
      end
    end

    it 'raises at compile time, before any resource converges, one message naming every bad property' do
      expect_refused_before_converge(
        "uwsgi_fleet[api]: invalid properties, nothing was changed:\n  " \
        "threads must be an integer from 1 to 256; got 0\n  " \
        'balance must be one of least_conn, round_robin, random_two, ip_hash; got "fastest"'
      )
    end
  end

  context 'with a listen backlog above net.core.somaxconn' do
    let(:somaxconn) { "512\n" }

    recipe do
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
      end
    end

    it 'refuses the default of 1024, naming the node limit' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration, /^  listen_backlog must be an integer from 1 to 512; got 1024$/)
    end
  end

  context 'with processes auto on 8 CPUs' do
    automatic_attributes['cpu']['total'] = 8

    recipe do
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
      end
    end

    it 'runs 8 instances on ports 9000..9007' do
      expect(JSON.parse(rendered(manifest))['ports']).to eq((9000..9007).to_a)
      expect(upstream_servers.size).to eq(8)
      expect(chef_run).to create_template(conf.call(9007))
    end
  end

  context 'action :reload' do
    recipe do
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
        base_port 9100
        action :reload
      end
    end

    it 'reloads the instances one at a time (a rolling reload)' do
      expect(chef_run.execute('rolling reload of uwsgi_fleet[api]').command).to eq("#{fleetctl} --manifest #{manifest} reload 9100 9101")
    end

    it 'does nothing before the fleet exists (no manifest)' do
      expect(chef_run).not_to run_execute('rolling reload of uwsgi_fleet[api]')
    end

    context 'once the fleet exists' do
      let(:node_files) { { manifest => '{}' } }

      it 'runs' do
        expect(chef_run).to run_execute('rolling reload of uwsgi_fleet[api]')
      end
    end

    it 'changes nothing else' do
      expect(resources.map(&:declared_type)).to eq(%i(uwsgi_fleet execute))
    end
  end

  context 'action :delete' do
    # What the node has: the fleet as a previous converge left it (its manifest
    # says how it runs and where its files are).
    # The manifest a create left (version 1).
    let(:previous) { UwsgiFleetSpec.fleet_plan('api', base_port: 9100, processes: 2).manifest }
    let(:node_files) { { manifest => JSON.generate(previous) } }
    let(:supervisor_confs) { [conf.call(9100), conf.call(9101), '/etc/supervisor/conf.d/uwsgi_fleet_store_9000.conf'] }
    let(:node_dirs) { { '/etc/uwsgi_fleet/api' => true } }

    recipe do
      uwsgi_fleet 'api' do
        threads 0 # a fleet being deleted needs only its name
        action :delete
      end
    end

    it 'removes the site file first, and reloads nginx if it was there' do
      expect(chef_run).to delete_file(site)
      reload = chef_run.execute('reload nginx for uwsgi_fleet[api]')
      expect(position(:file, site)).to be < position(:execute, 'reload nginx for uwsgi_fleet[api]')
      expect(guard_passes?(reload)).to be(false)
      chef_run.file(site).updated_by_last_action(true)
      expect(guard_passes?(reload)).to be(true)
    end

    it 'then stops every instance of the fleet gracefully (and no other fleet)' do
      stop = chef_run.find_resource(:uwsgi_fleet_supervisor_instances, 'api')
      expect(stop.performed_actions).to eq([:stop])
      expect(position(:execute, 'reload nginx for uwsgi_fleet[api]')).to be < position(:uwsgi_fleet_supervisor_instances, 'api')
      expect(chef_run.find_resources(:file).map(&:name) & supervisor_confs).to eq([conf.call(9100), conf.call(9101)])
    end

    it 'then removes its FIFO and log directories, its manifest and its emptied conf_dir' do
      %w(/var/lib/uwsgi_fleet/api /var/log/uwsgi_fleet/api).each do |dir|
        expect(chef_run).to delete_directory(dir).with(recursive: true)
        expect(position(:file, conf.call(9101))).to be < position(:directory, dir)
      end
      expect(chef_run).to delete_file(manifest)
      expect(chef_run).to delete_directory('/etc/uwsgi_fleet/api')
      expect(position(:file, manifest)).to be < position(:directory, '/etc/uwsgi_fleet/api')
    end

    it 'installs, creates and renders nothing' do
      expect(chef_run.find_resources(:package) + chef_run.find_resources(:user) + chef_run.find_resources(:template)).to be_empty
      # (nginx is enabled and started so that it can be reloaded.)
      expect(resources.flat_map(&:performed_actions).uniq - %i(delete stop)).to match_array(%i(enable start))
    end

    it 'leaves a version 1 manifest as it is until it deletes it' do
      expect(chef_run.find_resources(:file).select { |f| f.name == manifest }.map(&:action)).to eq([%i(delete)])
    end

    context 'when the manifest is of a release before manifest_version (unversioned)' do
      let(:node_files) { { manifest => JSON.generate(previous.except('manifest_version', 'process_manager_commands', 'fifo', 'log')) } }
      let(:rewrite) { chef_run.find_resources(:file).find { |f| f.name == manifest && f.action == %i(create) } }

      it 'rewrites it as version 1 before the instances are retired (uwsgi-fleetctl reads version 1 only)' do
        expect(rewrite).not_to be_nil
        expect(resources.index(rewrite)).to be < position(:file, conf.call(9100))
        expect(JSON.parse(rewrite.content)).to eq(previous)
        expect(rewrite.content).to match_schema(:fleet)
      end

      it 'then deletes it' do
        expect(resources.select { |r| r.declared_type == :file && r.name == manifest }.map(&:action)).to eq([%i(create), %i(delete)])
      end
    end

    context 'when its conf_dir holds other files' do
      let(:node_dirs) { { '/etc/uwsgi_fleet/api' => false } }

      it 'keeps it' do
        expect(chef_run).not_to delete_directory('/etc/uwsgi_fleet/api')
      end
    end

    context 'when the manifest says systemd ran it, with other files' do
      let(:previous) do
        super().merge('process_manager' => 'systemd', 'instance_prefix' => 'uwsgi-fleet-api', 'site_file' => '/etc/nginx/sites-enabled/api.conf',
                      'fifo_dir' => '/srv/fifo', 'log_dir' => '/srv/log')
      end
      let(:wants) { ['/etc/systemd/system/multi-user.target.wants/uwsgi-fleet-api@9100.service'] }

      it 'removes what the manifest names, whatever the properties say' do
        expect(chef_run).to delete_file('/etc/nginx/sites-enabled/api.conf')
        expect(chef_run).not_to delete_file(site)
        expect(chef_run.find_resource(:uwsgi_fleet_systemd_instances, 'api').performed_actions).to eq([:stop])
        expect(chef_run).to stop_service('uwsgi-fleet-api@9100.service')
        expect(chef_run).to delete_file('/etc/systemd/system/uwsgi-fleet-api@.service')
        expect(chef_run).to delete_directory('/srv/fifo')
        expect(chef_run).to delete_directory('/srv/log')
      end
    end

    context 'when the fleet is not on the node (no manifest)' do
      let(:node_files) { {} }
      let(:node_dirs) { {} }

      it 'does nothing' do
        expect(resources.map(&:to_s)).to eq(['uwsgi_fleet[api]', 'directory[/etc/uwsgi_fleet/api]'])
        expect(chef_run).not_to delete_directory('/etc/uwsgi_fleet/api')
      end
    end

    context 'with a property that does not make a plan (processes many)' do
      recipe do
        uwsgi_fleet 'api' do
          processes 'many'
          action :delete
        end
      end

      it 'still deletes the fleet (it needs only its name: the plan comes from the manifest)' do
        expect(chef_run).to delete_file(site)
        expect(chef_run).to delete_file(conf.call(9101))
      end
    end

    context 'with properties other than the ones it was created with (ports, prefix, directories)' do
      recipe do
        uwsgi_fleet 'api' do
          base_port 9500
          processes 1
          instance_prefix 'other_'
          fifo_dir '/srv/other_fifo'
          site_file '/etc/nginx/conf.d/other.conf'
          action :delete
        end
      end

      it "builds its plan from the node's manifest alone" do
        stop = chef_run.find_resource(:uwsgi_fleet_supervisor_instances, 'api')
        expect(stop.plan.ports).to eq([9100, 9101])
        expect(stop.plan[:instance_prefix]).to eq('uwsgi_fleet_api_')
        expect(chef_run).to delete_file(site)
        expect(chef_run).not_to delete_file('/etc/nginx/conf.d/other.conf')
        expect(chef_run).to delete_directory('/var/lib/uwsgi_fleet/api')
        expect(chef_run).not_to delete_directory('/srv/other_fifo')
        expect(chef_run).to delete_file(manifest)
      end
    end
  end

  context "action :delete, with the manifest of 0.1.0 (the default recipe's fleet before the upgrade)" do
    # 0.1.0's manifest: no name, process manager, site file or log dir; program_prefix
    # for instance_prefix; the FIFOs right in /var/lib/uwsgi_fleet, logs in /var/log/uwsgi_fleet.
    legacy_manifest = '/etc/uwsgi_fleet/fleet.json'
    legacy_conf = ->(port) { "/etc/supervisor/conf.d/uwsgi_fleet_#{port}.conf" }
    let(:node_files) do
      { legacy_manifest => JSON.generate('ports' => [9000, 9001], 'bind_address' => '127.0.0.1', 'threads' => 4, 'user' => 'uwsgi_fleet',
                                         'fifo_dir' => '/var/lib/uwsgi_fleet', 'program_prefix' => 'uwsgi_fleet_', 'listen' => 80,
                                         'server_name' => '_', 'spool_dir' => '/var/spool/uwsgi_fleet',
                                         'store_app_config' => '/etc/uwsgi_fleet/store_app.json') }
    end
    let(:supervisor_confs) { [legacy_conf.call(9000), legacy_conf.call(9001), conf.call(9100)] }
    let(:node_dirs) { { '/etc/uwsgi_fleet' => false } }
    let(:stop) { chef_run.find_resource(:uwsgi_fleet_supervisor_instances, 'default') }

    recipe do
      uwsgi_fleet 'default' do
        conf_dir '/etc/uwsgi_fleet'
        action :delete
      end
    end

    it "stops 0.1.0's programs, uwsgi_fleet_<port>, under supervisor (and no other fleet's)" do
      expect(stop.performed_actions).to eq([:stop])
      expect(stop.plan.ports).to eq([9000, 9001])
      expect(stop.plan[:process_manager]).to eq('supervisor')
      expect(stop.plan[:instance_prefix]).to eq('uwsgi_fleet_')
      expect(chef_run).to delete_file(legacy_conf.call(9000))
      expect(chef_run).to delete_file(legacy_conf.call(9001))
      expect(chef_run).not_to delete_file(conf.call(9100))
    end

    it "takes the fleet's name from the resource, and the site file and log dir it would have by that name" do
      expect(stop.plan.name).to eq('default')
      expect(chef_run).to delete_file('/etc/nginx/conf.d/uwsgi_fleet_default.conf')
      expect(chef_run).to delete_directory('/var/log/uwsgi_fleet/default').with(recursive: true)
      expect(chef_run).not_to delete_directory('/var/log/uwsgi_fleet')
    end

    it "removes the manifest, and keeps the conf_dir that holds the store app's files" do
      expect(chef_run).to delete_file(legacy_manifest)
      expect(chef_run).not_to delete_directory('/etc/uwsgi_fleet')
    end

    # (0.1.0's FIFOs were <port>.fifo in /var/lib/uwsgi_fleet itself: the upgrade's first run moved them.)
    it "keeps /var/lib/uwsgi_fleet, the shared parent of every fleet's FIFO directory, and removes the fleet's own" do
      expect(chef_run).not_to delete_directory('/var/lib/uwsgi_fleet')
      expect(chef_run).to delete_directory('/var/lib/uwsgi_fleet/default').with(recursive: true)
      expect(stop.plan[:fifo_dir]).to eq('/var/lib/uwsgi_fleet/default')
    end

    it 'rewrites it first as a version 1 manifest of the schema, with what 0.1.0 left unsaid' do
      rewrite = chef_run.find_resources(:file).find { |f| f.name == legacy_manifest && f.action == %i(create) }
      expect(resources.index(rewrite)).to be < position(:file, legacy_conf.call(9000))
      expect(rewrite.content).to match_schema(:fleet)
      expect(JSON.parse(rewrite.content)).to include(
        'name' => 'default', 'process_manager' => UwsgiFleet::LegacyManifest::DEFAULTS_0_1_0['process_manager'],
        'instance_prefix' => UwsgiFleet::LegacyManifest::DEFAULTS_0_1_0['program_prefix'], 'ports' => [9000, 9001], 'threads' => 4,
        'fifo_dir' => '/var/lib/uwsgi_fleet/default', 'store_app_config' => '/etc/uwsgi_fleet/store_app.json'
      )
    end

    # (uwsgi-fleetctl refuses 0.1.0's manifest: the run rewrites it before the first retire.)
    it "retires each program with a command that can read 0.1.0's manifest" do
      expect(chef_run.execute('retire 9000').command).to eq("#{fleetctl} --manifest #{legacy_manifest} apply 9000")
      # The manifest as the node has it when the programs are retired (rewritten before, or 0.1.0's),
      # read by the tool itself: which program does it retire?
      rewritten = resources.take(position(:file, legacy_conf.call(9000)))
                           .select { |r| r.declared_type == :file && r.name == legacy_manifest && r.action.include?(:create) }.last
      tool = "import sys; sys.path.insert(0, #{File.join(UwsgiFleetSpec::COOKBOOK_ROOT, 'files', 'default').inspect}); " \
             'from uwsgi_fleetctl import manifest, process_manager; ' \
             "print(process_manager.ProcessManager(manifest.load('/dev/stdin')).name(9000))"
      out, err, status = Open3.capture3({ 'PYTHONDONTWRITEBYTECODE' => '1' }, '/usr/bin/python3', '-c', tool,
                                        stdin_data: rewritten ? rewritten.content : node_files[legacy_manifest])
      expect([status.success?, out.strip]).to eq([true, 'uwsgi_fleet_9000']), err
    end
  end

  context 'named longer than 19 characters' do
    recipe do
      uwsgi_fleet 'production_eu_west_api' do
        app_module 'api_app:application'
      end
    end

    it 'is valid: its upstream, uwsgi_fleet_<name>, is within 63 characters' do
      expect(rendered('/etc/nginx/conf.d/uwsgi_fleet_production_eu_west_api.conf')).to match(/^upstream uwsgi_fleet_production_eu_west_api \{$/)
    end
  end

  context 'named with the longest name there is (31 characters)' do
    recipe do
      uwsgi_fleet 'a' * 31 do
        app_module 'api_app:application'
      end
    end

    it 'is valid (every name made from it is), its programs uwsgi_fleet_<name>_<port>' do
      expect { chef_run }.not_to raise_error
      expect(chef_run).to create_template("/etc/supervisor/conf.d/uwsgi_fleet_#{'a' * 31}_9000.conf")
    end
  end

  describe 'the resource' do
    recipe do
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
        action :nothing
      end
    end

    let(:klass) { resource_class(:uwsgi_fleet) }

    it 'describes itself and every property it declares' do
      expect(klass.description).to match(/nginx in front of/)
      own_properties(klass).each do |name, property|
        expect(property.description).to be_a(String).and(match(/\w{3}/)), "#{name} has no description"
      end
    end

    it 'has the actions :create (the default), :delete and :reload' do
      expect(klass.default_action).to eq([:create])
      expect(klass.allowed_actions).to include(:create, :delete, :reload)
    end

    it 'is valid with its defaults and an app' do
      expect { chef_run }.not_to raise_error
    end

    # (conf_dir: see the next example.)
    it 'validates every property it declares (a value of any wrong type is named in the message)' do
      chef_run
      (own_properties(klass).keys - [:conf_dir]).each do |name|
        resource = klass.new('api', chef_run.run_context)
        resource.app_module('api_app:application') unless name == :app_module
        resource.send(name, Object.new)
        expect { resource.after_created }.to raise_error(UwsgiFleet::InvalidConfiguration, /^  #{name} /), "#{name} escaped validation"
      end
    end

    # (node_errors reads the manifest under conf_dir before the message is raised.)
    it 'names a conf_dir of a wrong type in the message too' do
      resource = klass.new('api', chef_run.run_context)
      resource.app_module('api_app:application')
      resource.conf_dir(Object.new)
      expect { resource.after_created }.to raise_error(UwsgiFleet::InvalidConfiguration, /^  conf_dir /)
    end

    it 'does not let Chef stop at the first bad type: every property is checked, and reported, at once' do
      resource = klass.new('api', chef_run.run_context)
      expect { resource.threads('four') }.not_to raise_error
      expect(resource.threads).to eq('four')
    end
  end
end
