require_relative '../spec_helper'

# uwsgi_fleet_redis: the Redis the web nodes share, as two instances on a
# private address, with a password: the event streams (redis-server, fsyncing
# every write) and the fleet's quota (redis-server@quota, no persistence).
describe 'uwsgi_fleet_redis' do
  step_into :uwsgi_fleet_redis
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  conf = '/etc/redis/redis.conf'
  quota_conf = '/etc/redis/redis-quota.conf'
  password = 'Zq8xW3vN7pL2mK9sT4rY'

  # The directives of the config, without comments: [name, arguments] pairs, in order.
  def directives(text)
    text.lines.map(&:strip).reject { |line| line.empty? || line.start_with?('#') }.map { |line| line.split(' ', 2) }
  end

  context 'on a private address' do
    recipe do
      uwsgi_fleet_redis 'default' do
        bind_address '10.0.0.5'
        password password
      end
    end

    let(:content) { rendered(conf) }
    let(:quota_content) { rendered(quota_conf) }

    it "installs Debian's redis-server, refreshing the apt lists first" do
      expect(chef_run).to install_package('redis-server')
      expect(position(:apt_update, 'uwsgi_fleet')).to be < position(:package, 'redis-server')
    end

    it 'writes the config of each instance readable by redis alone (it holds the password), and never shows it' do
      [conf, quota_conf].each do |path|
        expect(chef_run).to create_template(path).with(cookbook: 'uwsgi_fleet', source: 'redis.conf.erb', owner: 'redis', group: 'redis',
                                                       mode: '0640', sensitive: true)
      end
      expect(chef_run.find_resources(:template).map(&:name)).to eq([conf, quota_conf])
      expect(resource_class(:uwsgi_fleet_redis).properties[:password].sensitive?).to be(true)
    end

    it 'says in each config what its instance holds' do
      expect(content.lines.first).to eq("# Managed by Chef (uwsgi_fleet_redis default): the event streams.\n")
      expect(quota_content.lines.first).to eq("# Managed by Chef (uwsgi_fleet_redis default): the fleet's quota.\n")
    end

    it 'listens on the given address only, the events on port and the quota on port + 1, in protected mode' do
      expect(directives(content).select { |name, _| %w(bind port protected-mode).include?(name) })
        .to eq([%w(bind 10.0.0.5), %w(port 6379), %w(protected-mode yes)])
      expect(directives(quota_content).select { |name, _| %w(bind port protected-mode).include?(name) })
        .to eq([%w(bind 10.0.0.5), %w(port 6380), %w(protected-mode yes)])
    end

    it 'requires the password, on both instances' do
      [content, quota_content].each do |text|
        expect(directives(text)).to include(['requirepass', password])
        expect(text.scan(password).size).to eq(1)
      end
    end

    it 'appends every write of the events to its own AOF and fsyncs it before answering (an acknowledged event survives a crash)' do
      expect(directives(content)).to include(%w(appendonly yes), %w(appendfsync always), ['appendfilename', '"appendonly-events.aof"'],
                                             %w(dbfilename dump-events.rdb))
    end

    it 'keeps nothing of the quota on disk: no AOF, no snapshot (a lost bucket only starts full again)' do
      expect(directives(quota_content)).to include(%w(appendonly no), ['save', '""'])
      expect(directives(quota_content).map(&:first)).not_to include('appendfsync', 'appendfilename', 'dbfilename')
    end

    it 'never evicts a key to make room (an event is never dropped, a bucket never reset)' do
      [content, quota_content].each do |text|
        expect(directives(text)).to include(%w(maxmemory-policy noeviction))
        expect(text).not_to match(/^\s*maxmemory-policy (?!noeviction)/)
      end
    end

    it "keeps Debian's places, under systemd, each instance with its own pidfile (as its unit expects) and log" do
      expect(directives(content)).to include(['dir', '/var/lib/redis'], %w(supervised systemd), %w(daemonize no),
                                             ['pidfile', '/run/redis/redis-server.pid'], ['logfile', '/var/log/redis/redis-events.log'])
      expect(directives(quota_content)).to include(['dir', '/var/lib/redis'], %w(supervised systemd), %w(daemonize no),
                                                   ['pidfile', '/run/redis-quota/redis-server.pid'],
                                                   ['logfile', '/var/log/redis/redis-quota.log'])
    end

    it "runs the quota as Debian's template unit redis-server@quota, which reads /etc/redis/redis-quota.conf" do
      expect(chef_run).to enable_service('redis-server@quota')
      expect(chef_run).to start_service('redis-server@quota')
    end

    it 'restarts each instance as soon as its own config changes, and keeps both enabled and running' do
      expect(chef_run.template(conf)).to notify('service[redis-server]').to(:restart).immediately
      expect(chef_run.template(quota_conf)).to notify('service[redis-server@quota]').to(:restart).immediately
      expect(chef_run.template(conf)).not_to notify('service[redis-server@quota]')
      expect(chef_run.template(quota_conf)).not_to notify('service[redis-server]')
      %w(redis-server redis-server@quota).each do |unit|
        expect(chef_run).to enable_service(unit)
        expect(chef_run).to start_service(unit)
      end
      expect(position(:package, 'redis-server')).to be < position(:template, conf)
      expect(position(:template, conf)).to be < position(:service, 'redis-server')
      expect(position(:template, quota_conf)).to be < position(:service, 'redis-server@quota')
    end

    it 'sets each directive once, in each config' do
      [content, quota_content].each do |text|
        names = directives(text).map(&:first)
        expect(names).to eq(names.uniq)
      end
    end
  end

  context 'with its own port, an IPv6 address and fsync every second' do
    recipe do
      uwsgi_fleet_redis 'default' do
        bind_address 'fd00::5'
        port 6390
        appendfsync 'everysec'
        password password
      end
    end

    it 'renders them, the quota on the next port' do
      expect(directives(rendered(conf))).to include(%w(bind fd00::5), %w(port 6390), %w(appendfsync everysec))
      expect(directives(rendered(quota_conf))).to include(%w(bind fd00::5), %w(port 6391))
    end
  end

  context 'with its own quota_port' do
    recipe do
      uwsgi_fleet_redis 'default' do
        bind_address '10.0.0.5'
        quota_port 7000
        password password
      end
    end

    it 'runs the quota there, the events on port' do
      expect(directives(rendered(quota_conf))).to include(%w(port 7000))
      expect(directives(rendered(conf))).to include(%w(port 6379))
    end
  end

  context 'with the quota on the port of the events' do
    recipe do
      file '/tmp/declared before Redis'
      uwsgi_fleet_redis 'default' do
        bind_address '10.0.0.5'
        port 6380
        quota_port 6380
        password password
      end
    end

    it 'refuses at compile time, before any resource converges' do
      expect_refused_before_converge(
        "uwsgi_fleet_redis[default]: invalid properties, nothing was changed:\n  " \
        'quota_port must be an integer from 1024 to 65535 other than port; got 6380'
      )
    end
  end

  context 'with port 65535 (no port after it for the quota by default)' do
    recipe do
      uwsgi_fleet_redis 'default' do
        bind_address '10.0.0.5'
        port 65_535
        password password
      end
    end

    it 'refuses the default quota_port, naming it' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration,
                                         /^  quota_port must be an integer from 1024 to 65535 other than port; got 65536$/)
    end
  end

  context 'on every address (0.0.0.0)' do
    recipe do
      file '/tmp/declared before Redis'
      uwsgi_fleet_redis 'default' do
        bind_address '0.0.0.0'
        password password
      end
    end

    it 'refuses at compile time, before any resource converges' do
      expect_refused_before_converge(
        "uwsgi_fleet_redis[default]: invalid properties, nothing was changed:\n  " \
        'bind_address must be a plain IPv4 or IPv6 address of the node, not 0.0.0.0 or ::; got "0.0.0.0"'
      )
    end
  end

  context 'on every IPv6 address (::)' do
    recipe do
      uwsgi_fleet_redis 'default' do
        bind_address '::'
        password password
      end
    end

    it 'refuses' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration, /^  bind_address must be .*not 0\.0\.0\.0 or ::; got "::"$/)
    end
  end

  context 'with a short password' do
    recipe do
      uwsgi_fleet_redis 'default' do
        bind_address '10.0.0.5'
        password 'hunter2hunter2'
      end
    end

    it 'refuses at compile time' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration,
                                         /^  password must be 16-128 characters without spaces, quotes or backslashes; got /)
    end

    it 'does not repeat the rejected password in the message (it is sensitive): [sensitive] stands in its place' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration) { |error|
        expect(error.message).not_to include('hunter2hunter2')
        expect(error.message).to end_with('; got [sensitive]')
      }
    end
  end

  context 'with neither address nor password' do
    recipe do
      uwsgi_fleet_redis 'default'
    end

    it 'refuses both (they are required)' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration) { |error|
        expect(error.message.lines.drop(1).map { |line| line.strip[/\A\w+/] }).to eq(%w(bind_address password))
      }
    end
  end

  describe 'the resource' do
    recipe do
      uwsgi_fleet_redis 'default' do
        bind_address '10.0.0.5'
        password password
        action :nothing
      end
    end

    let(:klass) { resource_class(:uwsgi_fleet_redis) }

    it 'describes itself and every property it declares' do
      expect(klass.description).to match(/Redis/)
      own_properties(klass).each do |name, property|
        expect(property.description).to be_a(String).and(match(/\w{3}/)), "#{name} has no description"
      end
    end

    it 'has the action :create (the default)' do
      expect(klass.default_action).to eq([:create])
    end

    # (quota_port is set: its default follows port, see the next example.)
    it 'validates every property it declares (a value of any wrong type is named in the message)' do
      chef_run
      own_properties(klass).each_key do |name|
        resource = klass.new('default', chef_run.run_context)
        resource.bind_address('10.0.0.5') unless name == :bind_address
        resource.password(password) unless name == :password
        resource.quota_port(6380) unless name == :quota_port
        resource.send(name, Object.new)
        expect { resource.after_created }.to raise_error(UwsgiFleet::InvalidConfiguration, /^  #{name} /), "#{name} escaped validation"
      end
    end

    it 'names a port of a wrong type when quota_port is left to its default (port + 1)' do
      chef_run
      resource = klass.new('default', chef_run.run_context)
      resource.bind_address('10.0.0.5')
      resource.password(password)
      resource.port('6379')
      expect { resource.after_created }.to raise_error(UwsgiFleet::InvalidConfiguration, /^  port must be an integer from 1024 to 65535; got "6379"$/)
    end
  end
end
