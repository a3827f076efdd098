require_relative '../spec_helper'

describe UwsgiFleet::Fleet do
  describe '.instance_count' do
    it 'resolves auto to the CPU count' do
      expect(described_class.instance_count('auto', 8)).to eq(8)
    end

    it 'resolves auto to at least 2 instances' do
      expect(described_class.instance_count('auto', 1)).to eq(2)
      expect(described_class.instance_count('auto', 0)).to eq(2)
    end

    it 'accepts the CPU count as a string (as Ohai may report it)' do
      expect(described_class.instance_count('auto', '6')).to eq(6)
    end

    it 'returns an explicit count unchanged, whatever the CPUs' do
      expect(described_class.instance_count(3, 64)).to eq(3)
      expect(described_class.instance_count(1, 1)).to eq(1)
    end

    it 'passes an invalid value through for validation to reject' do
      expect(described_class.instance_count('ten', 4)).to eq('ten')
    end
  end

  describe '.ports' do
    it 'is base_port .. base_port + count - 1' do
      expect(described_class.ports(9000, 4)).to eq([9000, 9001, 9002, 9003])
    end

    it 'is a single port for one instance' do
      expect(described_class.ports(9000, 1)).to eq([9000])
    end

    it 'may end exactly at 65535' do
      expect(described_class.ports(65_534, 2)).to eq([65_534, 65_535])
    end
  end

  describe '.named_defaults' do
    it 'gives a fleet its own directories, upstream and nginx file, from its name' do
      expect(described_class.named_defaults('api', 'supervisor')).to eq(
        conf_dir: '/etc/uwsgi_fleet/api', fifo_dir: '/var/lib/uwsgi_fleet/api', log_dir: '/var/log/uwsgi_fleet/api',
        upstream: 'uwsgi_fleet_api', site_file: '/etc/nginx/conf.d/uwsgi_fleet_api.conf', instance_prefix: 'uwsgi_fleet_api_'
      )
    end

    it 'names systemd units uwsgi-fleet-<name> (as in uwsgi-fleet-<name>@<port>.service)' do
      expect(described_class.named_defaults('api', 'systemd')[:instance_prefix]).to eq('uwsgi-fleet-api')
    end

    it 'shares nothing between two fleets' do
      store = described_class.named_defaults('store', 'supervisor')
      api = described_class.named_defaults('api', 'supervisor')
      store.each_key { |key| expect(store[key]).not_to eq(api[key]) }
    end
  end

  describe '.max_conns' do
    it "resolves 'auto' to CONNS_PER_THREAD (8) x threads, at most what an instance holds (threads + listen backlog)" do
      expect(described_class::CONNS_PER_THREAD).to eq(8)
      expect(described_class.max_conns('auto', 8, 1024)).to eq(64)
      expect(described_class.max_conns('auto', 4, 16)).to eq(20)
    end

    it 'returns an integer as given, 0 (no limit) too, whatever the threads and backlog' do
      expect([described_class.max_conns(5, 8, 1024), described_class.max_conns(0, 8, 1024)]).to eq([5, 0])
    end
  end
end

describe UwsgiFleet::FleetPlan do
  let(:process_manager) { 'supervisor' }
  let(:props) do
    {
      name: 'api', processes: 3, threads: 8, base_port: 9100, bind_address: '127.0.0.1', user: 'api_fleet',
      listen_backlog: 1024, buffer_size: 65_535, harakiri: 30, process_manager: process_manager,
      store_app: nil, app_module: 'api_app:application', wsgi_file: nil, chdir: '/opt/test_api', pythonpath: ['/opt/test_api'],
      virtualenv: nil, env: { 'A' => '1' }, listen: 80, listen_address: nil, server_name: 'api.example', default_server: false,
      client_max_body_size: '20m', client_body_buffer_size: '1m', balance: 'least_conn', max_conns: 'auto', burst_queue_ms: 500,
      sustained_queue_ms: 50, client_timeout: 10, remove_sites: [], nginx_main_config: nil
    }.merge(UwsgiFleet::Fleet.named_defaults('api', process_manager))
  end
  let(:cpus) { 4 }
  let(:plan) { described_class.new(props, cpus: cpus) }

  describe '#ports' do
    it 'is processes ports from base_port' do
      expect(plan.ports).to eq([9100, 9101, 9102])
    end

    context "with processes 'auto'" do
      before { props[:processes] = 'auto' }

      it 'runs one instance per CPU' do
        expect(plan.ports).to eq([9100, 9101, 9102, 9103])
      end

      context 'on a single CPU' do
        let(:cpus) { 1 }

        it 'still runs two instances' do
          expect(plan.ports).to eq([9100, 9101])
        end
      end
    end
  end

  it 'exposes the name, user and properties' do
    expect([plan.name, plan.user, plan[:threads]]).to eq(['api', 'api_fleet', 8])
  end

  it 'refuses a property it does not have (a typo fails loudly)' do
    expect { plan[:thread] }.to raise_error(KeyError)
  end

  it 'keeps its manifest, FIFOs and logs in its own directories' do
    expect(plan.manifest_path).to eq('/etc/uwsgi_fleet/api/fleet.json')
    expect(plan.fifo(9101)).to eq('/var/lib/uwsgi_fleet/api/9101.fifo')
    expect(plan.log(9101)).to eq('/var/log/uwsgi_fleet/api/9101.log')
  end

  it 'knows the body limit in bytes' do
    expect(plan.max_body_bytes).to eq(20 * 1024**2)
  end

  describe '#max_conns' do
    it "is 8 x threads for 'auto', at most threads + listen_backlog" do
      expect(plan.max_conns).to eq(64)
      props[:threads] = 6
      props[:listen_backlog] = 10
      expect(plan.max_conns).to eq(16)
    end

    it 'is the integer given, 0 (no limit) too' do
      props[:max_conns] = 3
      expect(plan.max_conns).to eq(3)
      props[:max_conns] = 0
      expect(plan.max_conns).to eq(0)
    end
  end

  describe '#backends' do
    it 'is one host:port per instance, in port order' do
      expect(plan.backends).to eq(%w(127.0.0.1:9100 127.0.0.1:9101 127.0.0.1:9102))
    end

    it 'brackets an IPv6 bind address' do
      props[:bind_address] = '::1'
      expect(plan.backends).to eq(%w([::1]:9100 [::1]:9101 [::1]:9102))
    end
  end

  describe '#listen' do
    it 'is the port alone: nginx serves on every address' do
      expect(plan.listen).to eq('80')
    end

    it 'is address:port with a listen_address (the private address a balancer reaches)' do
      props[:listen_address] = '10.0.0.11'
      expect(plan.listen).to eq('10.0.0.11:80')
      props[:listen_address] = 'fd00::11'
      expect(plan.listen).to eq('[fd00::11]:80')
    end
  end

  describe '#balance_directive' do
    { 'least_conn' => 'least_conn;', 'random_two' => 'random two least_conn;', 'ip_hash' => 'ip_hash;', 'round_robin' => nil }.each do |balance, directive|
      it "is #{directive.inspect} for #{balance}" do
        props[:balance] = balance
        expect(plan.balance_directive).to eq(directive)
      end
    end
  end

  describe '#uwsgi_args' do
    let(:args) { plan.uwsgi_args(9101) }

    it "tells the instance its port and the fleet's manifest, after the app's own env" do
      envs = args.each_index.select { |i| args[i] == '--env' }.map { |i| args[i + 1] }
      expect(envs).to eq(%w(A=1 UWSGI_FLEET_INSTANCE=9101 UWSGI_FLEET_MANIFEST=/etc/uwsgi_fleet/api/fleet.json))
    end

    it 'gets no env name given as a symbol: validation refuses it (it would not sort with the names the fleet adds)' do
      props[:env] = { DJANGO_SETTINGS_MODULE: 'app.settings' }
      expect(UwsgiFleet::Validation::FLEET[:env].error(:env, props[:env])).not_to be_nil
      expect { args }.to raise_error(ArgumentError)
    end

    it 'binds the instance port and opens its FIFO' do
      expect(args.each_cons(2).to_a).to include(['--socket', '127.0.0.1:9101'], ['--master-fifo', '/var/lib/uwsgi_fleet/api/9101.fifo'])
    end
  end

  describe '#process_manager' do
    it 'is supervisor programs' do
      expect(plan.process_manager).to be_a(UwsgiFleet::ProcessManager::Supervisor)
      expect(plan.process_manager.prefix).to eq(plan[:instance_prefix])
    end

    context 'with systemd' do
      let(:process_manager) { 'systemd' }

      it 'is systemd units' do
        expect(plan.process_manager).to be_a(UwsgiFleet::ProcessManager::Systemd)
      end
    end
  end

  describe '#manifest' do
    let(:manifest) { plan.manifest }

    it "has exactly the keys of fleet.schema.json, in the schema's order" do
      schema = JSON.parse(File.read(UwsgiFleetSpec::SCHEMAS[:fleet]))
      expect(manifest.keys).to eq(schema['required'])
      expect(schema['properties'].keys).to match_array(schema['required'])
    end

    it 'conforms to fleet.schema.json' do
      expect(plan.manifest_json).to match_schema(:fleet)
    end

    it 'describes the fleet' do
      expect(manifest).to eq(
        'manifest_version' => 1, 'name' => 'api', 'process_manager' => 'supervisor',
        'process_manager_commands' => UwsgiFleet::ProcessManager::Supervisor::COMMANDS, 'ports' => [9100, 9101, 9102],
        'instance_prefix' => 'uwsgi_fleet_api_', 'instance_name' => 'uwsgi_fleet_api_{port}',
        'instance_file' => '/etc/supervisor/conf.d/uwsgi_fleet_api_{port}.conf',
        'fifo' => '/var/lib/uwsgi_fleet/api/{port}.fifo', 'log' => '/var/log/uwsgi_fleet/api/{port}.log', 'bind_address' => '127.0.0.1',
        'threads' => 8, 'max_conns' => 64, 'listen_backlog' => 1024, 'burst_queue_ms' => 500, 'sustained_queue_ms' => 50,
        'user' => 'api_fleet', 'fifo_dir' => '/var/lib/uwsgi_fleet/api', 'log_dir' => '/var/log/uwsgi_fleet/api',
        'upstream' => 'uwsgi_fleet_api', 'upstream_fail_timeout' => 2, 'site_file' => '/etc/nginx/conf.d/uwsgi_fleet_api.conf', 'listen' => 80,
        'listen_address' => nil, 'server_name' => 'api.example', 'store_app_config' => nil, 'pythonpath' => ['/opt/test_api']
      )
    end

    it "names each instance's FIFO and log as the plan computes them for a port" do
      expect(manifest['fifo'].sub('{port}', '9101')).to eq(plan.fifo(9101))
      expect(manifest['log'].sub('{port}', '9101')).to eq(plan.log(9101))
    end

    it 'holds the fail timeout nginx is given' do
      expect(manifest['upstream_fail_timeout']).to eq(UwsgiFleet::FleetPlan::FAIL_TIMEOUT)
    end

    context 'with systemd' do
      let(:process_manager) { 'systemd' }

      it 'names units and their template file' do
        expect(manifest.values_at('process_manager', 'instance_prefix', 'instance_name', 'instance_file')).to eq(
          ['systemd', 'uwsgi-fleet-api', 'uwsgi-fleet-api@{port}.service', '/etc/systemd/system/uwsgi-fleet-api@.service']
        )
      end

      it "carries systemd's commands and conforms to fleet.schema.json" do
        expect(manifest['process_manager_commands']).to eq(UwsgiFleet::ProcessManager::Systemd::COMMANDS)
        expect(plan.manifest_json).to match_schema(:fleet)
      end
    end

    it 'holds max_conns resolved (never auto), 0 as it is' do
      props[:threads] = 3
      expect(manifest['max_conns']).to eq(24)
      props[:max_conns] = 0
      expect(plan.manifest['max_conns']).to eq(0)
    end

    it "names the store app's config when the fleet runs it, and nothing secret" do
      props[:env] = { 'STORE_APP_CONFIG' => '/etc/uwsgi_fleet/store/store_app.json', 'SECRET' => 'hunter2' }
      expect(manifest['store_app_config']).to eq('/etc/uwsgi_fleet/store/store_app.json')
      expect(plan.manifest_json).not_to include('hunter2')
    end

    it 'is rendered as pretty JSON with a final newline' do
      expect(plan.manifest_json).to end_with("}\n")
      expect(JSON.parse(plan.manifest_json)).to eq(manifest)
    end
  end
end
