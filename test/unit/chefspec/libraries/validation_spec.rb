require_relative '../spec_helper'

# Every rule of UwsgiFleet::Validation, as a resource names it: one bad value
# per example, on top of properties that are valid together. Each example checks
# the whole line the operator reads in the one message: the property, the
# allowed values and the value given. (spec/libraries/attributes_spec.rb checks
# the same rules named as node['uwsgi_fleet'] attributes.)
describe UwsgiFleet::Validation do
  key = '0123456789abcdef0123456789abcdef'

  # A uwsgi_fleet's properties, valid together (as the resource's defaults with an app).
  let(:fleet) do
    {
      name: 'store', processes: 'auto', threads: 8, base_port: 9000, bind_address: '127.0.0.1',
      user: 'uwsgi_fleet', listen_backlog: 1024, buffer_size: 65_535, harakiri: 60, process_manager: 'supervisor',
      store_app: nil, app_module: 'app.wsgi:application', wsgi_file: nil, chdir: '/srv/app', pythonpath: ['/srv/app'],
      virtualenv: nil, env: {}, listen: 80, listen_address: nil, server_name: '_', default_server: false, client_max_body_size: '2m',
      client_body_buffer_size: '1m', balance: 'least_conn', max_conns: 'auto', burst_queue_ms: 500, sustained_queue_ms: 50, client_timeout: 10,
      remove_sites: [], nginx_main_config: nil
    }.merge(UwsgiFleet::Fleet.named_defaults('store', 'supervisor'))
  end

  # A uwsgi_fleet_store_app's properties, valid together.
  let(:store_app) do
    {
      name: 'store', projects: {}, spool_dir: '/var/spool/uwsgi_fleet/store',
      rate_limit: { 'events_per_second' => 1000, 'burst' => 2000 }, max_event_bytes: 1_048_576, max_attachment_bytes: 20_971_520,
      max_body_size: '2m', max_envelope_size: nil, stream_maxlen: nil, simulated_hops: 0, simulated_hop_ms: 2, user: 'uwsgi_fleet',
      install_dir: '/opt/uwsgi_fleet/store',
      config_path: '/etc/uwsgi_fleet/store/store_app.json', key_path: '/etc/uwsgi_fleet/store/default_project.key',
      log_dir: '/var/log/uwsgi_fleet/store_app_store', redis_url: nil, quota_redis_url: nil, redis_password: nil, quota_backend: 'local',
      forward_events: false, process_manager: 'supervisor'
    }
  end

  # A uwsgi_fleet_balancer's properties, valid together.
  let(:balancer) do
    {
      name: 'default', backends: %w(10.0.0.11:80 10.0.0.12:80), listen: 80, listen_address: nil, server_name: '_',
      default_server: true, balance: 'least_conn', client_max_body_size: '2m', client_body_buffer_size: '1m',
      client_timeout: 10, connect_timeout: 1, fail_timeout: 5, read_timeout: 70, remove_sites: [],
      upstream: 'uwsgi_fleet_balancer_default', site_file: '/etc/nginx/conf.d/uwsgi_fleet_balancer_default.conf'
    }
  end

  # A uwsgi_fleet_redis's properties, valid together.
  let(:redis) { { name: 'default', bind_address: '10.0.0.5', port: 6379, quota_port: 6380, password: 'p' * 16, appendfsync: 'always' } }

  def errors_of(kind, props, cpus: 4, somaxconn: 4096, systemd: true, action: :create)
    case kind
    when :fleet then described_class.fleet_errors(props, cpus: cpus, somaxconn: somaxconn, systemd: systemd, action: action)
    when :store_app then described_class.store_app_errors(props, systemd: systemd)
    when :balancer then described_class.balancer_errors(props, action: action)
    when :redis then described_class.redis_errors(props)
    end
  end

  # The lines of the one message raise_if_any! raises for +errors+ ([] if it raises none).
  def message_lines(errors)
    described_class.raise_if_any!(errors, subject: 'uwsgi_fleet[store]', namer: described_class.method(:property_name))
    []
  rescue UwsgiFleet::InvalidConfiguration => e
    first, *lines = e.message.split("\n")
    expect(first).to eq('uwsgi_fleet[store]: invalid properties, nothing was changed:')
    lines.map(&:strip)
  end

  def self.label(property, value, with)
    extra = with.map { |p, v| "#{p} = #{v.inspect}" }
    "#{property} = #{value.inspect}#{" (with #{extra.join(', ')})" unless extra.empty?}"
  end

  # An example that sets +property+ of a +kind+ resource (:fleet or :store_app)
  # to +value+ (after the +with+ settings) and expects exactly the line
  # "<reported_as> <rule>; got <got>" (and, if +only+, no other). A sensitive
  # value is +shown+ as the message prints it instead ([sensitive]).
  def self.rejects(kind, property, value, rule, reported_as: property.to_s, got: value, shown: got.inspect, with: {}, only: true, **facts)
    it "rejects #{label(property, value, with)}" do
      props = send(kind).merge(with).merge(property => value)
      lines = message_lines(errors_of(kind, props, **facts))
      line = "#{reported_as} #{rule.respond_to?(:call) ? rule.call : rule}; got #{shown}"
      only ? expect(lines).to(eq([line])) : expect(lines).to(include(line))
    end
  end

  def self.accepts(kind, property, value, with: {}, **facts)
    it "accepts #{label(property, value, with)}" do
      props = send(kind).merge(with).merge(property => value)
      expect(errors_of(kind, props, **facts)).to eq([])
    end
  end

  describe 'the rules of uwsgi_fleet' do
    it 'accepts properties that are valid together' do
      expect(errors_of(:fleet, fleet)).to eq([])
    end

    it 'has a fixed rule for every property but the three that depend on the node or on other properties' do
      dynamic = %i(processes listen_backlog client_body_buffer_size)
      expect(described_class::FLEET.keys + dynamic).to match_array(fleet.keys - [:name])
    end

    context 'name' do
      rule = 'must be lowercase letters, digits and _, starting with a letter (up to 31)'
      ['Store', '1store', 'my-fleet', 'a b', 'a' * 32, '', nil, "store\n"].each { |name| rejects :fleet, :name, name, rule }
      ['a', 'api_2', 'a' * 31].each { |name| accepts :fleet, :name, name }
    end

    context 'processes' do
      rule = "must be 'auto' or an integer from 1 to 56536 (instance ports start at base_port 9000 and may not pass 65535)"
      [0, -1, 'ten', '4', 2.0, nil, 'AUTO', 56_537].each { |processes| rejects :fleet, :processes, processes, rule }

      high = "must be 'auto' or an integer from 1 to 536 (instance ports start at base_port 65000 and may not pass 65535)"
      rejects :fleet, :processes, 600, high, with: { base_port: 65_000 }
      rejects :fleet, :processes, 537, high, with: { base_port: 65_000 }
      rejects :fleet, :processes, 'auto', high, with: { base_port: 65_000 }, cpus: 600
      accepts :fleet, :processes, 536, with: { base_port: 65_000 }

      accepts :fleet, :processes, 'auto'
      accepts :fleet, :processes, 'auto', cpus: 1
      accepts :fleet, :processes, 'auto', cpus: 64
      accepts :fleet, :processes, 1
      accepts :fleet, :processes, 56_536

      it 'counts from port 1024 while base_port itself is invalid (reported on its own)' do
        lines = message_lines(errors_of(:fleet, fleet.merge(base_port: 'x', processes: 64_513)))
        expect(lines).to eq([
                              'base_port must be an integer from 1024 to 65535; got "x"',
                              "processes must be 'auto' or an integer from 1 to 64512 (instance ports start at base_port x and may not pass 65535); got 64513",
                            ])
      end
    end

    context 'threads' do
      rule = 'must be an integer from 1 to 256'
      [0, -4, 257, '4', nil, 1.5].each { |threads| rejects :fleet, :threads, threads, rule }
      [1, 256].each { |threads| accepts :fleet, :threads, threads }
    end

    context 'base_port' do
      rule = 'must be an integer from 1024 to 65535'
      [1023, 0, '9000', nil].each { |port| rejects :fleet, :base_port, port, rule }
      # Ports past 65535 also make every processes count invalid (reported as well).
      rejects :fleet, :base_port, 65_536, rule, only: false
      accepts :fleet, :base_port, 1024
      accepts :fleet, :base_port, 65_535, with: { processes: 1 }
    end

    context 'bind_address' do
      rule = 'must be a plain IPv4 or IPv6 address such as 127.0.0.1 or ::1'
      ['localhost', '', nil, '127.0.0.256', '127.0.0', '127.0.0.1:9000', 'example.com',
       '127.0.0.1/8', '10.0.0.0/8', '[::1]', 'fe80::1%eth0', 2_130_706_433].each do |address|
        rejects :fleet, :bind_address, address, rule
      end
      ['0.0.0.0', '10.1.2.3', '::1', '::', 'fd00::10'].each { |address| accepts :fleet, :bind_address, address }
    end

    context 'user' do
      rule = 'must be a system user name (lowercase, up to 32 characters) other than root'
      ['root', 'Uwsgi', '1user', 'has space', 'a' * 33, '', nil, 'user;rm', "user\n"].each do |user|
        rejects :fleet, :user, user, rule
      end
      ['www-data', '_svc', 'a' * 32].each { |user| accepts :fleet, :user, user }
    end

    context 'listen_backlog (at most net.core.somaxconn)' do
      rejects :fleet, :listen_backlog, 0, 'must be an integer from 1 to 4096'
      rejects :fleet, :listen_backlog, 4097, 'must be an integer from 1 to 4096'
      rejects :fleet, :listen_backlog, '1024', 'must be an integer from 1 to 4096'
      rejects :fleet, :listen_backlog, 1024, 'must be an integer from 1 to 128', somaxconn: 128
      accepts :fleet, :listen_backlog, 4096
      accepts :fleet, :listen_backlog, 65_535, somaxconn: 65_535
    end

    context 'buffer_size' do
      rule = 'must be an integer from 4096 to 65535'
      [4095, 65_536, '64k'].each { |size| rejects :fleet, :buffer_size, size, rule }
      [4096, 65_535].each { |size| accepts :fleet, :buffer_size, size }
    end

    context 'harakiri' do
      rule = 'must be an integer from 1 to 3600'
      [0, 3601, 1.5].each { |seconds| rejects :fleet, :harakiri, seconds, rule }
      [1, 3600].each { |seconds| accepts :fleet, :harakiri, seconds }
    end

    context 'process_manager' do
      # The process managers registered when the example runs (a run of the test cookbook adds its own).
      rule = -> { "must be one of #{UwsgiFleet::ProcessManager.names.join(', ')}" }
      ['upstart', 'Systemd', '', nil, :systemd].each { |pm| rejects :fleet, :process_manager, pm, rule }
      accepts :fleet, :process_manager, 'supervisor', systemd: false
      accepts :fleet, :process_manager, 'systemd', systemd: true
      rejects :fleet, :process_manager, 'systemd', 'must be supervisor on this node: systemd is not its init (PID 1)', systemd: false
    end

    context 'the app: store_app, app_module or wsgi_file, exactly one' do
      exactly_one = 'and wsgi_file (or a store_app): exactly one of them must be set'
      rejects :fleet, :app_module, nil, exactly_one, got: {}
      # Two or three are as wrong as none, and reported on app_module too, with the ones that are set.
      rejects :fleet, :wsgi_file, '/srv/app/wsgi.py', exactly_one, reported_as: 'app_module',
                                                                   got: { app_module: 'app.wsgi:application', wsgi_file: '/srv/app/wsgi.py' }
      rejects :fleet, :store_app, 'store', exactly_one, reported_as: 'app_module',
                                                        got: { store_app: 'store', app_module: 'app.wsgi:application' }
      rejects :fleet, :store_app, 'store', exactly_one, reported_as: 'app_module', with: { wsgi_file: '/w.py', app_module: nil },
                                                        got: { store_app: 'store', wsgi_file: '/w.py' }
      rejects :fleet, :store_app, 'store', exactly_one, reported_as: 'app_module', with: { wsgi_file: '/w.py' },
                                                        got: { store_app: 'store', app_module: 'app.wsgi:application', wsgi_file: '/w.py' }
      accepts :fleet, :store_app, 'store', with: { app_module: nil }
      accepts :fleet, :wsgi_file, '/srv/app/wsgi.py', with: { app_module: nil }

      store_rule = 'must be the name of a uwsgi_fleet_store_app, or nil'
      ['Store', '1store', 'a' * 32, '', 5].each do |name|
        rejects :fleet, :store_app, name, store_rule, with: { app_module: nil }
      end

      module_rule = 'must look like package.module or package.module:callable, or nil'
      ['store app', '1mod', 'pkg.mod:call:extra', 'pkg/mod', 'pkg.mod:', 'mod;import os', "mod\n", ''].each do |mod|
        rejects :fleet, :app_module, mod, module_rule
      end
      %w(app app.wsgi app.wsgi:application _private.mod:_app).each { |mod| accepts :fleet, :app_module, mod }

      ['wsgi.py', '/srv/my app/wsgi.py', '', '/srv/../etc/wsgi.py'].each do |file|
        rejects :fleet, :wsgi_file, file, 'must be an absolute path (no .. segments), or nil', with: { app_module: nil }
      end
    end

    context 'chdir and virtualenv' do
      ['opt/uwsgi_fleet', '', nil, '/opt/uwsgi fleet', "/opt/\0x", "/opt/x\n", '/opt/..', '/opt/../etc'].each do |dir|
        rejects :fleet, :chdir, dir, 'must be an absolute path (no .. segments)'
      end
      ['venv', '', '/srv/my venv', '/srv/../venv'].each { |dir| rejects :fleet, :virtualenv, dir, 'must be an absolute path (no .. segments), or nil' }
      accepts :fleet, :chdir, '/opt/100%app'
      accepts :fleet, :chdir, '/opt/..app/x..'
      accepts :fleet, :virtualenv, '/srv/venv'
      accepts :fleet, :virtualenv, nil
    end

    context 'pythonpath' do
      rule = 'must be a list of absolute paths'
      ['/opt/uwsgi_fleet', nil, ['lib'], ['/opt/uwsgi_fleet', nil], ['/a b']].each do |path|
        rejects :fleet, :pythonpath, path, rule
      end
      accepts :fleet, :pythonpath, []
      accepts :fleet, :pythonpath, ['/srv/app', '/srv/lib']
    end

    context 'env' do
      rule = 'must map NAME (a string of letters, digits, _) to a string (no control characters) or number'
      # A Symbol name would not sort with the String names the fleet adds (UWSGI_FLEET_INSTANCE, ...).
      [{ 'X' => "a\nb" }, { 'X' => "a\rb" }, { '1BAD' => 'x' }, { 'A-B' => 'x' }, { 'A B' => 'x' }, { '' => 'x' },
       { 'OK' => ['x'] }, { 'OK' => nil }, { 'OK' => true }, { 'OK' => { 'x' => 1 } }, { OK: 'x' }, { 1 => 'x' },
       'A=b', nil, [%w(A b)]].each do |env|
        rejects :fleet, :env, env, rule
      end
      accepts :fleet, :env, { 'DJANGO_SETTINGS_MODULE' => 'app.settings', '_X1' => 2, 'RATE' => 0.5, 'EMPTY' => '' }
    end

    context 'listen' do
      [0, -80, 65_536, '80', nil].each { |listen| rejects :fleet, :listen, listen, 'must be an integer from 1 to 65535' }

      clash = ->(port) { "is #{port}, a port already used by a uWSGI instance (9000..9003); pick a port outside that range" }
      [9000, 9001, 9003].each { |port| rejects :fleet, :listen, port, clash.call(port), with: { processes: 4 } }
      rejects :fleet, :listen, 9003, clash.call(9003), cpus: 4 # processes 'auto' -> 4 instances
      accepts :fleet, :listen, 9004, with: { processes: 4 }
      accepts :fleet, :listen, 8999, with: { processes: 4 }
      accepts :fleet, :listen, 443
    end

    context 'listen_address' do
      ['localhost', '', '127.0.0.1:80', '10.0.0.0/8', 5].each do |address|
        rejects :fleet, :listen_address, address, 'must be a plain IPv4 or IPv6 address, or nil'
      end
      [nil, '10.0.0.5', '::1'].each { |address| accepts :fleet, :listen_address, address }
    end

    context 'server_name' do
      rule = 'must be nginx server names separated by single spaces, without ; { } quotes, # or \\'
      ['a;b', 'example.com;', 'example.com {', 'a}', "a'b", 'a"b', 'a#b', 'a\\b', 'a  b', ' a', 'a ', '', nil, "a\nb", "a\tb", 1].each do |name|
        rejects :fleet, :server_name, name, rule
      end
      ['_', 'example.com', 'example.com www.example.com', '*.example.com', 'localhost 127.0.0.1'].each do |name|
        accepts :fleet, :server_name, name
      end
    end

    context 'default_server' do
      ['yes', nil, 1, 'true'].each { |value| rejects :fleet, :default_server, value, 'must be true or false' }
      [true, false].each { |value| accepts :fleet, :default_server, value }
    end

    context 'client_max_body_size' do
      rule = "must be an nginx size from '1m' to '1g' (a Sentry event is up to 1 MB)"
      ['512k', '1048575', '2g', '1025m', 'big', '1.5m', '', nil].each do |size|
        # client_body_buffer_size is then checked against 1g (or the size given) instead.
        rejects :fleet, :client_max_body_size, size, rule, with: { client_body_buffer_size: '8k' }
      end
      ['1m', '1g', '1024M', 1_048_576].each { |size| accepts :fleet, :client_max_body_size, size }
    end

    context 'client_body_buffer_size (from 8k to client_max_body_size)' do
      rule = "must be an nginx size from '8k' to client_max_body_size"
      ['4k', '8191', '4m', '3m', 'x', nil].each { |size| rejects :fleet, :client_body_buffer_size, size, rule }
      rejects :fleet, :client_body_buffer_size, '2m', rule, with: { client_max_body_size: '1m' }
      accepts :fleet, :client_body_buffer_size, '8k'
      accepts :fleet, :client_body_buffer_size, '2m'
      accepts :fleet, :client_body_buffer_size, '8m', with: { client_max_body_size: '8m' }
    end

    context 'balance' do
      rule = 'must be one of least_conn, round_robin, random_two, ip_hash'
      ['random', 'LEAST_CONN', 'least_conn;', nil, '', :least_conn].each { |balance| rejects :fleet, :balance, balance, rule }
      %w(least_conn round_robin random_two ip_hash).each { |balance| accepts :fleet, :balance, balance }
    end

    context 'max_conns (requests nginx gives one instance at once)' do
      rule = "must be 'auto' or an integer from 0 (no limit) to 65535"
      [-1, 65_536, '8', 'AUTO', '', nil, 2.0, true].each { |conns| rejects :fleet, :max_conns, conns, rule }
      [0, 1, 8, 65_535, 'auto'].each { |conns| accepts :fleet, :max_conns, conns }
    end

    context 'burst_queue_ms and sustained_queue_ms (how long a request may queue)' do
      rule = 'must be an integer from 0 to 60000'
      [-1, 60_001, '500', nil, 0.5].each { |ms| rejects :fleet, :burst_queue_ms, ms, rule }
      [0, 500, 60_000].each { |ms| accepts :fleet, :burst_queue_ms, ms, with: { sustained_queue_ms: 0 } }
      [-1, 60_001, '50', nil].each { |ms| rejects :fleet, :sustained_queue_ms, ms, rule }
      [0, 50, 500].each { |ms| accepts :fleet, :sustained_queue_ms, ms }
      rejects :fleet, :sustained_queue_ms, 501, 'must not exceed burst_queue_ms (500)'
    end

    context 'client_timeout' do
      rule = 'must be an integer from 1 to 300'
      [0, 301, '10', 2.5].each { |timeout| rejects :fleet, :client_timeout, timeout, rule }
      [1, 300].each { |timeout| accepts :fleet, :client_timeout, timeout }
    end

    context 'remove_sites' do
      rule = 'must be a list of absolute paths under /etc/nginx (no .. or %)'
      ['/etc/nginx/sites-enabled/default', nil, ['sites-enabled/default'], ['/etc/other/site'], ['/etc/nginx'],
       ['/etc/nginx/a b'], [nil], ['/etc/nginx/../shadow'], ['/etc/nginx/sites-enabled/../../shadow'],
       ['/etc/nginx/conf.d/100%.conf']].each do |sites|
        rejects :fleet, :remove_sites, sites, rule
      end
      accepts :fleet, :remove_sites, []
      accepts :fleet, :remove_sites, ['/etc/nginx/sites-enabled/default', '/etc/nginx/conf.d/old.conf']
    end

    context 'nginx_main_config' do
      rule = 'must be the text of an nginx.conf, or nil'
      ['', 5, ['events {}']].each { |text| rejects :fleet, :nginx_main_config, text, rule }
      accepts :fleet, :nginx_main_config, nil
      accepts :fleet, :nginx_main_config, "events {}\nhttp {}\n"
    end

    context 'conf_dir, fifo_dir and log_dir' do
      %i(conf_dir fifo_dir log_dir).each do |property|
        # (:create gives fifo_dir and log_dir to the fleet user, 0750; :delete removes them recursively.)
        ['/', '//', 'relative/dir', '', nil, '/var/lib/a b', '/var/lib/..', '/var/lib/../../etc'].each do |dir|
          rejects :fleet, property, dir, 'must be an absolute path other than / (no .. segments)'
        end
        accepts :fleet, property, '/srv/fleet'
      end
    end

    context 'instance_prefix' do
      rule = 'must be lowercase letters, digits, _ and -, starting with a letter (up to 50)'
      ['Web', '1web', 'web.', 'web app', 'a' * 51, '', nil, 'web@'].each { |prefix| rejects :fleet, :instance_prefix, prefix, rule }
      ['web-', 'uwsgi_fleet_', 'uwsgi-fleet-store', 'a' * 50].each { |prefix| accepts :fleet, :instance_prefix, prefix }

      it "leaves room for the default prefixes of the longest name (#{'a' * 31})" do
        %w(supervisor systemd).each do |pm|
          prefix = UwsgiFleet::Fleet.named_defaults('a' * 31, pm)[:instance_prefix]
          expect(described_class::FLEET[:instance_prefix].error(:instance_prefix, prefix)).to be_nil, prefix
        end
      end
    end

    context 'upstream (named uwsgi_fleet_<name> by default: longer than a name may be)' do
      rule = 'must be lowercase letters, digits and _, starting with a letter (up to 63)'
      ['Up', 'up-stream', '1up', 'a' * 64, '', nil].each { |name| rejects :fleet, :upstream, name, rule }
      ['up', 'uwsgi_fleet', 'a' * 32, "uwsgi_fleet_#{'a' * 31}", 'a' * 63].each { |name| accepts :fleet, :upstream, name }
    end

    context 'site_file' do
      rule = 'must be an absolute path ending in .conf under /etc/nginx (no .. or %)'
      # (Its path goes into a verify command, which Chef formats with %.)
      ['/etc/nginx/conf.d/fleet', '/etc/other/fleet.conf', 'conf.d/fleet.conf', '/etc/nginx/conf.d/a b.conf', nil,
       '/etc/nginx/../cron.d/x.conf', '/etc/nginx/conf.d/a%b.conf', '/etc/nginx/conf.d/%{path}.conf'].each do |file|
        rejects :fleet, :site_file, file, rule
      end
      accepts :fleet, :site_file, '/etc/nginx/sites-enabled/fleet.conf'
    end

    context 'several bad properties' do
      it 'names them all in one message, in the order of the rules' do
        props = fleet.merge(threads: 0, balance: 'fastest', processes: 0, listen_backlog: 0, app_module: nil,
                            process_manager: 'systemd', name: 'Bad')
        expect(message_lines(errors_of(:fleet, props, systemd: false))).to eq([
                                                                                'threads must be an integer from 1 to 256; got 0',
                                                                                'balance must be one of least_conn, round_robin, random_two, ip_hash; got "fastest"',
                                                                                'name must be lowercase letters, digits and _, starting with a letter (up to 31); got "Bad"',
                                                                                "processes must be 'auto' or an integer from 1 to 56536 (instance ports start at base_port 9000 and may not pass 65535); got 0",
                                                                                'listen_backlog must be an integer from 1 to 4096; got 0',
                                                                                'app_module and wsgi_file (or a store_app): exactly one of them must be set; got {}',
                                                                                'process_manager must be supervisor on this node: systemd is not its init (PID 1); got "systemd"',
                                                                              ])
      end
    end

    context 'when the fleet is being deleted (:delete needs only its name)' do
      it 'ignores every other property' do
        props = { name: 'store', threads: 0, processes: 'many', process_manager: 'systemd', app_module: nil }
        expect(errors_of(:fleet, props, systemd: false, action: :delete)).to eq([])
      end

      it 'still checks the name' do
        expect(message_lines(errors_of(:fleet, { name: '../etc' }, action: :delete))).to eq(
          ['name must be lowercase letters, digits and _, starting with a letter (up to 31); got "../etc"']
        )
      end
    end

    it 'reports a value of any wrong type for every property (none escapes validation)' do
      poison = Object.new
      fleet.each_key do |property|
        paths = errors_of(:fleet, fleet.merge(property => poison)).map { |e| e.path.first }
        expect(paths).to include(property), "#{property} = #{poison.inspect} went through"
      end
    end
  end

  describe 'the rules of uwsgi_fleet_store_app' do
    it 'accepts properties that are valid together' do
      expect(errors_of(:store_app, store_app)).to eq([])
    end

    it 'has a rule for every property but projects (checked project by project) and name' do
      expect(described_class::STORE_APP.keys).to match_array(store_app.keys - %i(name projects))
    end

    context 'name' do
      rejects :store_app, :name, 'Store', 'must be lowercase letters, digits and _, starting with a letter (up to 31)'
    end

    context 'user' do
      rule = 'must be a system user name (lowercase, up to 32 characters) other than root'
      ['root', 'Uwsgi', nil].each { |user| rejects :store_app, :user, user, rule }
    end

    context 'projects' do
      rule = "must map a project id to { 'public_key' => '<32 hex>' }"
      [[], 'x', nil].each { |projects| rejects :store_app, :projects, projects, rule }

      accepts :store_app, :projects, { '1' => { 'public_key' => key } }
      accepts :store_app, :projects, { '4294967295' => { 'public_key' => key, 'rate_limit' => { 'events_per_second' => 0.5, 'burst' => 4 } } }

      # (A JSON config has string keys: 5 and '5' would be two projects named alike.)
      %w(01 0 abc 12345678901 -1 1.5).push('', '1 ', 5, :'5', nil).each do |id|
        rejects :store_app, :projects, { id => { 'public_key' => key } },
                "has project id #{id.inspect}; ids must be strings of digits (1 to 10 of them, no leading 0)", got: id
      end

      key_rule = 'must be 32 lowercase hex characters, as Sentry keys are'
      [key.upcase, key[0, 31], "#{key}0", 'g' * 32, '', nil, 1234].each do |bad_key|
        rejects :store_app, :projects, { '5' => { 'public_key' => bad_key } }, key_rule,
                reported_as: "projects['5']['public_key']", got: bad_key
      end
      rejects :store_app, :projects, { '5' => {} }, key_rule, reported_as: "projects['5']['public_key']", got: nil
      rejects :store_app, :projects, { '5' => key }, key_rule, reported_as: "projects['5']['public_key']", got: nil
      rejects :store_app, :projects, { '5' => { public_key: key } }, key_rule, reported_as: "projects['5']['public_key']", got: nil

      limit_rule = "must be { 'events_per_second' => 0.001..1000000, 'burst' => 1..10000000 }"
      ['fast', nil, 100, { 'events_per_second' => 0, 'burst' => 10 }, { 'events_per_second' => 10, 'burst' => 0 },
       { 'events_per_second' => 10 }].each do |limit|
        rejects :store_app, :projects, { '5' => { 'public_key' => key, 'rate_limit' => limit } }, limit_rule,
                reported_as: "projects['5']['rate_limit']", got: limit
      end

      it 'reports every bad project' do
        projects = { '01' => { 'public_key' => key }, '2' => { 'public_key' => 'nope' }, '3' => { 'public_key' => key } }
        expect(message_lines(errors_of(:store_app, store_app.merge(projects: projects)))).to eq([
                                                                                                  'projects has project id "01"; ids must be strings of digits (1 to 10 of them, no leading 0); got "01"',
                                                                                                  %(projects['2']['public_key'] must be 32 lowercase hex characters, as Sentry keys are; got "nope"),
                                                                                                ])
      end
    end

    context 'spool_dir' do
      rule = 'must be an absolute path other than / (no .. segments)'
      ['/', '//', 'var/spool/uwsgi_fleet', '', nil, '/var/spool/uwsgi fleet', "/var/spool/x\0", '/var/spool/../../etc'].each do |dir|
        rejects :store_app, :spool_dir, dir, rule
      end
      accepts :store_app, :spool_dir, '/srv/spool'
    end

    context 'rate_limit' do
      rule = "must be { 'events_per_second' => 0.001..1000000, 'burst' => 1..10000000 }"
      [nil, 1000, {}, { 'events_per_second' => 10 }, { 'burst' => 10 }, { events_per_second: 10, burst: 10 },
       { 'events_per_second' => 10, 'burst' => 10, 'extra' => 1 }].each do |limit|
        rejects :store_app, :rate_limit, limit, rule
      end
      [0, 0.0009, 1_000_001, '1000', nil, Complex(1, 0)].each do |rate|
        rejects :store_app, :rate_limit, { 'events_per_second' => rate, 'burst' => 10 }, rule
      end
      [0, 10_000_001, 1.5, '2000', nil].each do |burst|
        rejects :store_app, :rate_limit, { 'events_per_second' => 10, 'burst' => burst }, rule
      end
      accepts :store_app, :rate_limit, { 'events_per_second' => 0.001, 'burst' => 1 }
      accepts :store_app, :rate_limit, { 'events_per_second' => 1_000_000, 'burst' => 10_000_000 }
    end

    context 'max_event_bytes' do
      rule = 'must be an integer from 1048576 to 20971520'
      [1024, 1_048_575, 20_971_521, 1_073_741_824, '20m', nil].each { |bytes| rejects :store_app, :max_event_bytes, bytes, rule }
      [1_048_576, 20_971_520].each { |bytes| accepts :store_app, :max_event_bytes, bytes }
    end

    context 'max_attachment_bytes' do
      rule = 'must be an integer from 1048576 to 1073741824'
      [1024, 1_048_575, 1_073_741_825, '20m', 2.5, nil].each { |bytes| rejects :store_app, :max_attachment_bytes, bytes, rule }
      [1_048_576, 20_971_520, 1_073_741_824].each { |bytes| accepts :store_app, :max_attachment_bytes, bytes }
    end

    context 'max_body_size' do
      rule = "must be an nginx size from '1m' to '1g' (a Sentry event is up to 1 MB)"
      ['512k', '2g', 'big', nil].each { |size| rejects :store_app, :max_body_size, size, rule }
      %w(1m 1g).each { |size| accepts :store_app, :max_body_size, size }
    end

    context 'max_envelope_size' do
      rule = "must be an nginx size from '1m' to '1g' (a Sentry event is up to 1 MB), or nil"
      ['512k', '2g', 'big', 2.5].each { |size| rejects :store_app, :max_envelope_size, size, rule }
      ['1m', '1g', nil].each { |size| accepts :store_app, :max_envelope_size, size }
      # One event always fits a whole envelope; unset, the envelope takes the larger of the two.
      rejects :store_app, :max_envelope_size, '1m', 'must be at least max_event_bytes (2097152)', with: { max_event_bytes: 2_097_152 }
      accepts :store_app, :max_envelope_size, '2m', with: { max_event_bytes: 2_097_152 }
      accepts :store_app, :max_envelope_size, nil, with: { max_event_bytes: 20_971_520, max_body_size: '1m' }
    end

    context 'stream_maxlen' do
      rule = 'must be an integer of at least 1, or nil'
      [0, -5, 1.5, '1000'].each { |maxlen| rejects :store_app, :stream_maxlen, maxlen, rule }
      [1, 1_000_000, nil].each { |maxlen| accepts :store_app, :stream_maxlen, maxlen }
    end

    context 'simulated_hops' do
      rule = 'must be an integer from 0 to 10'
      [-1, 11, 1.5, '2', nil].each { |hops| rejects :store_app, :simulated_hops, hops, rule }
      [0, 10].each { |hops| accepts :store_app, :simulated_hops, hops }
    end

    context 'simulated_hop_ms' do
      rule = 'must be a number from 0 to 1000'
      [-1, 1001, 1000.5, '2', nil, Complex(2, 0)].each { |ms| rejects :store_app, :simulated_hop_ms, ms, rule }
      [0, 0.5, 1000].each { |ms| accepts :store_app, :simulated_hop_ms, ms }
    end

    context 'install_dir, log_dir, config_path and key_path' do
      %i(install_dir log_dir).each do |property|
        ['/', 'opt/store', nil, '/opt/my store', '/opt/../etc'].each do |dir|
          rejects :store_app, property, dir, 'must be an absolute path other than / (no .. segments)'
        end
      end
      %i(config_path key_path).each do |property|
        ['store_app.json', nil, '/etc/a b.json', '/etc/uwsgi_fleet/../shadow'].each do |path|
          rejects :store_app, property, path, 'must be an absolute path (no .. segments)'
        end
      end
    end

    context 'the shared Redis: redis_url, quota_redis_url, redis_password, quota_backend, forward_events, process_manager' do
      password = 'p' * 16
      url_rule = 'must be redis://<address>:<port>/<db> (IPv6 in brackets; the password is given apart), or nil'
      # A URL is never printed back (it may hold a password, against its rule): the message shows [sensitive].
      %i(redis_url quota_redis_url).each do |property|
        ['10.0.0.5:6379', 'http://10.0.0.5:6379/0', 'redis://10.0.0.5:6379', 'redis://10.0.0.5:6379/100',
         'redis://10.0.0.5:6379/0 ', 'redis://10.0.0.5:port/0', '', 5,
         'redis://fd00::5:6379/0', 'redis://[fd00::5:6379/0', 'redis://fd00::5]:6379/0', 'redis://[fd00::5]]:6379/0',
         'redis://[]:6379/0', 'redis://[fd00::5%eth0]:6379/0'].each do |url|
          rejects :store_app, property, url, url_rule, shown: '[sensitive]'
        end
        ['redis://:secret@10.0.0.5:6379/0', 'redis://:secret@[fd00::5]:6379/0'].each do |url|
          it "rejects #{property} = #{url.inspect} (the password is given apart), without printing it" do
            lines = message_lines(errors_of(:store_app, store_app.merge(property => url, redis_password: password)))
            expect(lines).to eq(["#{property} #{url_rule}; got [sensitive]"])
          end
        end
        ['redis://10.0.0.5:6379/0', 'redis://redis.internal/1', 'redis://10.0.0.5:6380/15',
         'redis://[fd00::5]:6379/0', 'redis://[::1]/0', 'redis://[::ffff:10.0.0.5]:6379/15'].each do |url|
          accepts :store_app, property, url, with: { redis_password: password }
        end
      end

      # The password is never printed back: the message shows [sensitive] in its place.
      password_rule = 'must be 16-128 characters without spaces, quotes or backslashes, or nil'
      ['p' * 15, 'p' * 129, "#{'p' * 16} x", "#{'p' * 16}'", "#{'p' * 16}\"", "#{'p' * 16}\\", "#{'p' * 16}\n", 16].each do |bad|
        rejects :store_app, :redis_password, bad, password_rule, shown: '[sensitive]'
      end
      ['p' * 16, 'p' * 128, 'A-z_0.9!$&*()+=,;@#'].each do |good|
        accepts :store_app, :redis_password, good
      end

      ['remote', 'REDIS', nil].each { |backend| rejects :store_app, :quota_backend, backend, 'must be one of local, redis' }
      ['yes', nil, 1].each { |value| rejects :store_app, :forward_events, value, 'must be true or false' }
      ['upstart', nil].each { |pm| rejects :store_app, :process_manager, pm, -> { "must be one of #{UwsgiFleet::ProcessManager.names.join(', ')}" } }
      accepts :store_app, :process_manager, 'systemd'

      # The forwarder runs as a unit only where systemd is PID 1; without forwarding nothing runs.
      forwarding = { redis_url: 'redis://10.0.0.5:6379/0', redis_password: password, forward_events: true }
      rejects :store_app, :process_manager, 'systemd', 'must be supervisor on this node: systemd is not its init (PID 1)',
              with: forwarding, systemd: false
      accepts :store_app, :process_manager, 'systemd', with: forwarding, systemd: true
      accepts :store_app, :process_manager, 'supervisor', with: forwarding, systemd: false
      accepts :store_app, :process_manager, 'systemd', systemd: false
      accepts :store_app, :process_manager, 'systemd', with: forwarding.merge(forward_events: false, quota_backend: 'redis',
                                                                              quota_redis_url: 'redis://10.0.0.5:6380/0'), systemd: false

      # Each use needs its own URL (the stream redis_url, the quota quota_redis_url) and the password.
      forward_rule = 'and redis_password must be set when forward_events is true'
      quota_rule = 'and redis_password must be set when quota_backend is redis'
      rejects :store_app, :forward_events, true, forward_rule, reported_as: 'redis_url', shown: '[sensitive]'
      rejects :store_app, :forward_events, true, forward_rule, reported_as: 'redis_url', shown: '[sensitive]',
                                                               with: { redis_url: 'redis://10.0.0.5:6379/0' }
      rejects :store_app, :forward_events, true, forward_rule, reported_as: 'redis_url', shown: '[sensitive]',
                                                               with: { quota_redis_url: 'redis://10.0.0.5:6380/0', redis_password: password }
      rejects :store_app, :quota_backend, 'redis', quota_rule, reported_as: 'quota_redis_url', shown: '[sensitive]'
      rejects :store_app, :quota_backend, 'redis', quota_rule, reported_as: 'quota_redis_url', shown: '[sensitive]',
                                                               with: { quota_redis_url: 'redis://10.0.0.5:6380/0' }
      # The stream's URL is not the quota's.
      rejects :store_app, :quota_backend, 'redis', quota_rule, reported_as: 'quota_redis_url', shown: '[sensitive]',
                                                               with: { redis_url: 'redis://10.0.0.5:6379/0', redis_password: password }
      accepts :store_app, :quota_backend, 'redis', with: { quota_redis_url: 'redis://10.0.0.5:6380/0', redis_password: password }
      accepts :store_app, :forward_events, true, with: { redis_url: 'redis://10.0.0.5:6379/0', redis_password: password }
      accepts :store_app, :forward_events, true, with: { redis_url: 'redis://10.0.0.5:6379/0', quota_redis_url: 'redis://10.0.0.5:6380/0',
                                                         redis_password: password, quota_backend: 'redis' }
      # A URL alone uses nothing: the quota stays the node's and nothing is forwarded.
      accepts :store_app, :redis_url, 'redis://10.0.0.5:6379/0'
      accepts :store_app, :quota_redis_url, 'redis://10.0.0.5:6380/0'

      it 'names each use that lacks the password, the stream first' do
        props = store_app.merge(redis_url: 'redis://10.0.0.5:6379/0', quota_redis_url: 'redis://10.0.0.5:6380/0',
                                quota_backend: 'redis', forward_events: true)
        expect(message_lines(errors_of(:store_app, props))).to eq(["redis_url #{forward_rule}; got [sensitive]",
                                                                   "quota_redis_url #{quota_rule}; got [sensitive]"])
      end
    end

    it 'names several bad properties in one message' do
      props = store_app.merge(spool_dir: '/', simulated_hops: 11, projects: { 'x' => { 'public_key' => key } })
      expect(message_lines(errors_of(:store_app, props))).to eq([
                                                                  'spool_dir must be an absolute path other than / (no .. segments); got "/"',
                                                                  'simulated_hops must be an integer from 0 to 10; got 11',
                                                                  'projects has project id "x"; ids must be strings of digits (1 to 10 of them, no leading 0); got "x"',
                                                                ])
    end

    it 'reports a value of any wrong type for every property (none escapes validation)' do
      poison = Object.new
      (store_app.keys - [:name]).each do |property|
        paths = errors_of(:store_app, store_app.merge(property => poison)).map { |e| e.path.first }
        expect(paths).to include(property), "#{property} = #{poison.inspect} went through"
      end
    end
  end

  describe 'the rules of uwsgi_fleet_balancer' do
    it 'accepts properties that are valid together' do
      expect(errors_of(:balancer, balancer)).to eq([])
    end

    it 'has a fixed rule for every property but name, backends and client_body_buffer_size (checked against the body size)' do
      expect(described_class::BALANCER.keys).to match_array(balancer.keys - %i(name backends client_body_buffer_size))
    end

    it "shares the fleet's rules for what both render into an nginx site" do
      %i(listen_address server_name remove_sites upstream site_file).each do |property|
        expect(described_class::BALANCER[property]).to be(described_class::FLEET[property])
      end
    end

    context 'backends' do
      rule = "must be a non-empty list of 'address:port' (no web node found?)"
      # An empty list is what a search that found no web node gives.
      [[], nil, '10.0.0.11:80', ['10.0.0.11'], ['10.0.0.11:0'], ['10.0.0.11:65536'], ['10.0.0.11:http'], ['web1:80'],
       ['10.0.0.0/8:80'], ['10.0.0.11:80', nil], ['10.0.0.11:80 backup'], ['fe80::1%eth0:80'], [':80'],
       # nginx writes an IPv6 address in brackets, and a port without leading zeros.
       ['fd00::11:80'], ['[fd00::11]'], ['10.0.0.11:080'], ['[fd00::11]:08080'], ['10.0.0.11:00']].each do |backends|
        rejects :balancer, :backends, backends, rule
      end
      accepts :balancer, :backends, ['10.0.0.11:80']
      accepts :balancer, :backends, %w([fd00::11]:8080 10.0.0.12:65535)
    end

    context 'listen, listen_address, server_name and default_server' do
      [0, 65_536, '80', nil].each { |listen| rejects :balancer, :listen, listen, 'must be an integer from 1 to 65535' }
      ['0.0.0.0:80', 'localhost', ''].each do |address|
        rejects :balancer, :listen_address, address, 'must be a plain IPv4 or IPv6 address, or nil'
      end
      ['10.0.0.2', '::'].each { |address| accepts :balancer, :listen_address, address }
      rejects :balancer, :server_name, 'a;b', 'must be nginx server names separated by single spaces, without ; { } quotes, # or \\'
      rejects :balancer, :default_server, 'yes', 'must be true or false'
    end

    context 'the timeouts' do
      { connect_timeout: 60, fail_timeout: 300, read_timeout: 3600, client_timeout: 300 }.each do |property, max|
        [0, max + 1, '1', 1.5].each { |value| rejects :balancer, property, value, "must be an integer from 1 to #{max}" }
        [1, max].each { |value| accepts :balancer, property, value }
      end
    end

    context 'balance and the body sizes' do
      rejects :balancer, :balance, 'fastest', 'must be one of least_conn, round_robin, random_two, ip_hash'
      rejects :balancer, :client_max_body_size, '512k', "must be an nginx size from '1m' to '1g' (a Sentry event is up to 1 MB)",
              with: { client_body_buffer_size: '8k' }
      rejects :balancer, :client_body_buffer_size, '4m', "must be an nginx size from '8k' to client_max_body_size"
      accepts :balancer, :client_body_buffer_size, '8m', with: { client_max_body_size: '8m' }
    end

    context 'the nginx files' do
      rejects :balancer, :site_file, '/etc/nginx/conf.d/a%b.conf', 'must be an absolute path ending in .conf under /etc/nginx (no .. or %)'
      rejects :balancer, :remove_sites, ['/etc/nginx/../shadow'], 'must be a list of absolute paths under /etc/nginx (no .. or %)'
      ['up-stream', 'a' * 64].each do |upstream|
        rejects :balancer, :upstream, upstream, 'must be lowercase letters, digits and _, starting with a letter (up to 63)'
      end
      accepts :balancer, :upstream, "uwsgi_fleet_balancer_#{'a' * 31}"
    end

    it 'names several bad properties in one message, backends after the fixed rules' do
      props = balancer.merge(backends: [], read_timeout: 0, name: 'Bad')
      expect(message_lines(errors_of(:balancer, props))).to eq([
                                                                 'read_timeout must be an integer from 1 to 3600; got 0',
                                                                 'name must be lowercase letters, digits and _, starting with a letter (up to 31); got "Bad"',
                                                                 "backends must be a non-empty list of 'address:port' (no web node found?); got []",
                                                               ])
    end

    it 'checks only the name of a balancer being deleted' do
      expect(errors_of(:balancer, { name: 'default', backends: [] }, action: :delete)).to eq([])
      expect(message_lines(errors_of(:balancer, { name: '../x' }, action: :delete))).to eq(
        ['name must be lowercase letters, digits and _, starting with a letter (up to 31); got "../x"']
      )
    end

    it 'reports a value of any wrong type for every property (none escapes validation)' do
      poison = Object.new
      (balancer.keys - [:name]).each do |property|
        paths = errors_of(:balancer, balancer.merge(property => poison)).map { |e| e.path.first }
        expect(paths).to include(property), "#{property} = #{poison.inspect} went through"
      end
    end
  end

  describe 'the rules of uwsgi_fleet_redis' do
    it 'accepts properties that are valid together' do
      expect(errors_of(:redis, redis)).to eq([])
    end

    it 'has a fixed rule for every property but name and quota_port (checked against port)' do
      expect(described_class::REDIS.keys).to match_array(redis.keys - %i(name quota_port))
    end

    context 'bind_address (a private address of the node, never every address)' do
      rule = 'must be a plain IPv4 or IPv6 address of the node, not 0.0.0.0 or ::'
      ['0.0.0.0', '::', '0:0::0', nil, '', 'localhost', '10.0.0.5:6379', '10.0.0.0/8', '[fd00::5]'].each do |address|
        rejects :redis, :bind_address, address, rule
      end
      ['10.0.0.5', '127.0.0.1', 'fd00::5'].each { |address| accepts :redis, :bind_address, address }
    end

    context 'port' do
      [1023, 65_536, '6379', nil].each { |port| rejects :redis, :port, port, 'must be an integer from 1024 to 65535' }
      [1024, 6379, 65_535].each { |port| accepts :redis, :port, port }
    end

    context 'password (required)' do
      rule = 'must be 16-128 characters without spaces, quotes or backslashes'
      # The password is never printed back, not even a missing one: the message shows [sensitive].
      [nil, '', 'short', 'p' * 15, 'p' * 129, "#{'p' * 8} #{'p' * 8}", "#{'p' * 16}'", "#{'p' * 16}\"", "#{'p' * 16}\\", "#{'p' * 16}\n"].each do |password|
        rejects :redis, :password, password, rule, shown: '[sensitive]'
      end
      ['p' * 16, 'p' * 128].each { |password| accepts :redis, :password, password }
    end

    context 'appendfsync' do
      ['no', 'ALWAYS', nil].each { |policy| rejects :redis, :appendfsync, policy, 'must be one of always, everysec' }
      %w(always everysec).each { |policy| accepts :redis, :appendfsync, policy }
    end

    context 'quota_port (the quota instance, beside the events one on port)' do
      rule = 'must be an integer from 1024 to 65535 other than port'
      [1023, 65_536, '6380', nil, 6380.0].each { |port| rejects :redis, :quota_port, port, rule }
      rejects :redis, :quota_port, 6379, rule
      rejects :redis, :quota_port, 6380, rule, with: { port: 6380 }
      [1024, 6378, 65_535].each { |port| accepts :redis, :quota_port, port }
      accepts :redis, :quota_port, 6379, with: { port: 6380 }
    end

    it 'names every bad property in one message, quota_port last' do
      props = redis.merge(bind_address: '0.0.0.0', port: 80, quota_port: 80, name: 'Bad')
      expect(message_lines(errors_of(:redis, props))).to eq([
                                                              'bind_address must be a plain IPv4 or IPv6 address of the node, not 0.0.0.0 or ::; got "0.0.0.0"',
                                                              'port must be an integer from 1024 to 65535; got 80',
                                                              'name must be lowercase letters, digits and _, starting with a letter (up to 31); got "Bad"',
                                                              'quota_port must be an integer from 1024 to 65535 other than port; got 80',
                                                            ])
    end
  end

  describe '.raise_if_any!' do
    it 'is true when there are no errors' do
      expect(described_class.raise_if_any!([], subject: 'x', namer: described_class.method(:property_name))).to be(true)
    end

    it 'raises InvalidConfiguration, an ArgumentError, with a header and one line per error' do
      errors = [described_class::Error.new([:threads], 'must be an integer from 1 to 256', 0),
                described_class::Error.new([:balance], 'must be one of a, b', 'c')]
      expect { described_class.raise_if_any!(errors, subject: 'uwsgi_fleet[api]', namer: ->(path) { path.first.to_s.upcase }, noun: 'things') }
        .to raise_error(UwsgiFleet::InvalidConfiguration,
                        "uwsgi_fleet[api]: invalid things, nothing was changed:\n  " \
                        "THREADS must be an integer from 1 to 256; got 0\n  BALANCE must be one of a, b; got \"c\"")
      expect(UwsgiFleet::InvalidConfiguration.ancestors).to include(ArgumentError)
    end

    it 'prints [sensitive] instead of the value of a password, redis_password or Redis URL, whatever the value' do
      errors = [described_class::Error.new([:password], 'must be long', 'hunter2hunter2'),
                described_class::Error.new([:redis_password], 'must be long', nil),
                described_class::Error.new([:redis_url], 'must be a URL', 'redis://:hunter2@10.0.0.5:6379/0'),
                described_class::Error.new([:quota_redis_url], 'must be a URL', 'redis://:hunter2@10.0.0.5:6380/0'),
                described_class::Error.new([:threads], 'must be an integer', 'hunter2')]
      expect(message_lines(errors)).to eq(['password must be long; got [sensitive]', 'redis_password must be long; got [sensitive]',
                                           'redis_url must be a URL; got [sensitive]', 'quota_redis_url must be a URL; got [sensitive]',
                                           'threads must be an integer; got "hunter2"'])
      expect(described_class::SENSITIVE).to match_array(%i(password redis_password redis_url quota_redis_url))
    end

    it 'prints HIDDEN, the stand-in for a sensitive value under any name, as [sensitive] without quotes' do
      errors = [described_class::Error.new([:renamed], 'must be long', described_class::HIDDEN)]
      expect(message_lines(errors)).to eq(['renamed must be long; got [sensitive]'])
      expect(described_class::HIDDEN).to be_frozen
    end
  end

  describe '.property_name' do
    it 'is the property for a top-level value' do
      expect(described_class.property_name([:threads])).to eq('threads')
    end

    it 'appends the keys under it for a nested value' do
      expect(described_class.property_name([:projects, '1', 'public_key'])).to eq("projects['1']['public_key']")
    end
  end

  describe 'the building blocks' do
    it 'int takes Integers in the range only' do
      rule = described_class.int(1, 3)
      expect([1, 3].map { |v| rule.check.call(v) }).to all(be(true))
      expect([0, 4, 2.0, '2', nil].map { |v| rule.check.call(v) }).to all(be(false))
    end

    it 'number takes any real number in the range' do
      rule = described_class.number(0, 1)
      expect([0, 0.5, 1, Rational(1, 2)].map { |v| rule.check.call(v) }).to all(be(true))
      expect([-0.1, 1.1, Complex(0.5, 0), '0.5', nil].map { |v| rule.check.call(v) }).to all(be(false))
    end

    it 'optional takes nil as well, and says so' do
      rule = described_class.optional(described_class.int(1, 3))
      expect(rule.allowed).to eq('must be an integer from 1 to 3, or nil')
      expect([nil, 2].map { |v| rule.check.call(v) }).to all(be(true))
      expect(rule.check.call(4)).to be(false)
    end

    it 'Rule#error is nil for a good value and an Error with the path for a bad one' do
      rule = described_class.boolean
      expect(rule.error(:default_server, true)).to be_nil
      expect(rule.error(:default_server, 'yes')).to eq(described_class::Error.new([:default_server], 'must be true or false', 'yes'))
    end

    it 'absolute_path? refuses relative paths, NUL bytes, whitespace and .. segments' do
      ['/srv/app', '/', '/srv/..app', '/srv/a..'].each { |v| expect(described_class.absolute_path?(v)).to be(true) }
      ['srv/app', "/srv/\0", "/srv/a\tb", "/srv/\n", nil, :'/srv', '/..', '/srv/../etc', '/srv/..'].each do |v|
        expect(described_class.absolute_path?(v)).to be(false)
      end
    end

    it 'directory_path refuses / itself, however it is written' do
      rule = described_class.directory_path
      expect(['/', '//', '///'].map { |v| rule.check.call(v) }).to all(be(false))
      expect(rule.check.call('/srv')).to be(true)
    end

    it 'nginx_path takes absolute paths under /etc/nginx/ with the suffix, and no %' do
      rule = described_class.nginx_path('allowed', '.conf')
      expect(rule.allowed).to eq('allowed')
      expect(rule.check.call('/etc/nginx/conf.d/a.conf')).to be(true)
      ['/etc/nginx/conf.d/a', '/etc/nginxx/a.conf', '/etc/nginx/a%b.conf', '/etc/nginx/../a.conf', 'etc/nginx/a.conf'].each do |v|
        expect(rule.check.call(v)).to be(false), v
      end
    end

    it 'backend? takes address:port as nginx writes it: a plain address, IPv6 in brackets, a port from 1 to 65535' do
      ['10.0.0.1:80', '[fd00::1]:8080', '10.0.0.1:65535', '[::1]:1', '[::ffff:10.0.0.1]:80'].each do |v|
        expect(described_class.backend?(v)).to be(true), v
      end
      ['10.0.0.1', '10.0.0.1:', '10.0.0.1:0', '10.0.0.1:x', 'web:80', '10.0.0.1:80:80', nil, 80, '10.0.0.1:65536'].each do |v|
        expect(described_class.backend?(v)).to be(false), v.inspect
      end
    end

    it 'backend? refuses an IPv6 address without brackets (its last group would read as the port)' do
      ['fd00::1:80', '::1:80', 'fd00::1', '[fd00::1', 'fd00::1]:80', '[fe80::1%eth0]:80'].each do |v|
        expect(described_class.backend?(v)).to be(false), v
      end
    end

    it 'backend? refuses a port with leading zeros or a sign (nginx would not write one)' do
      ['10.0.0.1:080', '10.0.0.1:0080', '[fd00::1]:08080', '10.0.0.1:+80', '10.0.0.1:-80', '10.0.0.1: 80'].each do |v|
        expect(described_class.backend?(v)).to be(false), v
      end
    end

    # (nginx -t: invalid IPv6 address in upstream "[10.0.0.1]:80".)
    it 'backend? refuses an IPv4 address in brackets (nginx reads brackets as IPv6 and refuses the line)' do
      ['[10.0.0.1]:80', '[127.0.0.1]:8080'].each { |v| expect(described_class.backend?(v)).to be(false), v }
    end

    it 'plain_ip_address? refuses CIDR, brackets, zone ids and non-strings' do
      expect(described_class.plain_ip_address?('::1')).to be(true)
      ['10.0.0.0/8', '[::1]', 'fe80::1%eth0', 'host', nil].each { |v| expect(described_class.plain_ip_address?(v)).to be(false) }
    end

    it 'scalar? takes numbers and one-line strings' do
      expect([1, 0.5, '', 'a b'].map { |v| described_class.scalar?(v) }).to all(be(true))
      expect(["a\nb", "a\x7fb", nil, true, :sym].map { |v| described_class.scalar?(v) }).to all(be(false))
    end
  end
end
