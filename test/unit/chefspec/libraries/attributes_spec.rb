require_relative '../spec_helper'

# The default recipe's interface: node['uwsgi_fleet'] (attributes/default.rb)
# mapped onto one uwsgi_fleet_store_app and one uwsgi_fleet, and every rule of
# UwsgiFleet::Validation named by the attribute the operator set. One bad value
# per example, on top of the real defaults; each example checks the whole line
# the operator reads: the attribute path, the allowed values and the value given.
describe UwsgiFleet::Attributes do
  key = '0123456789abcdef0123456789abcdef'

  let(:attrs) { default_attrs }

  # Sets attrs[path[0]][path[1]]... = value.
  def set_attr(hash, path, value)
    *parents, last = path
    parents.inject(hash) { |acc, elem| acc[elem] }[last] = value
  end

  def node_path(path)
    "node['uwsgi_fleet']" + path.map { |k| "['#{k}']" }.join
  end

  def validate!(cpus: 4, somaxconn: 4096, systemd: false)
    described_class.validate!(attrs, cpus: cpus, somaxconn: somaxconn, systemd: systemd)
  end

  # The InvalidConfiguration raised for attrs (fails the example if none is).
  def validation_error(**facts)
    validate!(**facts)
    raise 'expected UwsgiFleet::InvalidConfiguration, but validate! passed'
  rescue UwsgiFleet::InvalidConfiguration => e
    e
  end

  # One error per line, after the header line.
  def error_lines(error)
    header, *lines = error.message.split("\n")
    expect(header).to eq('uwsgi_fleet: invalid attributes, nothing was changed:')
    lines.map(&:strip)
  end

  # Every leaf path of a nested Hash: [%w(web threads), %w(web app module), ...].
  def self.leaves(hash, prefix = [])
    hash.flat_map { |k, v| v.is_a?(Hash) && !v.empty? ? leaves(v, prefix + [k]) : [prefix + [k]] }
  end

  def self.label(path, value, with)
    extra = with.map { |p, v| "#{p.join('.')} = #{v.inspect}" }
    "#{path.join('.')} = #{value.inspect}#{" (with #{extra.join(', ')})" unless extra.empty?}"
  end

  # An example that sets +path+ to +value+ (after the +with+ settings) and expects
  # exactly the line "node[...]<reported_as> <rule>; got <got>" (and, if +only+, no other).
  def self.rejects(path, value, rule, reported_as: path, got: value, with: {}, only: true, **facts)
    it "rejects #{label(path, value, with)}" do
      with.each { |p, v| set_attr(attrs, p, v) }
      set_attr(attrs, path, value)
      lines = error_lines(validation_error(**facts))
      line = "#{node_path(reported_as)} #{rule.respond_to?(:call) ? rule.call : rule}; got #{got.inspect}"
      only ? expect(lines).to(eq([line])) : expect(lines).to(include(line))
    end
  end

  def self.accepts(path, value, with: {}, **facts)
    it "accepts #{label(path, value, with)}" do
      with.each { |p, v| set_attr(attrs, p, v) }
      set_attr(attrs, path, value)
      expect(validate!(**facts)).to be(true)
    end
  end

  describe 'the mapping table' do
    mapped = (described_class::FLEET.values + described_class::STORE_APP.values).uniq
    # The default recipe's attributes are web and app; the other sections
    # belong to the uwsgi_fleet::redis and ::balancer recipes.
    own = leaves(UwsgiFleetSpec.attribute_defaults).select { |leaf| %w(web app).include?(leaf.first) }
    not_mapped = [
      %w(web nginx worker_processes), # retired: the recipe only warns
      %w(app redis search),           # the recipe finds the Redis node by search (redis_url)
      %w(app redis quota),            # with redis_url, it picks quota_backend (checked on its own: true or false)
    ]

    # rate_limit is one property: a Hash of events_per_second and burst.
    (own - not_mapped).each do |leaf|
      it "maps node['uwsgi_fleet']['#{leaf.join("']['")}'] onto a property" do
        expect(mapped.any? { |path| leaf.first(path.size) == path }).to be(true)
      end
    end

    it 'leaves out only the retired worker_processes, the Redis search and the quota switch' do
      unmapped = own.reject { |leaf| mapped.any? { |path| leaf.first(path.size) == path } }
      expect(unmapped).to eq(not_mapped)
    end

    it 'maps only attributes that attributes/default.rb sets' do
      mapped.each do |path|
        parent = UwsgiFleetSpec.attribute_defaults.dig(*path[0..-2])
        expect(parent).to be_a(Hash).and(include(path.last)), "#{path.join('.')} is not an attribute"
      end
    end

    it 'maps onto properties that have a rule (the fleet also has three rules that depend on the node)' do
      expect(described_class::FLEET.keys - UwsgiFleet::Validation::FLEET.keys)
        .to match_array(%i(processes listen_backlog client_body_buffer_size))
      expect(described_class::STORE_APP.keys - UwsgiFleet::Validation::STORE_APP.keys).to eq([:projects])
    end

    it 'gives the store app the user and body limit of the fleet' do
      expect(described_class::STORE_APP[:user]).to eq(described_class::FLEET[:user])
      expect(described_class::STORE_APP[:max_body_size]).to eq(described_class::FLEET[:client_max_body_size])
    end
  end

  describe '.store_app_properties' do
    password = 'p' * 16

    it "is the app's attributes, with 0.1.0's paths (and no Redis)" do
      expect(described_class.store_app_properties(attrs)).to eq(
        user: 'uwsgi_fleet', projects: {}, spool_dir: '/var/spool/uwsgi_fleet',
        rate_limit: { 'events_per_second' => 1000, 'burst' => 2000 }, max_event_bytes: 1_048_576, max_attachment_bytes: 20_971_520,
        max_body_size: '100m', max_envelope_size: nil, stream_maxlen: nil, simulated_hops: 0, simulated_hop_ms: 2,
        process_manager: 'supervisor', redis_url: nil, quota_redis_url: nil, redis_password: nil, quota_backend: 'local', forward_events: false,
        name: 'default', install_dir: '/opt/uwsgi_fleet', config_path: '/etc/uwsgi_fleet/store_app.json',
        key_path: '/etc/uwsgi_fleet/default_project.key', log_dir: '/var/log/uwsgi_fleet/store_app_default'
      )
    end

    it 'runs the forwarder under the process manager of the fleet' do
      attrs['web']['process_manager'] = 'systemd'
      expect(described_class.store_app_properties(attrs)[:process_manager]).to eq('systemd')
    end

    context 'with a Redis URL attribute' do
      before { attrs['app']['redis']['url'] = 'redis://10.0.0.5:6379/0' }

      it "keeps one quota for every web node in that Redis and forwards events there, with the recipe's password" do
        expect(described_class.store_app_properties(attrs, password: password)).to include(
          redis_url: 'redis://10.0.0.5:6379/0', quota_redis_url: 'redis://10.0.0.5:6379/0', redis_password: password,
          quota_backend: 'redis', forward_events: true
        )
      end

      it 'keeps the quota on the node (no quota URL), and still forwards, with quota false' do
        attrs['app']['redis']['quota'] = false
        expect(described_class.store_app_properties(attrs, password: password))
          .to include(quota_redis_url: nil, quota_backend: 'local', forward_events: true)
      end

      it "keeps the quota in the Redis of ['quota_url'], the events going to url's" do
        attrs['app']['redis']['quota_url'] = 'redis://10.0.0.5:6380/0'
        expect(described_class.store_app_properties(attrs, password: password)).to include(
          redis_url: 'redis://10.0.0.5:6379/0', quota_redis_url: 'redis://10.0.0.5:6380/0', quota_backend: 'redis', forward_events: true
        )
      end

      it "ignores ['quota_url'] with quota false" do
        attrs['app']['redis'].merge!('quota_url' => 'redis://10.0.0.5:6380/0', 'quota' => false)
        expect(described_class.store_app_properties(attrs, password: password)).to include(quota_redis_url: nil, quota_backend: 'local')
      end
    end

    it "takes the URLs the recipe found (search: the events instance and the quota instance) over the attributes'" do
      attrs['app']['redis'].merge!('url' => 'redis://10.0.0.5:6379/0', 'quota_url' => 'redis://10.0.0.5:6380/0')
      props = described_class.store_app_properties(attrs, url: 'redis://10.0.0.9:6379/0', quota_url: 'redis://10.0.0.9:6380/0',
                                                          password: password)
      expect(props).to include(redis_url: 'redis://10.0.0.9:6379/0', quota_redis_url: 'redis://10.0.0.9:6380/0',
                               quota_backend: 'redis', forward_events: true)
    end
  end

  describe '.fleet_properties' do
    let(:props) { described_class.fleet_properties(attrs) }

    it "is the web attributes, with 0.1.0's conf_dir, upstream, program names and default site" do
      expect(props).to eq(
        processes: 'auto', threads: 8, base_port: 9000, bind_address: '127.0.0.1', user: 'uwsgi_fleet',
        listen_backlog: 1024, buffer_size: 65_535, harakiri: 60, process_manager: 'supervisor',
        app_module: 'store_app.wsgi:application', wsgi_file: nil, chdir: '/opt/uwsgi_fleet',
        pythonpath: ['/opt/uwsgi_fleet'], virtualenv: nil, env: { 'STORE_APP_CONFIG' => '/etc/uwsgi_fleet/store_app.json' },
        listen: 80, listen_address: nil, server_name: '_', client_max_body_size: '100m', client_body_buffer_size: '1m', balance: 'least_conn',
        max_conns: 'auto', burst_queue_ms: 500, sustained_queue_ms: 50, client_timeout: 10,
        name: 'default', conf_dir: '/etc/uwsgi_fleet', upstream: 'uwsgi_fleet', default_server: true,
        remove_sites: ['/etc/nginx/sites-enabled/default'], instance_prefix: 'uwsgi_fleet_'
      )
    end

    it "keeps the fleet's own unit names under systemd (0.1.0 had no units)" do
      attrs['web']['process_manager'] = 'systemd'
      expect(props).not_to have_key(:instance_prefix)
    end

    it 'maps the address nginx serves on (behind a balancer)' do
      attrs['web']['nginx']['listen_address'] = '10.0.0.11'
      expect(props[:listen_address]).to eq('10.0.0.11')
    end

    it 'leaves an env that is not a Hash as it is, for the env rule to report' do
      attrs['web']['app']['env'] = 'A=b'
      expect(props[:env]).to eq('A=b')
    end

    it "adds the app's env to the store app's config path (the app's own value wins)" do
      attrs['web']['app']['env'] = { 'A' => '1', 'STORE_APP_CONFIG' => '/srv/other.json' }
      expect(props[:env]).to eq('STORE_APP_CONFIG' => '/srv/other.json', 'A' => '1')
    end

    it 'runs a wsgi_file instead of the module when one is set' do
      attrs['web']['app']['wsgi_file'] = '/srv/app/wsgi.py'
      expect(props.values_at(:app_module, :wsgi_file)).to eq([nil, '/srv/app/wsgi.py'])
    end

    it 'takes an empty wsgi_file as none' do
      attrs['web']['app']['wsgi_file'] = ''
      expect(props.values_at(:app_module, :wsgi_file)).to eq(['store_app.wsgi:application', nil])
    end
  end

  describe '.namer' do
    let(:namer) { described_class.namer(described_class::FLEET) }

    it 'names a property by its attribute' do
      expect(namer.call([:client_timeout])).to eq("node['uwsgi_fleet']['web']['nginx']['client_timeout']")
      expect(namer.call([:app_module])).to eq("node['uwsgi_fleet']['web']['app']['module']")
    end

    it 'appends the keys under a nested value' do
      expect(described_class.namer(described_class::STORE_APP).call([:projects, '5', 'public_key']))
        .to eq("node['uwsgi_fleet']['app']['projects']['5']['public_key']")
    end
  end

  describe '.validate!' do
    it 'accepts the defaults of attributes/default.rb' do
      expect(validate!).to be(true)
    end

    it 'accepts the Redis the recipe found' do
      expect(described_class.validate!(attrs, cpus: 4, somaxconn: 4096, systemd: false,
                                              redis: { url: 'redis://10.0.0.5:6379/0', quota_url: 'redis://10.0.0.5:6380/0',
                                                       password: 'p' * 16 })).to be(true)
    end

    it 'names a bad quota URL from the search by the quota URL attribute, without printing it' do
      expect do
        described_class.validate!(attrs, cpus: 4, somaxconn: 4096, systemd: false,
                                         redis: { url: 'redis://10.0.0.5:6379/0', quota_url: 'redis://10.0.0.5:/0', password: 'p' * 16 })
      end.to raise_error(UwsgiFleet::InvalidConfiguration,
                         "uwsgi_fleet: invalid attributes, nothing was changed:\n  node['uwsgi_fleet']['app']['redis']['quota_url'] " \
                         'must be redis://<address>:<port>/<db> (IPv6 in brackets; the password is given apart), or nil; got [sensitive]')
    end

    it 'names a bad URL from the search by the URL attribute' do
      expect do
        described_class.validate!(attrs, cpus: 4, somaxconn: 4096, systemd: false, redis: { url: 'redis://x y/0', password: 'p' * 16 })
      end.to raise_error(UwsgiFleet::InvalidConfiguration, %r{^  node\['uwsgi_fleet'\]\['app'\]\['redis'\]\['url'\] must be redis://})
    end

    it 'accepts the defaults on a single CPU' do
      expect(validate!(cpus: 1)).to be(true)
    end
  end

  describe "node['uwsgi_fleet']['web']" do
    context 'base_port' do
      rule = 'must be an integer from 1024 to 65535'
      [1023, 0, '9000', nil].each { |port| rejects %w(web base_port), port, rule }
      # Ports past 65535 also make every processes count invalid (reported as well).
      rejects %w(web base_port), 65_536, rule, only: false
      accepts %w(web base_port), 1024
      accepts %w(web base_port), 65_535, with: { %w(web processes) => 1 }
    end

    context 'processes' do
      rule = "must be 'auto' or an integer from 1 to 56536 (instance ports start at base_port 9000 and may not pass 65535)"
      [0, -1, 'ten', '4', 2.0, nil, 'AUTO', 56_537].each { |processes| rejects %w(web processes), processes, rule }

      high = "must be 'auto' or an integer from 1 to 536 (instance ports start at base_port 65000 and may not pass 65535)"
      rejects %w(web processes), 600, high, with: { %w(web base_port) => 65_000 }
      rejects %w(web processes), 537, high, with: { %w(web base_port) => 65_000 }
      rejects %w(web processes), 'auto', high, with: { %w(web base_port) => 65_000 }, cpus: 600
      accepts %w(web processes), 536, with: { %w(web base_port) => 65_000 }

      accepts %w(web processes), 'auto'
      accepts %w(web processes), 'auto', cpus: 1
      accepts %w(web processes), 'auto', cpus: 64
      accepts %w(web processes), 1
      # The burst is the node's now (one bucket per project), not shared out per instance.
      accepts %w(web processes), 56_536, with: { %w(app rate_limit burst) => 1 }
    end

    context 'threads' do
      rule = 'must be an integer from 1 to 256'
      [0, -4, 257, '4', nil].each { |threads| rejects %w(web threads), threads, rule }
      [1, 256].each { |threads| accepts %w(web threads), threads }
    end

    context 'listen_backlog' do
      rejects %w(web listen_backlog), 0, 'must be an integer from 1 to 4096'
      rejects %w(web listen_backlog), 4097, 'must be an integer from 1 to 4096'
      rejects %w(web listen_backlog), 1024, 'must be an integer from 1 to 128', somaxconn: 128
      rejects %w(web listen_backlog), '1024', 'must be an integer from 1 to 4096'
      accepts %w(web listen_backlog), 4096
      accepts %w(web listen_backlog), 65_535, somaxconn: 65_535
    end

    context 'buffer_size' do
      rule = 'must be an integer from 4096 to 65535'
      [4095, 65_536, '64k'].each { |size| rejects %w(web buffer_size), size, rule }
      accepts %w(web buffer_size), 4096
    end

    context 'harakiri' do
      rule = 'must be an integer from 1 to 3600'
      [0, 3601, 1.5].each { |seconds| rejects %w(web harakiri), seconds, rule }
      accepts %w(web harakiri), 3600
    end

    context 'process_manager' do
      rejects %w(web process_manager), 'upstart', -> { "must be one of #{UwsgiFleet::ProcessManager.names.join(', ')}" }
      rejects %w(web process_manager), 'systemd', 'must be supervisor on this node: systemd is not its init (PID 1)', systemd: false
      accepts %w(web process_manager), 'systemd', systemd: true
    end

    context 'bind_address' do
      rule = 'must be a plain IPv4 or IPv6 address such as 127.0.0.1 or ::1'
      ['localhost', '', nil, '127.0.0.256', '127.0.0', '127.0.0.1:9000', 'example.com',
       '127.0.0.1/8', '10.0.0.0/8', '[::1]', 'fe80::1%eth0'].each do |address|
        rejects %w(web bind_address), address, rule
      end
      ['0.0.0.0', '10.1.2.3', '::1', '::', 'fd00::10'].each { |address| accepts %w(web bind_address), address }
    end

    context 'user (the fleet and the store app: reported once)' do
      rule = 'must be a system user name (lowercase, up to 32 characters) other than root'
      ['root', 'Uwsgi', '1user', 'has space', 'a' * 33, '', nil, 'user;rm', "user\n"].each do |user|
        rejects %w(web user), user, rule
      end
      ['www-data', '_svc', 'a' * 32].each { |user| accepts %w(web user), user }
    end

    context 'app module and wsgi_file' do
      exactly_one = 'and wsgi_file (or a store_app): exactly one of them must be set'
      rejects %w(web app module), nil, exactly_one, got: {}
      rejects %w(web app module), nil, exactly_one, got: {}, with: { %w(web app wsgi_file) => '' }
      # A wsgi_file replaces the default module rather than clashing with it.
      accepts %w(web app wsgi_file), '/srv/app/wsgi.py'

      bad_module = 'must look like package.module or package.module:callable, or nil'
      ['store app', '1mod', 'pkg.mod:call:extra', 'pkg/mod', 'pkg.mod:', 'mod;import os', "mod\n", ''].each do |mod|
        rejects %w(web app module), mod, bad_module
      end
      %w(app app.wsgi app.wsgi:application _private.mod:_app).each { |mod| accepts %w(web app module), mod }

      rejects %w(web app wsgi_file), 'wsgi.py', 'must be an absolute path (no .. segments), or nil'
      rejects %w(web app wsgi_file), '/srv/my app/wsgi.py', 'must be an absolute path (no .. segments), or nil'
      rejects %w(web app wsgi_file), '/srv/../wsgi.py', 'must be an absolute path (no .. segments), or nil'
    end

    context 'app chdir and virtualenv' do
      ['opt/uwsgi_fleet', '', nil, '/opt/uwsgi fleet', "/opt/\0x", '/opt/../etc'].each do |dir|
        rejects %w(web app chdir), dir, 'must be an absolute path (no .. segments)'
      end
      ['venv', '', '/srv/my venv'].each { |dir| rejects %w(web app virtualenv), dir, 'must be an absolute path (no .. segments), or nil' }
      accepts %w(web app virtualenv), '/srv/venv'
      accepts %w(web app virtualenv), nil
    end

    context 'app pythonpath' do
      rule = 'must be a list of absolute paths'
      ['/opt/uwsgi_fleet', nil, ['lib'], ['/opt/uwsgi_fleet', nil], ['/a b']].each do |pythonpath|
        rejects %w(web app pythonpath), pythonpath, rule
      end
      accepts %w(web app pythonpath), []
      accepts %w(web app pythonpath), ['/srv/app', '/srv/lib']
    end

    context 'app env' do
      rule = 'must map NAME (a string of letters, digits, _) to a string (no control characters) or number'
      # (The store app's config path is part of the env the fleet gets.)
      [{ 'X' => "a\nb" }, { 'X' => "a\rb" }, { '1BAD' => 'x' }, { 'A-B' => 'x' }, { 'A B' => 'x' }, { '' => 'x' },
       { 'OK' => ['x'] }, { 'OK' => nil }, { 'OK' => true }, { 'OK' => { 'x' => 1 } }, { OK: 'x' }].each do |env|
        rejects %w(web app env), env, rule, got: { 'STORE_APP_CONFIG' => '/etc/uwsgi_fleet/store_app.json' }.merge(env)
      end
      accepts %w(web app env), { 'DJANGO_SETTINGS_MODULE' => 'app.settings', '_X1' => 2, 'RATE' => 0.5, 'EMPTY' => '' }

      # Not a Hash: reported as it is, with a message rather than a crash.
      ['A=b', 5, [%w(A b)], nil].each { |env| rejects %w(web app env), env, rule }
    end

    context 'nginx listen_address (behind a balancer)' do
      ['localhost', '', '10.0.0.11:80', '10.0.0.0/8'].each do |address|
        rejects %w(web nginx listen_address), address, 'must be a plain IPv4 or IPv6 address, or nil'
      end
      ['10.0.0.11', 'fd00::11', nil].each { |address| accepts %w(web nginx listen_address), address }
    end

    context 'nginx listen' do
      rule = 'must be an integer from 1 to 65535'
      [0, -80, 65_536, '80', nil].each { |listen| rejects %w(web nginx listen), listen, rule }

      clash = ->(port) { "is #{port}, a port already used by a uWSGI instance (9000..9003); pick a port outside that range" }
      [9000, 9001, 9003].each { |port| rejects %w(web nginx listen), port, clash.call(port), with: { %w(web processes) => 4 } }
      rejects %w(web nginx listen), 9003, clash.call(9003), cpus: 4 # processes 'auto' -> 4 instances
      accepts %w(web nginx listen), 9004, with: { %w(web processes) => 4 }
      accepts %w(web nginx listen), 8999, with: { %w(web processes) => 4 }
      accepts %w(web nginx listen), 443
    end

    context 'nginx server_name' do
      rule = 'must be nginx server names separated by single spaces, without ; { } quotes, # or \\'
      ['a;b', 'example.com;', 'example.com {', 'a}', "a'b", 'a"b', 'a#b', 'a\\b', 'a  b', ' a', 'a ', '', nil, "a\nb", "a\tb", 1].each do |name|
        rejects %w(web nginx server_name), name, rule
      end
      ['_', 'example.com', 'example.com www.example.com', '*.example.com', 'localhost 127.0.0.1'].each do |name|
        accepts %w(web nginx server_name), name
      end
    end

    context 'nginx client_max_body_size (the fleet and the store app: reported once)' do
      rule = "must be an nginx size from '1m' to '1g' (a Sentry event is up to 1 MB)"
      ['512k', '1048575', '2g', '1025m', 'big', '1.5m', '', nil].each do |size|
        rejects %w(web nginx client_max_body_size), size, rule, with: { %w(web nginx client_body_buffer_size) => '8k' }
      end
      ['1m', '1g', '1024M', 1_048_576].each { |size| accepts %w(web nginx client_max_body_size), size }
    end

    context 'nginx client_body_buffer_size' do
      rule = "must be an nginx size from '8k' to client_max_body_size"
      ['4k', '8191', '101m', '1g', 'x', nil].each { |size| rejects %w(web nginx client_body_buffer_size), size, rule }
      accepts %w(web nginx client_body_buffer_size), '8k'
      accepts %w(web nginx client_body_buffer_size), '2m'
    end

    context 'nginx balance' do
      rule = 'must be one of least_conn, round_robin, random_two, ip_hash'
      ['random', 'LEAST_CONN', 'least_conn;', nil, ''].each { |balance| rejects %w(web nginx balance), balance, rule }
      %w(least_conn round_robin random_two ip_hash).each { |balance| accepts %w(web nginx balance), balance }
    end

    context 'nginx max_conns' do
      rule = "must be 'auto' or an integer from 0 (no limit) to 65535"
      [-1, 65_536, '8', 'AUTO', nil, 2.0].each { |conns| rejects %w(web nginx max_conns), conns, rule }
      [0, 16, 65_535, 'auto'].each { |conns| accepts %w(web nginx max_conns), conns }
    end

    context 'nginx worker_processes (retired: the recipe only warns)' do
      [0, 257, 'many', nil].each { |workers| accepts %w(web nginx worker_processes), workers }
    end

    context 'nginx client_timeout' do
      rule = 'must be an integer from 1 to 300'
      [0, 301, '10', 2.5].each { |timeout| rejects %w(web nginx client_timeout), timeout, rule }
      accepts %w(web nginx client_timeout), 300
    end
  end

  describe "node['uwsgi_fleet']['app']" do
    context 'projects' do
      rule = "must map a project id to { 'public_key' => '<32 hex>' }"
      [[], 'x', nil].each { |projects| rejects %w(app projects), projects, rule }

      accepts %w(app projects), { '1' => { 'public_key' => key } }
      accepts %w(app projects), { '4294967295' => { 'public_key' => key, 'rate_limit' => { 'events_per_second' => 0.5, 'burst' => 4 } } }

      %w(01 0 abc 12345678901 -1 1.5).push('', '1 ', 5).each do |id|
        rejects %w(app projects), { id => { 'public_key' => key } },
                "has project id #{id.inspect}; ids must be strings of digits (1 to 10 of them, no leading 0)", got: id
      end

      key_rule = 'must be 32 lowercase hex characters, as Sentry keys are'
      [key.upcase, key[0, 31], "#{key}0", 'g' * 32, '', nil, 1234].each do |bad_key|
        rejects %w(app projects), { '5' => { 'public_key' => bad_key } }, key_rule,
                reported_as: %w(app projects 5 public_key), got: bad_key
      end
      rejects %w(app projects), { '5' => {} }, key_rule, reported_as: %w(app projects 5 public_key), got: nil
      rejects %w(app projects), { '5' => key }, key_rule, reported_as: %w(app projects 5 public_key), got: nil

      limit_rule = "must be { 'events_per_second' => 0.001..1000000, 'burst' => 1..10000000 }"
      ['fast', nil, 100].each do |limit|
        rejects %w(app projects), { '5' => { 'public_key' => key, 'rate_limit' => limit } }, limit_rule,
                reported_as: %w(app projects 5 rate_limit), got: limit
      end
      [0, -1, 1_000_001, '10', nil].each do |rate|
        limit = { 'events_per_second' => rate, 'burst' => 10 }
        rejects %w(app projects), { '5' => { 'public_key' => key, 'rate_limit' => limit } }, limit_rule,
                reported_as: %w(app projects 5 rate_limit), got: limit
      end
      [0, 10_000_001, 1.5, nil].each do |burst|
        limit = { 'events_per_second' => 10, 'burst' => burst }
        rejects %w(app projects), { '5' => { 'public_key' => key, 'rate_limit' => limit } }, limit_rule,
                reported_as: %w(app projects 5 rate_limit), got: limit
      end
      # The burst is the node's (one bucket per project), whatever the instance count.
      accepts %w(app projects), { '5' => { 'public_key' => key, 'rate_limit' => { 'events_per_second' => 10, 'burst' => 1 } } },
              with: { %w(web processes) => 6 }

      it 'reports every bad project' do
        attrs['app']['projects'] = { '01' => { 'public_key' => key }, '2' => { 'public_key' => 'nope' }, '3' => { 'public_key' => key } }
        lines = error_lines(validation_error)
        expect(lines.size).to eq(2)
        expect(lines.first).to start_with(%(node['uwsgi_fleet']['app']['projects'] has project id "01"))
        expect(lines[1]).to start_with(%(node['uwsgi_fleet']['app']['projects']['2']['public_key'] must be 32 lowercase hex))
      end
    end

    context 'spool_dir' do
      rule = 'must be an absolute path other than / (no .. segments)'
      ['/', 'var/spool/uwsgi_fleet', '', nil, '/var/spool/uwsgi fleet', "/var/spool/x\0", '/var/spool/..'].each do |dir|
        rejects %w(app spool_dir), dir, rule
      end
      accepts %w(app spool_dir), '/srv/spool'
    end

    context 'rate_limit' do
      rule = "must be { 'events_per_second' => 0.001..1000000, 'burst' => 1..10000000 }"
      rejects %w(app rate_limit), nil, rule
      rejects %w(app rate_limit), 1000, rule
      [0, 0.0009, 1_000_001, '1000', nil].each do |rate|
        rejects %w(app rate_limit events_per_second), rate, rule, reported_as: %w(app rate_limit),
                                                                  got: { 'events_per_second' => rate, 'burst' => 2000 }
      end
      [0, 10_000_001, 1.5, '2000', nil].each do |burst|
        rejects %w(app rate_limit burst), burst, rule, reported_as: %w(app rate_limit),
                                                       got: { 'events_per_second' => 1000, 'burst' => burst }
      end
      accepts %w(app rate_limit burst), 1
      accepts %w(app rate_limit burst), 10_000_000
      accepts %w(app rate_limit events_per_second), 0.001
      accepts %w(app rate_limit events_per_second), 1_000_000
    end

    context 'max_event_bytes' do
      rule = 'must be an integer from 1048576 to 20971520'
      [1024, 1_048_575, 20_971_521, 1_073_741_824, '20m', nil].each { |bytes| rejects %w(app max_event_bytes), bytes, rule }
      accepts %w(app max_event_bytes), 1_048_576
      accepts %w(app max_event_bytes), 20_971_520
    end

    context 'max_attachment_bytes' do
      rule = 'must be an integer from 1048576 to 1073741824'
      [1024, 1_048_575, 1_073_741_825, '20m', 2.5, nil].each { |bytes| rejects %w(app max_attachment_bytes), bytes, rule }
      accepts %w(app max_attachment_bytes), 1_048_576
      accepts %w(app max_attachment_bytes), 1_073_741_824
    end

    context 'max_envelope_size' do
      rule = "must be an nginx size from '1m' to '1g' (a Sentry event is up to 1 MB), or nil"
      %w(512k 2g big).each { |size| rejects %w(app max_envelope_size), size, rule }
      rejects %w(app max_envelope_size), '1m', 'must be at least max_event_bytes (2097152)', with: { %w(app max_event_bytes) => 2_097_152 }
      accepts %w(app max_envelope_size), '1g'
      accepts %w(app max_envelope_size), nil
    end

    context 'stream_maxlen' do
      rule = 'must be an integer of at least 1, or nil'
      [0, 1.5, '10'].each { |maxlen| rejects %w(app stream_maxlen), maxlen, rule }
      accepts %w(app stream_maxlen), 1
      accepts %w(app stream_maxlen), nil
    end

    context 'simulated_hops' do
      rule = 'must be an integer from 0 to 10'
      [-1, 11, 1.5, '2', nil].each { |hops| rejects %w(app simulated_hops), hops, rule }
      accepts %w(app simulated_hops), 10
    end

    context 'simulated_hop_ms' do
      rule = 'must be a number from 0 to 1000'
      [-1, 1001, 1000.5, '2', nil].each { |ms| rejects %w(app simulated_hop_ms), ms, rule }
      [0, 0.5, 1000].each { |ms| accepts %w(app simulated_hop_ms), ms }
    end
  end

  describe "node['uwsgi_fleet']['app']['redis']" do
    password = 'p' * 16

    def validate_with_redis!(redis)
      described_class.validate!(attrs, cpus: 4, somaxconn: 4096, systemd: false, redis: redis)
    end

    it 'accepts no Redis at all (the defaults)' do
      expect(validate_with_redis!({})).to be(true)
    end

    it 'accepts a URL with the password from the data bag' do
      attrs['app']['redis']['url'] = 'redis://10.0.0.5:6379/0'
      expect(validate_with_redis!(password: password)).to be(true)
    end

    context 'url' do
      rule = 'must be redis://<address>:<port>/<db> (IPv6 in brackets; the password is given apart), or nil'
      # A URL is never printed back (it may hold a password): the message shows [sensitive].
      ['10.0.0.5:6379', 'redis://10.0.0.5:6379', '', 'redis://fd00::5:6379/0'].each do |url|
        it "rejects #{url.inspect}, without printing it" do
          attrs['app']['redis']['url'] = url
          expect(error_lines(validation_error_with(password: password)))
            .to include("node['uwsgi_fleet']['app']['redis']['url'] #{rule}; got [sensitive]")
        end
      end

      it 'names the url alone when it is bad (quota_url is nil, which its rule allows)' do
        attrs['app']['redis']['url'] = 'redis://10.0.0.5:6379'
        expect(error_lines(validation_error_with(password: password))).to eq(
          ["node['uwsgi_fleet']['app']['redis']['url'] #{rule}; got [sensitive]"]
        )
      end

      it 'rejects a URL that holds the password (it belongs in the data bag), without printing it' do
        attrs['app']['redis']['url'] = 'redis://:hunter2hunter2hunter2@10.0.0.5:6379/0'
        lines = error_lines(validation_error_with(password: password))
        expect(lines).to include("node['uwsgi_fleet']['app']['redis']['url'] #{rule}; got [sensitive]")
        expect(lines.join("\n")).not_to include('hunter2hunter2hunter2')
      end

      it 'accepts a Redis on an IPv6 address, in brackets' do
        attrs['app']['redis']['url'] = 'redis://[fd00::5]:6379/0'
        expect(validate_with_redis!(password: password)).to be(true)
      end
    end

    context 'quota_url (the quota instance, beside url)' do
      rule = 'must be redis://<address>:<port>/<db> (IPv6 in brackets; the password is given apart), or nil'

      before { attrs['app']['redis']['url'] = 'redis://10.0.0.5:6379/0' }

      ['10.0.0.5:6380', 'redis://10.0.0.5:6380', 'redis://:hunter2hunter2hunter2@10.0.0.5:6380/0'].each do |url|
        it "rejects #{url.inspect}, naming quota_url alone, without printing it" do
          attrs['app']['redis']['quota_url'] = url
          expect(error_lines(validation_error_with(password: password))).to eq(
            ["node['uwsgi_fleet']['app']['redis']['quota_url'] #{rule}; got [sensitive]"]
          )
        end
      end

      ['redis://10.0.0.5:6380/0', 'redis://[fd00::5]:6380/0', nil].each do |url|
        it "accepts #{url.inspect}" do
          attrs['app']['redis']['quota_url'] = url
          expect(validate_with_redis!(password: password)).to be(true)
        end
      end
    end

    context 'quota' do
      # (Anything else would be taken as true: see .store_app_properties.)
      ['yes', 'false', nil, 0, 1].each { |quota| rejects %w(app redis quota), quota, 'must be true or false' }
      [true, false].each { |quota| accepts %w(app redis quota), quota }
    end

    it 'names the URL, without printing it, when the data bag item has no password' do
      attrs['app']['redis']['url'] = 'redis://10.0.0.5:6379/0'
      lines = error_lines(validation_error_with({}))
      expect(lines.first).to eq("node['uwsgi_fleet']['app']['redis']['url'] and redis_password must be set when forward_events is true; " \
                                'got [sensitive]')
      expect(lines.join("\n")).not_to include('10.0.0.5')
    end

    it 'refuses a short password from the data bag, naming where it comes from (no attribute), without echoing it' do
      attrs['app']['redis']['url'] = 'redis://10.0.0.5:6379/0'
      lines = error_lines(validation_error_with(password: 'hunter2hunter2'))
      expect(lines).to eq([
                            "the 'password' of the data bag item named by node['uwsgi_fleet']['redis'] " \
                            'must be 16-128 characters without spaces, quotes or backslashes, or nil; got [sensitive]',
                          ])
    end

    def validation_error_with(redis)
      validate_with_redis!(redis)
      raise 'expected UwsgiFleet::InvalidConfiguration, but validate! passed'
    rescue UwsgiFleet::InvalidConfiguration => e
      e
    end
  end

  describe 'several bad attributes' do
    before do
      attrs['web']['processes'] = 0
      attrs['web']['threads'] = 0
      attrs['web']['nginx']['balance'] = 'fastest'
      attrs['app']['spool_dir'] = '/'
      attrs['app']['projects'] = { 'x' => { 'public_key' => key } }
    end

    it "reports all of them in one message: the fleet's, then the store app's" do
      expected = [
        %(node['uwsgi_fleet']['web']['threads'] must be an integer from 1 to 256; got 0),
        %(node['uwsgi_fleet']['web']['nginx']['balance'] must be one of least_conn, round_robin, random_two, ip_hash; got "fastest"),
        %(node['uwsgi_fleet']['web']['processes'] must be 'auto' or an integer from 1 to 56536 (instance ports start at base_port 9000 and may not pass 65535); got 0),
        %(node['uwsgi_fleet']['app']['spool_dir'] must be an absolute path other than / (no .. segments); got "/"),
        %(node['uwsgi_fleet']['app']['projects'] has project id "x"; ids must be strings of digits (1 to 10 of them, no leading 0); got "x"),
      ]
      expect(error_lines(validation_error)).to eq(expected)
    end
  end

  describe 'missing sections' do
    it 'reports the attributes of a missing web section instead of crashing' do
      attrs.delete('web')
      lines = error_lines(validation_error)
      expect(lines).to include(start_with("node['uwsgi_fleet']['web']['base_port'] must be an integer from 1024 to 65535"))
      expect(lines).to include(start_with("node['uwsgi_fleet']['web']['nginx']['listen']"))
      expect(lines.grep(/\Anode\['uwsgi_fleet'\]\['app'\]/)).to be_empty
    end

    it 'reports the attributes of a missing app section instead of crashing' do
      attrs.delete('app')
      lines = error_lines(validation_error)
      expect(lines).to include(start_with("node['uwsgi_fleet']['app']['spool_dir'] must be an absolute path"))
      expect(lines.grep(/\Anode\['uwsgi_fleet'\]\['web'\]/)).to be_empty
    end
  end
end
