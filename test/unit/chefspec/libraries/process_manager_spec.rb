require_relative '../spec_helper'
require 'shellwords'

describe UwsgiFleet::ProcessManager do
  let(:process_manager) { 'supervisor' }
  let(:chdir) { '/opt/test_api' }
  let(:env) { {} }
  let(:props) do
    {
      name: 'api', processes: 2, threads: 2, base_port: 9100, bind_address: '127.0.0.1', user: 'api_fleet',
      listen_backlog: 1024, buffer_size: 65_535, harakiri: 60, process_manager: process_manager,
      app_module: 'api_app:application', wsgi_file: nil, chdir: chdir, pythonpath: [chdir], virtualenv: nil, env: env
    }.merge(UwsgiFleet::Fleet.named_defaults('api', process_manager))
  end
  let(:plan) { UwsgiFleet::FleetPlan.new(props, cpus: 2) }
  let(:pm) { plan.process_manager }

  # Files named +names+ in a new temp dir; yields the dir.
  def with_files(names)
    Dir.mktmpdir('uwsgi_fleet_pm') do |dir|
      names.each { |name| File.write(File.join(dir, name), '') }
      yield dir
    end
  end

  describe '.for' do
    it 'picks the implementation by process_manager, given the instance prefix' do
      expect(described_class.for('supervisor', instance_prefix: 'p_')).to be_a(described_class::Supervisor)
      expect(described_class.for('systemd', instance_prefix: 'p').prefix).to eq('p')
      expect(described_class.for('systemd', instance_prefix: 'p')).to be_a(described_class::Systemd)
    end

    it 'refuses an unknown process manager' do
      expect { described_class.for('upstart', instance_prefix: 'p') }.to raise_error(KeyError)
    end
  end

  describe '.named' do
    it 'is the implementation class of a process manager, by name (a store app has no plan)' do
      expect(described_class.named('supervisor')).to be(described_class::Supervisor)
      expect(described_class.named('systemd')).to be(described_class::Systemd)
      expect { described_class.named('upstart') }.to raise_error(KeyError)
    end
  end

  describe '.register' do
    after { described_class.instance_variable_get(:@registry).delete('upstart') }

    it 'adds a process manager that names, validation and the fleet resource then know' do
      upstart = Class.new(described_class::Base)
      described_class.register('upstart', upstart)
      expect(described_class.names).to include('supervisor', 'systemd', 'upstart')
      expect(described_class.named('upstart')).to be(upstart)
      expect(UwsgiFleet::Validation::FLEET[:process_manager].error(:process_manager, 'upstart')).to be_nil
    end

    it 'ships supervisor (the default) and systemd, registered first' do
      expect(described_class.names.first(2)).to eq(%w(supervisor systemd))
      expect(described_class::DEFAULT).to eq('supervisor')
    end

    it 'is the list validation names' do
      error = UwsgiFleet::Validation::FLEET[:process_manager].error(:process_manager, 'runit')
      expect(error.rule).to eq("must be one of #{described_class.names.join(', ')}")
    end
  end

  describe '#commands (the manifest\'s process_manager_commands)' do
    let(:schema) { JSON.parse(File.read(UwsgiFleetSpec::SCHEMAS[:fleet]))['$defs']['process_manager_commands'] }

    it 'has every command the schema requires, for each registered process manager' do
      described_class.names.each do |name|
        expect(described_class.for(name, instance_prefix: 'p').commands.keys).to match_array(schema['required'])
      end
    end

    it 'drives supervisor programs by name with supervisorctl' do
      expect(described_class::Supervisor.new('p').commands).to eq(
        'ready' => %w(supervisorctl pid), 'pid' => %w(supervisorctl pid {name}),
        'start' => [%w(supervisorctl start {name})], 'stop' => [%w(supervisorctl stop {name})],
        'restart' => [%w(supervisorctl restart {name})], 'apply' => [%w(supervisorctl reread), %w(supervisorctl update {name})]
      )
    end

    it 'drives systemd units with systemctl; Chef applies them' do
      expect(described_class::Systemd.new('p').commands).to eq(
        'ready' => nil, 'pid' => %w(systemctl show --property=MainPID --value {name}),
        'start' => [%w(systemctl start {name})], 'stop' => [%w(systemctl stop {name})],
        'restart' => [%w(systemctl restart {name})], 'apply' => nil
      )
    end
  end

  describe '.node_error' do
    it 'refuses systemd where it is not init, and nothing else' do
      expect(described_class::Systemd.node_error(systemd: false)).to eq('must be supervisor on this node: systemd is not its init (PID 1)')
      expect(described_class::Systemd.node_error(systemd: true)).to be_nil
      expect(described_class::Supervisor.node_error(systemd: false)).to be_nil
    end
  end

  describe described_class::Supervisor do
    it 'names a program <prefix><port>, in a file of its own under /etc/supervisor/conf.d' do
      expect(pm.instance_name(9100)).to eq('uwsgi_fleet_api_9100')
      expect(pm.instance_file(9100)).to eq('/etc/supervisor/conf.d/uwsgi_fleet_api_9100.conf')
    end

    it 'installs supervisor and converges with uwsgi_fleet_supervisor_instances' do
      expect([described_class::PACKAGES, described_class::RESOURCE]).to eq([%w(supervisor), :uwsgi_fleet_supervisor_instances])
    end

    describe '#present_ports' do
      it "lists the ports of this fleet's program files, sorted, and nothing else" do
        files = %w(uwsgi_fleet_api_9105.conf uwsgi_fleet_api_9100.conf uwsgi_fleet_api_9101.conf
                   uwsgi_fleet_store_9000.conf uwsgi_fleet_9000.conf uwsgi_fleet_api_.conf uwsgi_fleet_api_x.conf
                   uwsgi_fleet_api_9102.conf.bak xuwsgi_fleet_api_9103.conf uwsgi_fleet_api_9104.ini supervisord.conf)
        with_files(files) { |dir| expect(pm.present_ports(dir)).to eq([9100, 9101, 9105]) }
      end

      it 'is empty without program files' do
        with_files([]) { |dir| expect(pm.present_ports(dir)).to eq([]) }
      end

      it "lists 0.1.0's programs (uwsgi_fleet_<port>) for the default recipe's prefix, not other fleets'" do
        props[:instance_prefix] = 'uwsgi_fleet_'
        with_files(%w(uwsgi_fleet_9000.conf uwsgi_fleet_9001.conf uwsgi_fleet_api_9100.conf)) do |dir|
          expect(pm.present_ports(dir)).to eq([9000, 9001])
        end
      end

      it 'reads /etc/supervisor/conf.d by default' do
        allow(Dir).to receive(:glob).and_call_original
        allow(Dir).to receive(:glob).with('/etc/supervisor/conf.d/*.conf').and_return(['/etc/supervisor/conf.d/uwsgi_fleet_api_9107.conf'])
        expect(pm.present_ports).to eq([9107])
      end
    end

    describe '#escape' do
      it 'doubles every % (supervisor expands %(name)s)' do
        expect(pm.escape('a % b %(ENV_HOME)s %%')).to eq('a %% b %%(ENV_HOME)s %%%%')
        expect(described_class.escape('100%')).to eq('100%%')
      end

      it 'leaves $ and quotes alone (supervisor does not expand them)' do
        expect(pm.escape(%($HOME "x" 'y'))).to eq(%($HOME "x" 'y'))
      end
    end

    describe '#command' do
      let(:env) { { 'FORMAT' => '%(asctime)s 100%', 'GREETING' => %(it's a "quoted" $HOME; `x` & y) } }
      let(:chdir) { '/opt/100%app' }
      let(:command) { pm.command(plan.uwsgi_args(9101)) }

      it 'leaves no single % for supervisor to expand' do
        expect(command.scan(/%+/).map(&:size)).to all(be_even)
      end

      it 'gives back the exact arguments once supervisor has expanded %% and split the line like a shell' do
        expect(Shellwords.split(command.gsub('%%', '%'))).to eq(plan.uwsgi_args(9101))
      end
    end
  end

  describe 'the forwarder of a store app (one long-running process beside the instances)' do
    args = ['/usr/bin/python3', '-m', 'store_app.forwarder', '--config', '/etc/uwsgi_fleet/100% store/store_app.json']

    it 'is a supervisor program uwsgi_fleet_forwarder_<app>, in a file of its own' do
      expect(described_class::Supervisor.forwarder_name('store')).to eq('uwsgi_fleet_forwarder_store')
      expect(described_class::Supervisor.forwarder_file('store')).to eq('/etc/supervisor/conf.d/uwsgi_fleet_forwarder_store.conf')
    end

    it "is a systemd unit uwsgi-fleet-forwarder-<app>.service, which no fleet's template unit is named like" do
      expect(described_class::Systemd.forwarder_name('store')).to eq('uwsgi-fleet-forwarder-store.service')
      expect(described_class::Systemd.forwarder_file('store')).to eq('/etc/systemd/system/uwsgi-fleet-forwarder-store.service')
      expect(UwsgiFleet::Fleet.named_defaults('forwarder', 'systemd')[:instance_prefix] + '@.service').not_to eq('uwsgi-fleet-forwarder-store.service')
    end

    it "is not one of the default fleet's 0.1.0 programs (uwsgi_fleet_<port>) for supervisor" do
      pm = UwsgiFleet::FleetPlan.new(props.merge(instance_prefix: 'uwsgi_fleet_'), cpus: 2).process_manager
      with_files(%w(uwsgi_fleet_9000.conf uwsgi_fleet_forwarder_default.conf)) { |dir| expect(pm.present_ports(dir)).to eq([9000]) }
    end

    it 'has a supervisor command= that gives back its arguments' do
      line = described_class::Supervisor.command_line(args)
      expect(Shellwords.split(line.gsub('%%', '%'))).to eq(args)
      expect(line.scan(/%+/).map(&:size)).to all(be_even)
    end

    it 'is applied by supervisorctl, from its program file, after supervisord has started' do
      pm = described_class::Supervisor
      expect(pm.forwarder_apply('f')).to eq('supervisorctl reread && supervisorctl update f && supervisorctl restart f')
      expect([pm::SERVICE, pm::FORWARDER_TEMPLATE]).to eq(%w(supervisor forwarder_program.conf.erb))
    end

    it 'is applied by systemctl, from its unit file (systemd is init: nothing to start first)' do
      pm = described_class::Systemd
      expect(pm.forwarder_apply('f')).to eq('systemctl daemon-reload && systemctl enable f && systemctl restart f')
      expect([pm::SERVICE, pm::FORWARDER_TEMPLATE]).to eq([nil, 'forwarder.service.erb'])
    end

    it 'has a systemd ExecStart= of quoted arguments' do
      expect(described_class::Systemd.command_line(args)).to eq(
        '"/usr/bin/python3" "-m" "store_app.forwarder" "--config" "/etc/uwsgi_fleet/100%% store/store_app.json"'
      )
    end
  end

  describe described_class::Systemd do
    let(:process_manager) { 'systemd' }

    # What systemd makes of an ExecStart= line for instance +port+: specifiers
    # first (%% and %i), then words unquoted and C-unescaped, then $$ at exec
    # time. Fails on anything it would expand that the line did not mean to.
    def exec_start_args(line, port)
      expanded = line.gsub(/%(.)/) do
        { '%' => '%', 'i' => port.to_s }.fetch(Regexp.last_match(1)) { raise "unescaped specifier %#{Regexp.last_match(1)}" }
      end
      words = expanded.scan(/"((?:[^"\\]|\\.)*)"|(\S+)/).map do |quoted, bare|
        raise "unquoted word #{bare}" if bare
        quoted.gsub(/\\(.)/) { Regexp.last_match(1) }
      end
      words.map do |word|
        word.gsub(/\$(\$|\{?\w+\}?)/) { Regexp.last_match(1) == '$' ? '$' : raise("would expand $#{Regexp.last_match(1)}") }
      end
    end

    it 'has one template unit <prefix>@.service and one instance <prefix>@<port>.service per port' do
      expect(pm.template_name).to eq('uwsgi-fleet-api@.service')
      expect(pm.template_file).to eq('/etc/systemd/system/uwsgi-fleet-api@.service')
      expect(pm.instance_name(9100)).to eq('uwsgi-fleet-api@9100.service')
      expect(pm.instance_file(9100)).to eq(pm.template_file)
    end

    it 'needs no package and converges with uwsgi_fleet_systemd_instances' do
      expect([described_class::PACKAGES, described_class::RESOURCE]).to eq([[], :uwsgi_fleet_systemd_instances])
    end

    describe '#present_ports' do
      it "lists this fleet's enabled instances, sorted, and nothing else" do
        files = %w(uwsgi-fleet-api@9101.service uwsgi-fleet-api@9100.service uwsgi-fleet-api@.service
                   uwsgi-fleet-store@9000.service uwsgi-fleet-api@x.service uwsgi-fleet-api-2@9102.service
                   uwsgi-fleet-api@9103.service.d nginx.service)
        with_files(files) { |dir| expect(pm.present_ports(dir)).to eq([9100, 9101]) }
      end

      it 'reads multi-user.target.wants by default' do
        allow(Dir).to receive(:glob).and_call_original
        allow(Dir).to receive(:glob).with('/etc/systemd/system/multi-user.target.wants/*.service')
                                    .and_return(['/etc/systemd/system/multi-user.target.wants/uwsgi-fleet-api@9104.service'])
        expect(pm.present_ports).to eq([9104])
      end
    end

    describe '#escape and .quote' do
      it 'doubles % (specifiers), the only expansion of settings such as WorkingDirectory= and StandardOutput=' do
        expect(pm.escape('/opt/100%app/$HOME')).to eq('/opt/100%%app/$HOME')
        expect(described_class.escape('%i')).to eq('%%i')
      end

      {
        '/opt/100%app' => '"/opt/100%%app"',
        '$HOME' => '"$$HOME"',
        '${PATH}' => '"$${PATH}"',
        'a\\b' => '"a\\\\b"',
        'say "hi"' => '"say \\"hi\\""',
        '%i' => '"%%i"',
        '' => '""',
      }.each do |arg, quoted|
        it "quotes #{arg.inspect} as #{quoted} for ExecStart=, which also expands $ and unquotes" do
          expect(described_class.quote(arg)).to eq(quoted)
          expect(exec_start_args(quoted, 9100)).to eq([arg])
        end
      end

      it 'joins quoted arguments into an ExecStart= line' do
        expect(described_class.command_line(['a b', '$X'])).to eq('"a b" "$$X"')
      end
    end

    describe '#command (ExecStart= of the template unit)' do
      let(:env) { { 'FORMAT' => '%(asctime)s 100%', 'GREETING' => %(it's a "quoted" $HOME; `x` & y \\ ${PATH}), 'EMPTY' => '' } }
      let(:chdir) { '/opt/100%app$HOME' }
      let(:command) { pm.command(plan.uwsgi_args(described_class::PORT_TOKEN)) }

      it 'quotes every argument' do
        expect { exec_start_args(command, 9100) }.not_to raise_error
      end

      it 'puts %i wherever the port goes' do
        expect(command).to include('"127.0.0.1:%i"', '"/var/lib/uwsgi_fleet/api/%i.fifo"', '"UWSGI_FLEET_INSTANCE=%i"')
      end

      it 'gives back the exact arguments of each instance once systemd has expanded and unquoted it' do
        [9100, 9101].each { |port| expect(exec_start_args(command, port)).to eq(plan.uwsgi_args(port)) }
      end

      it 'leaves no trace of the port token' do
        expect(command).not_to include(described_class::PORT_TOKEN)
        expect(command).not_to include("\n")
      end
    end

    describe '#per_port' do
      it 'turns the port token of a path into %i, escaping the rest' do
        expect(pm.per_port(plan.log(described_class::PORT_TOKEN))).to eq('/var/log/uwsgi_fleet/api/%i.log')
        expect(pm.per_port("/var/log/100%/#{described_class::PORT_TOKEN}.log")).to eq('/var/log/100%%/%i.log')
      end
    end
  end
end
