require_relative '../spec_helper'

# Every rule of UwsgiFleet::Validation: one bad value per example, on top of the
# real defaults from attributes/default.rb. Each example checks the whole line the
# operator reads: the attribute path, the allowed values and the value given.
describe UwsgiFleet::Validation do
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

  # The InvalidAttribute raised for attrs (fails the example if none is).
  def validation_error(cpus: 4, somaxconn: 4096)
    described_class.validate!(attrs, somaxconn: somaxconn, cpus: cpus)
    raise 'expected UwsgiFleet::InvalidAttribute, but validate! passed'
  rescue UwsgiFleet::InvalidAttribute => e
    e
  end

  # One error per line, after the header line.
  def error_lines(error)
    header, *lines = error.message.split("\n")
    expect(header).to eq('uwsgi_fleet: invalid attributes, nothing was changed:')
    lines.map(&:strip)
  end

  def self.label(path, value, with)
    extra = with.map { |p, v| "#{p.join('.')} = #{v.inspect}" }
    "#{path.join('.')} = #{value.inspect}#{" (with #{extra.join(', ')})" unless extra.empty?}"
  end

  # An example that sets +path+ to +value+ (after the +with+ settings) and expects
  # exactly the line "node[...]<reported_as> <rule>; got <got>" (and, if +only+, no other).
  def self.rejects(path, value, rule, reported_as: path, got: value, with: {}, cpus: 4, somaxconn: 4096, only: true)
    it "rejects #{label(path, value, with)}" do
      with.each { |p, v| set_attr(attrs, p, v) }
      set_attr(attrs, path, value)
      lines = error_lines(validation_error(cpus: cpus, somaxconn: somaxconn))
      line = "#{node_path(reported_as)} #{rule}; got #{got.inspect}"
      if only
        expect(lines).to eq([line])
      else
        expect(lines).to include(line)
      end
    end
  end

  def self.accepts(path, value, with: {}, cpus: 4, somaxconn: 4096)
    it "accepts #{label(path, value, with)}" do
      with.each { |p, v| set_attr(attrs, p, v) }
      set_attr(attrs, path, value)
      expect(described_class.validate!(attrs, somaxconn: somaxconn, cpus: cpus)).to be(true)
    end
  end

  it 'accepts the defaults of attributes/default.rb' do
    expect(described_class.validate!(attrs, somaxconn: 4096, cpus: 4)).to be(true)
  end

  it 'accepts the defaults on a single CPU' do
    expect(described_class.validate!(attrs, somaxconn: 4096, cpus: 1)).to be(true)
  end

  it 'raises an ArgumentError subclass' do
    expect(UwsgiFleet::InvalidAttribute.ancestors).to include(ArgumentError)
  end

  describe "node['uwsgi_fleet']['web']" do
    context 'base_port' do
      rule = 'must be an integer from 1024 to 65535'
      rejects %w(web base_port), 1023, rule
      rejects %w(web base_port), 0, rule
      rejects %w(web base_port), '9000', rule
      rejects %w(web base_port), nil, rule
      # Ports past 65535 also make every processes count invalid (reported as well).
      rejects %w(web base_port), 65_536, rule, only: false
      accepts %w(web base_port), 1024
      accepts %w(web base_port), 65_535, with: { %w(web processes) => 1 }
    end

    context 'processes' do
      rule = "must be 'auto' or an integer from 1 to 56536 (instance ports start at base_port 9000 and may not pass 65535)"
      rejects %w(web processes), 0, rule
      rejects %w(web processes), -1, rule
      rejects %w(web processes), 'ten', rule
      rejects %w(web processes), '4', rule
      rejects %w(web processes), 2.0, rule
      rejects %w(web processes), nil, rule
      rejects %w(web processes), 'AUTO', rule
      # (burst raised too: each instance must get at least 1 of it)
      rejects %w(web processes), 56_537, rule, with: { %w(app rate_limit burst) => 10_000_000 }

      high = "must be 'auto' or an integer from 1 to 536 (instance ports start at base_port 65000 and may not pass 65535)"
      rejects %w(web processes), 600, high, with: { %w(web base_port) => 65_000 }
      rejects %w(web processes), 537, high, with: { %w(web base_port) => 65_000 }
      rejects %w(web processes), 'auto', high, with: { %w(web base_port) => 65_000 }, cpus: 600
      accepts %w(web processes), 536, with: { %w(web base_port) => 65_000 }

      accepts %w(web processes), 'auto'
      accepts %w(web processes), 'auto', cpus: 1
      accepts %w(web processes), 'auto', cpus: 64
      accepts %w(web processes), 1
      accepts %w(web processes), 56_536, with: { %w(web nginx listen) => 80, %w(app rate_limit burst) => 56_536 }
    end

    context 'threads' do
      rule = 'must be an integer from 1 to 256'
      rejects %w(web threads), 0, rule
      rejects %w(web threads), -4, rule
      rejects %w(web threads), 257, rule
      rejects %w(web threads), '4', rule
      rejects %w(web threads), nil, rule
      accepts %w(web threads), 1
      accepts %w(web threads), 256
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
      rejects %w(web buffer_size), 4095, rule
      rejects %w(web buffer_size), 65_536, rule
      rejects %w(web buffer_size), '64k', rule
      accepts %w(web buffer_size), 4096
    end

    context 'harakiri' do
      rule = 'must be an integer from 1 to 3600'
      rejects %w(web harakiri), 0, rule
      rejects %w(web harakiri), 3601, rule
      rejects %w(web harakiri), 1.5, rule
      accepts %w(web harakiri), 3600
    end

    context 'bind_address' do
      rule = 'must be a plain IPv4 or IPv6 address such as 127.0.0.1 or ::1'
      ['localhost', '', nil, '127.0.0.256', '127.0.0', '127.0.0.1:9000', 'example.com',
       '127.0.0.1/8', '10.0.0.0/8', '[::1]', 'fe80::1%eth0'].each do |address|
        rejects %w(web bind_address), address, rule
      end
      ['0.0.0.0', '10.1.2.3', '::1', '::', 'fd00::10'].each do |address|
        accepts %w(web bind_address), address
      end
    end

    context 'user' do
      rule = 'must be a system user name (lowercase, up to 32 characters) other than root'
      ['root', 'Uwsgi', '1user', 'has space', 'a' * 33, '', nil, 'user;rm', "user\n"].each do |user|
        rejects %w(web user), user, rule
      end
      ['www-data', '_svc', 'a' * 32].each { |user| accepts %w(web user), user }
    end

    context 'app module and wsgi_file' do
      exactly_one = 'must set exactly one of module and wsgi_file'
      both = { 'module' => 'store_app.wsgi:application', 'wsgi_file' => '/srv/app/wsgi.py' }
      rejects %w(web app wsgi_file), '/srv/app/wsgi.py', exactly_one, reported_as: %w(web app), got: both
      rejects %w(web app module), nil, exactly_one, reported_as: %w(web app), got: { 'module' => nil, 'wsgi_file' => nil }
      rejects %w(web app module), '', exactly_one, reported_as: %w(web app), got: { 'module' => '', 'wsgi_file' => nil }
      rejects %w(web app module), nil, exactly_one,
              reported_as: %w(web app), got: { 'module' => nil, 'wsgi_file' => '' }, with: { %w(web app wsgi_file) => '' }

      bad_module = 'module must look like package.module or package.module:callable'
      ['store app', '1mod', 'pkg.mod:call:extra', 'pkg/mod', 'pkg.mod:', 'mod;import os', "mod\n"].each do |mod|
        rejects %w(web app module), mod, bad_module, reported_as: %w(web app)
      end
      %w(app app.wsgi app.wsgi:application _private.mod:_app).each { |mod| accepts %w(web app module), mod }

      rejects %w(web app wsgi_file), 'wsgi.py', 'must be an absolute path', with: { %w(web app module) => nil }
      rejects %w(web app wsgi_file), '/srv/my app/wsgi.py', 'must be an absolute path', with: { %w(web app module) => nil }
      accepts %w(web app wsgi_file), '/srv/app/wsgi.py', with: { %w(web app module) => nil }
    end

    context 'app chdir and virtualenv' do
      rule = 'must be an absolute path'
      ['opt/uwsgi_fleet', '', nil, '/opt/uwsgi fleet', "/opt/\0x"].each do |dir|
        rejects %w(web app chdir), dir, rule
      end
      ['venv', '', '/srv/my venv'].each do |dir|
        rejects %w(web app virtualenv), dir, rule
      end
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
      rule = 'must map NAME (letters, digits, _) to a string (no control characters) or number'
      [{ 'X' => "a\nb" }, { 'X' => "a\rb" }, { '1BAD' => 'x' }, { 'A-B' => 'x' }, { 'A B' => 'x' }, { '' => 'x' }, { 'OK' => ['x'] }, { 'OK' => nil },
       { 'OK' => true }, { 'OK' => { 'x' => 1 } }, 'A=b', nil, [%w(A b)]].each do |env|
        rejects %w(web app env), env, rule
      end
      accepts %w(web app env), { 'DJANGO_SETTINGS_MODULE' => 'app.settings', '_X1' => 2, 'RATE' => 0.5, 'EMPTY' => '' }
    end

    context 'nginx listen' do
      rule = 'must be an integer from 1 to 65535'
      [0, -80, 65_536, '80', nil].each { |listen| rejects %w(web nginx listen), listen, rule }

      clash = ->(port) { "is #{port}, a port already used by a uWSGI instance (9000..9003); pick a port outside that range" }
      rejects %w(web nginx listen), 9001, clash.call(9001), with: { %w(web processes) => 4 }
      rejects %w(web nginx listen), 9000, clash.call(9000), with: { %w(web processes) => 4 }
      rejects %w(web nginx listen), 9003, clash.call(9003), with: { %w(web processes) => 4 }
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

    context 'nginx client_max_body_size' do
      rule = "must be an nginx size from '1m' to '1g' (a Sentry event is up to 1 MB)"
      ['512k', '1048575', '2g', '1025m', 'big', '1.5m', '', nil].each do |size|
        # client_body_buffer_size (1m) is then checked against 1g instead.
        rejects %w(web nginx client_max_body_size), size, rule, with: { %w(web nginx client_body_buffer_size) => '8k' }
      end
      ['1m', '1g', '1024M', 1_048_576].each { |size| accepts %w(web nginx client_max_body_size), size }
    end

    context 'nginx client_body_buffer_size' do
      rule = "must be an nginx size from '8k' to client_max_body_size"
      ['4k', '8191', '4m', '3m', 'x', nil].each do |size|
        rejects %w(web nginx client_body_buffer_size), size, rule
      end
      accepts %w(web nginx client_body_buffer_size), '8k'
      accepts %w(web nginx client_body_buffer_size), '2m'
    end

    context 'nginx balance' do
      rule = 'must be one of least_conn, round_robin, random_two, ip_hash'
      ['random', 'LEAST_CONN', 'least_conn;', nil, ''].each { |balance| rejects %w(web nginx balance), balance, rule }
      %w(least_conn round_robin random_two ip_hash).each { |balance| accepts %w(web nginx balance), balance }
    end

    context 'nginx worker_processes' do
      rule = "must be 'auto' or an integer from 1 to 256"
      [0, 257, 'many', '4', nil].each { |workers| rejects %w(web nginx worker_processes), workers, rule }
      accepts %w(web nginx worker_processes), 1
      accepts %w(web nginx worker_processes), 256
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

      %w(01 0 abc 12345678901 -1 1.5).push('', '1 ').each do |id|
        rejects %w(app projects), { id => { 'public_key' => key } },
                "has project id #{id.inspect}; ids must be digits (1 to 10 of them, no leading 0)", got: id
      end

      key_rule = 'must be 32 lowercase hex characters, as Sentry keys are'
      [key.upcase, key[0, 31], "#{key}0", 'g' * 32, '', nil, 1234].each do |bad_key|
        rejects %w(app projects), { '5' => { 'public_key' => bad_key } }, key_rule,
                reported_as: %w(app projects 5 public_key), got: bad_key
      end
      rejects %w(app projects), { '5' => {} }, key_rule, reported_as: %w(app projects 5 public_key), got: nil
      rejects %w(app projects), { '5' => key }, key_rule, reported_as: %w(app projects 5 public_key), got: nil

      limit_rule = "must be { 'events_per_second' => n, 'burst' => n }"
      ['fast', nil, 100].each do |limit|
        rejects %w(app projects), { '5' => { 'public_key' => key, 'rate_limit' => limit } }, limit_rule,
                reported_as: %w(app projects 5 rate_limit), got: limit
      end
      [0, -1, 1_000_001, '10', nil].each do |rate|
        rejects %w(app projects), { '5' => { 'public_key' => key, 'rate_limit' => { 'events_per_second' => rate, 'burst' => 10 } } },
                'must be a number from 0.001 to 1000000', reported_as: %w(app projects 5 rate_limit events_per_second), got: rate
      end
      # Each of the 4 instances (processes 'auto' on 4 CPUs) enforces burst / 4.
      [0, 3, 10_000_001, 1.5, nil].each do |burst|
        rejects %w(app projects), { '5' => { 'public_key' => key, 'rate_limit' => { 'events_per_second' => 10, 'burst' => burst } } },
                'must be an integer from 4 to 10000000', reported_as: %w(app projects 5 rate_limit burst), got: burst
      end
      six = { %w(web processes) => 6 }
      rejects %w(app projects), { '5' => { 'public_key' => key, 'rate_limit' => { 'events_per_second' => 10, 'burst' => 5 } } },
              'must be an integer from 6 to 10000000', reported_as: %w(app projects 5 rate_limit burst), got: 5, with: six
      accepts %w(app projects), { '5' => { 'public_key' => key, 'rate_limit' => { 'events_per_second' => 10, 'burst' => 4 } } }

      it 'reports every bad project' do
        attrs['app']['projects'] = { '01' => { 'public_key' => key }, '2' => { 'public_key' => 'nope' }, '3' => { 'public_key' => key } }
        lines = error_lines(validation_error)
        expect(lines.size).to eq(2)
        expect(lines.first).to start_with(%(node['uwsgi_fleet']['app']['projects'] has project id "01"))
        expect(lines[1]).to start_with(%(node['uwsgi_fleet']['app']['projects']['2']['public_key'] must be 32 lowercase hex))
      end
    end

    context 'spool_dir' do
      rule = 'must be an absolute path other than /'
      ['/', 'var/spool/uwsgi_fleet', '', nil, '/var/spool/uwsgi fleet', "/var/spool/x\0"].each do |dir|
        rejects %w(app spool_dir), dir, rule
      end
      accepts %w(app spool_dir), '/srv/spool'
    end

    context 'rate_limit' do
      rejects %w(app rate_limit), nil, "must be { 'events_per_second' => n, 'burst' => n }"
      rejects %w(app rate_limit), 1000, "must be { 'events_per_second' => n, 'burst' => n }"
      [0, 0.0009, 1_000_001, '1000', nil].each do |rate|
        rejects %w(app rate_limit events_per_second), rate, 'must be a number from 0.001 to 1000000'
      end
      # The burst is shared by the instances: at least 1 each.
      [0, 3, 10_000_001, 1.5, '2000', nil].each do |burst|
        rejects %w(app rate_limit burst), burst, 'must be an integer from 4 to 10000000'
      end
      rejects %w(app rate_limit burst), 1, 'must be an integer from 2 to 10000000', cpus: 1
      rejects %w(app rate_limit burst), 7, 'must be an integer from 8 to 10000000', cpus: 8
      rejects %w(app rate_limit burst), 2, 'must be an integer from 3 to 10000000', with: { %w(web processes) => 3 }
      accepts %w(app rate_limit burst), 4
      accepts %w(app rate_limit burst), 1, with: { %w(web processes) => 1 }
      accepts %w(app rate_limit burst), 64, cpus: 64
      accepts %w(app rate_limit events_per_second), 0.001
      accepts %w(app rate_limit events_per_second), 1_000_000
      accepts %w(app rate_limit burst), 10_000_000
    end

    context 'max_event_bytes' do
      rule = 'must be an integer from 1048576 to 20971520'
      [1024, 1_048_575, 20_971_521, 1_073_741_824, '20m', nil].each { |bytes| rejects %w(app max_event_bytes), bytes, rule }
      accepts %w(app max_event_bytes), 1_048_576
      accepts %w(app max_event_bytes), 20_971_520
    end

    context 'simulated_hops' do
      rule = 'must be an integer from 0 to 10'
      [-1, 11, 1.5, '2', nil].each { |hops| rejects %w(app simulated_hops), hops, rule }
      accepts %w(app simulated_hops), 10
    end

    context 'simulated_hop_ms' do
      rule = 'must be a number from 0 to 1000'
      [-1, 1001, 1000.5, '2', nil].each { |ms| rejects %w(app simulated_hop_ms), ms, rule }
      accepts %w(app simulated_hop_ms), 0
      accepts %w(app simulated_hop_ms), 0.5
      accepts %w(app simulated_hop_ms), 1000
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

    it 'reports all of them in one message, in attribute order' do
      expected = [
        %(node['uwsgi_fleet']['web']['processes'] must be 'auto' or an integer from 1 to 56536 (instance ports start at base_port 9000 and may not pass 65535); got 0),
        %(node['uwsgi_fleet']['web']['threads'] must be an integer from 1 to 256; got 0),
        %(node['uwsgi_fleet']['web']['nginx']['balance'] must be one of least_conn, round_robin, random_two, ip_hash; got "fastest"),
        %(node['uwsgi_fleet']['app']['projects'] has project id "x"; ids must be digits (1 to 10 of them, no leading 0); got "x"),
        %(node['uwsgi_fleet']['app']['spool_dir'] must be an absolute path other than /; got "/"),
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
      expect(lines.grep(/\['app'\]\['spool_dir'\]/)).to be_empty
    end

    it 'reports the attributes of a missing app section instead of crashing' do
      attrs.delete('app')
      lines = error_lines(validation_error)
      expect(lines).to include(start_with("node['uwsgi_fleet']['app']['spool_dir'] must be an absolute path"))
      expect(lines.grep(/\['web'\]/)).to be_empty
    end
  end
end
