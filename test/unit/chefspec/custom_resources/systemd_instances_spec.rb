require_relative '../spec_helper'

describe 'uwsgi_fleet_systemd_instances' do
  step_into :uwsgi_fleet_systemd_instances
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  fleetctl = '/usr/local/sbin/uwsgi-fleetctl --manifest /etc/uwsgi_fleet/api/fleet.json'
  unit = '/etc/systemd/system/uwsgi-fleet-api@.service'
  wanted = ->(port) { "/etc/systemd/system/multi-user.target.wants/uwsgi-fleet-api@#{port}.service" }

  # What systemd makes of an ExecStart= line for instance +port+: specifiers
  # (%% and %i), then words unquoted and C-unescaped, then $$ at exec time.
  def exec_start_args(line, port)
    expanded = line.gsub(/%(.)/) { { '%' => '%', 'i' => port.to_s }.fetch(Regexp.last_match(1)) }
    expanded.scan(/"((?:[^"\\]|\\.)*)"/).flatten.map do |word|
      word.gsub(/\\(.)/) { Regexp.last_match(1) }.gsub(/\$(\$|\{?\w+\}?)/) { Regexp.last_match(1) == '$' ? '$' : raise('expanded') }
    end
  end

  context 'action :start' do
    recipe do
      uwsgi_fleet_systemd_instances 'api' do
        plan UwsgiFleetSpec.fleet_plan('api', process_manager: 'systemd', processes: 3, base_port: 9100, user: 'api_fleet',
                                              harakiri: 30, chdir: '/opt/100%app', env: { 'FORMAT' => '%(asctime)s "x" \\ $HOME' })
      end
    end

    it 'writes one template unit for the whole fleet' do
      expect(chef_run).to create_template(unit).with(cookbook: 'uwsgi_fleet', source: 'systemd_instance.service.erb', mode: '0644')
      expect(chef_run.find_resources(:template).map(&:name)).to eq([unit])
    end

    it 'reloads systemd, then restarts the running instances one at a time, as soon as the unit changes' do
      template = chef_run.template(unit)
      expect(template).to notify('execute[systemctl daemon-reload]').to(:run).immediately
      expect(template).to notify('execute[restart the running instances one at a time]').to(:run).immediately
      expect(template.immediate_notifications.map { |n| n.resource.to_s }).to eq(
        ['execute[systemctl daemon-reload]', 'execute[restart the running instances one at a time]']
      )
      expect(chef_run.execute('systemctl daemon-reload')).to do_nothing
      restart = chef_run.execute('restart the running instances one at a time')
      expect(restart).to do_nothing
      expect(restart.command).to eq("#{fleetctl} restart 9100 9101 9102")
    end

    it 'enables and starts one instance per port, waiting until each serves before the next' do
      [9100, 9101, 9102].each do |port|
        name = "uwsgi-fleet-api@#{port}.service"
        expect(chef_run).to enable_service(name)
        expect(chef_run).to start_service(name)
        expect(chef_run.service(name)).to notify("execute[wait until #{port} serves]").to(:run).immediately
        expect(chef_run.execute("wait until #{port} serves").command).to eq("#{fleetctl} wait #{port}")
      end
      expect(chef_run.find_resources(:service).map(&:name)).to eq(%w(uwsgi-fleet-api@9100.service uwsgi-fleet-api@9101.service uwsgi-fleet-api@9102.service))
    end

    it 'writes the unit before starting instances of it' do
      expect(position(:template, unit)).to be < position(:service, 'uwsgi-fleet-api@9100.service')
    end

    describe 'the unit' do
      let(:content) { rendered(unit) }

      it 'stops with SIGHUP (a graceful stop with --exit-on-reload), to the master only, waiting harakiri + 5 s' do
        expect(content).to match(/^KillSignal=SIGHUP$/).and match(/^KillMode=mixed$/).and match(/^TimeoutStopSec=35$/)
      end

      it 'runs as the fleet user, restarts, logs each instance to its own file and is wanted by multi-user.target' do
        expect(content).to match(/^User=api_fleet$/).and match(/^Group=api_fleet$/).and match(/^Restart=always$/)
          .and match(%r{^StandardOutput=append:/var/log/uwsgi_fleet/api/%i\.log$}).and match(/^WantedBy=multi-user\.target$/)
          .and match(/^Description=uwsgi_fleet api: uWSGI instance on port %i$/)
      end

      it 'doubles % in WorkingDirectory=, which systemd expands' do
        expect(content[/^WorkingDirectory=(.*)$/, 1]).to eq('/opt/100%%app')
      end

      it "gives uWSGI exactly each instance's arguments once systemd has expanded and unquoted ExecStart=" do
        command = content[/^ExecStart=(.*)$/, 1]
        plan = chef_run.find_resource(:uwsgi_fleet_systemd_instances, 'api').plan
        [9100, 9102].each { |port| expect(exec_start_args(command, port)).to eq(plan.uwsgi_args(port)) }
      end
    end
  end

  context 'with a $ in chdir and log_dir' do
    recipe do
      uwsgi_fleet_systemd_instances 'api' do
        plan UwsgiFleetSpec.fleet_plan('api', process_manager: 'systemd', base_port: 9100, chdir: '/srv/$HOME', log_dir: '/var/log/a$b')
      end
    end

    it 'passes the $ to uWSGI in ExecStart= (as $$, which systemd turns back into $)' do
      expect(exec_start_args(rendered(unit)[/^ExecStart=(.*)$/, 1], 9100).each_cons(2).to_a).to include(['--chdir', '/srv/$HOME'])
    end

    it 'keeps the $ as it is in WorkingDirectory= and StandardOutput=, which expand specifiers only' do
      expect(rendered(unit)).to match(%r{^WorkingDirectory=/srv/\$HOME$}).and match(%r{^StandardOutput=append:/var/log/a\$b/%i\.log$})
    end
  end

  context 'action :prune, with instances of other ports and fleets enabled on the node' do
    let(:wants) { [wanted.call(9100), wanted.call(9104), wanted.call(9101), wanted.call(9103), '/etc/systemd/system/multi-user.target.wants/uwsgi-fleet-store@9102.service'] }

    recipe do
      uwsgi_fleet_systemd_instances 'api' do
        plan UwsgiFleetSpec.fleet_plan('api', process_manager: 'systemd', processes: 2, base_port: 9100)
        action :prune
      end
    end

    it "stops (gracefully: KillSignal=SIGHUP) and disables each of this fleet's instances no longer wanted, and only those" do
      expect(chef_run.find_resources(:service).map(&:name)).to eq(%w(uwsgi-fleet-api@9103.service uwsgi-fleet-api@9104.service))
      %w(uwsgi-fleet-api@9103.service uwsgi-fleet-api@9104.service).each do |name|
        expect(chef_run).to stop_service(name)
        expect(chef_run).to disable_service(name)
      end
    end

    it 'leaves the unit alone' do
      expect(chef_run.find_resources(:template) + chef_run.find_resources(:file)).to be_empty
    end
  end

  context 'action :stop' do
    let(:wants) { [wanted.call(9100), wanted.call(9101)] }

    recipe do
      uwsgi_fleet_systemd_instances 'api' do
        plan UwsgiFleetSpec.fleet_plan('api', process_manager: 'systemd', processes: 5, base_port: 9100)
        action :stop
      end
    end

    it 'stops and disables every instance on the node, then deletes the unit and reloads systemd' do
      expect(chef_run).to stop_service('uwsgi-fleet-api@9100.service')
      expect(chef_run).to disable_service('uwsgi-fleet-api@9101.service')
      expect(chef_run.find_resources(:service).size).to eq(2)
      expect(chef_run).to delete_file(unit)
      expect(chef_run.file(unit)).to notify('execute[systemctl daemon-reload]').to(:run).immediately
      expect(position(:service, 'uwsgi-fleet-api@9101.service')).to be < position(:file, unit)
    end
  end

  describe 'the resource' do
    recipe do
      uwsgi_fleet_systemd_instances 'api' do
        plan UwsgiFleetSpec.fleet_plan('api', process_manager: 'systemd')
        action :nothing
      end
    end

    it 'describes itself and every property' do
      klass = resource_class(:uwsgi_fleet_systemd_instances)
      expect(klass.description).to match(/systemd/)
      expect(own_properties(klass).keys).to match_array(%i(plan fleetctl))
      own_properties(klass).each_value { |property| expect(property.description).to be_a(String).and(match(/\w{3}/)) }
    end

    it 'has the actions :start (the default), :prune and :stop' do
      klass = resource_class(:uwsgi_fleet_systemd_instances)
      expect(klass.default_action).to eq([:start])
      expect(klass.allowed_actions).to include(:start, :prune, :stop)
    end
  end
end
