require_relative '../spec_helper'

describe UwsgiFleet::StoreApp do
  let(:key) { '0123456789abcdef0123456789abcdef' }

  describe '.default_project_key' do
    around do |example|
      Dir.mktmpdir('uwsgi_fleet_key') do |dir|
        @key_path = File.join(dir, 'default_project.key')
        example.run
      end
    end

    it 'reuses the key already in the file (stripped)' do
      File.write(@key_path, "  #{key}\n")
      expect(described_class.default_project_key(@key_path)).to eq(key)
    end

    it 'makes a new random 32-hex key when there is no file' do
      new_key = described_class.default_project_key(@key_path)
      expect(new_key).to match(/\A[0-9a-f]{32}\z/)
      expect(described_class.default_project_key(@key_path)).not_to eq(new_key)
    end

    ['', "not-a-key\n", "#{'0123456789ABCDEF' * 2}\n", "#{'a' * 31}\n", "#{'a' * 33}\n"].each do |content|
      it "replaces a file holding #{content.inspect} with a new random key" do
        File.write(@key_path, content)
        new_key = described_class.default_project_key(@key_path)
        expect(new_key).to match(/\A[0-9a-f]{32}\z/)
        expect(new_key).not_to eq(content.strip)
      end
    end
  end

  describe '.projects' do
    it "falls back to project '1' with the default key when none are configured" do
      expect(described_class.projects({}, key)).to eq('1' => { 'public_key' => key })
    end

    it "falls back to project '1' when projects is nil" do
      expect(described_class.projects(nil, key)).to eq('1' => { 'public_key' => key })
    end

    it 'uses the configured projects as they are, without the default one' do
      configured = { '42' => { 'public_key' => 'f' * 32 } }
      expect(described_class.projects(configured, key)).to eq(configured)
    end
  end

  describe '.config' do
    let(:props) do
      { spool_dir: '/var/spool/uwsgi_fleet/store', rate_limit: { 'events_per_second' => 1000, 'burst' => 2000 },
        max_event_bytes: 1_048_576, max_attachment_bytes: 20_971_520, max_body_size: '2m', max_envelope_size: nil, stream_maxlen: nil,
        simulated_hops: 0, simulated_hop_ms: 2 }
    end
    let(:projects) do
      {
        '7' => { 'public_key' => 'a' * 32, 'rate_limit' => { 'events_per_second' => 5, 'burst' => 10 } },
        '3' => { 'public_key' => 'b' * 32 },
      }
    end
    let(:config) { described_class.config(props, projects: projects) }

    it 'gives a project its own rate limit' do
      expect(config['projects']['7']).to eq('public_key' => 'a' * 32, 'rate_limit' => { 'events_per_second' => 5, 'burst' => 10 })
    end

    it "gives a project without one the app's rate limit" do
      expect(config['projects']['3']['rate_limit']).to eq('events_per_second' => 1000, 'burst' => 2000)
    end

    it 'sorts projects by id' do
      expect(config['projects'].keys).to eq(%w(3 7))
    end

    it 'writes only the public key and rate limit of a project' do
      projects['3']['secret'] = 'nope'
      expect(config['projects']['3'].keys).to contain_exactly('public_key', 'rate_limit')
    end

    it 'carries spool_dir, the body limits in bytes and the simulated hops' do
      expect(config).to include('spool_dir' => '/var/spool/uwsgi_fleet/store', 'max_body_bytes' => 2 * 1024**2,
                                'max_event_bytes' => 1_048_576, 'max_attachment_bytes' => 20_971_520, 'simulated_hops' => 0,
                                'simulated_hop_ms' => 2)
    end

    it 'caps the decoded envelope at the body size nginx passes: the app never refuses an identity envelope nginx let through' do
      expect(config['max_envelope_bytes']).to eq(config['max_body_bytes'])
    end

    it 'caps the decoded envelope at max_envelope_size when it is set' do
      props[:max_envelope_size] = '3m'
      expect(config['max_envelope_bytes']).to eq(UwsgiFleet::Sizes.to_bytes('3m'))
    end

    it 'never caps the decoded envelope below one event (a max_body_size under max_event_bytes)' do
      props.merge!(max_body_size: '1m', max_event_bytes: 2 * 1024**2)
      expect(config['max_envelope_bytes']).to eq(props[:max_event_bytes])
    end

    it "renders config.schema.json's version" do
      expect(config['config_version']).to eq(JSON.parse(File.read(UwsgiFleetSpec::SCHEMAS[:store_app]))['properties']['config_version']['const'])
    end

    it 'conforms to config.schema.json' do
      expect(JSON.generate(config)).to match_schema(:store_app)
    end

    it 'keeps one node-local quota bucket per project, in the spool, and forwards nothing (no Redis)' do
      expect(config['quota']).to eq('backend' => 'local', 'state_file' => '/var/spool/uwsgi_fleet/store/.quota')
      expect(config['stream']).to be_nil
    end

    context "with the shared Redis's two instances: the quota's and the events'" do
      before do
        props.merge!(redis_url: 'redis://10.0.0.5:6379/0', quota_redis_url: 'redis://10.0.0.5:6380/0', redis_password: 'p' * 16,
                     quota_backend: 'redis', forward_events: true)
      end

      it "keeps one bucket per project for every web node in the quota's Redis, with the node's file standing in while it does not answer" do
        expect(config['quota']).to eq(
          'backend' => 'redis', 'state_file' => '/var/spool/uwsgi_fleet/store/.quota', 'url' => "redis://:#{'p' * 16}@10.0.0.5:6380/0",
          'key_prefix' => 'uwsgi_fleet:quota:', 'timeout_ms' => 50
        )
      end

      it "tells the forwarder where the events go: a stream per project in the events' Redis (redis_url)" do
        expect(config['stream']).to eq(
          'url' => "redis://:#{'p' * 16}@10.0.0.5:6379/0", 'key_prefix' => 'uwsgi_fleet:events:', 'batch' => 100,
          'status_file' => '/var/spool/uwsgi_fleet/store/.forwarder-status.json', 'dedup_seconds' => 3600, 'maxlen' => nil
        )
      end

      it 'trims each stream to stream_maxlen when it is set' do
        props[:stream_maxlen] = 100_000
        expect(config['stream']['maxlen']).to eq(100_000)
      end

      it 'conforms to config.schema.json' do
        expect(JSON.generate(config)).to match_schema(:store_app)
      end

      it 'keeps quota and stream keys apart' do
        expect(config['quota']['key_prefix']).not_to start_with(config['stream']['key_prefix'])
        expect(config['stream']['key_prefix']).not_to start_with(config['quota']['key_prefix'])
      end

      it 'may forward with the quota left on the node' do
        props.merge!(quota_backend: 'local', quota_redis_url: nil)
        expect(config['quota']).to eq('backend' => 'local', 'state_file' => '/var/spool/uwsgi_fleet/store/.quota')
        expect(config['stream']).to include('url' => "redis://:#{'p' * 16}@10.0.0.5:6379/0")
      end

      it 'may keep the quota in Redis and forward nothing, without a stream URL' do
        props.merge!(forward_events: false, redis_url: nil)
        expect(config['quota']).to include('backend' => 'redis', 'url' => "redis://:#{'p' * 16}@10.0.0.5:6380/0")
        expect(config['stream']).to be_nil
      end
    end

    # config.py reads exactly config.schema.json: every key, always (the app has no defaults).
    it "has exactly the schema's keys, with and without Redis" do
      schema = JSON.parse(File.read(UwsgiFleetSpec::SCHEMAS[:store_app]))
      expect(config.keys).to match_array(schema['required'])
      props.merge!(redis_url: 'redis://10.0.0.5:6379/0', redis_password: 'p' * 16, forward_events: true)
      expect(described_class.config(props, projects: projects)['stream'].keys).to match_array(schema['$defs']['stream']['required'])
    end

    it 'is JSON serialisable' do
      expect(JSON.parse(JSON.generate(config))).to eq(config)
    end
  end

  describe '.quota_backend and .forwarding?' do
    it 'keep the quota on the node and forward nothing without a Redis URL' do
      expect([described_class.quota_backend(nil), described_class.forwarding?(nil)]).to eq(['local', false])
    end

    it "keep the quota in Redis with the quota's URL, and forward the events with the stream's" do
      expect([described_class.quota_backend('redis://10.0.0.5:6380/0'), described_class.forwarding?('redis://10.0.0.5:6379/0')])
        .to eq(['redis', true])
    end
  end

  describe '.with_password' do
    let(:url) { 'redis://10.0.0.5:6379/0' }
    let(:props) { { redis_password: 'p' * 16 } }

    it 'puts the password in the URL the app connects with (the config is 0640 root:<user>)' do
      expect(described_class.with_password(url, props)).to eq("redis://:#{'p' * 16}@10.0.0.5:6379/0")
    end

    it 'gives the password back to a URL parser, whatever characters the password rule allows' do
      ['pass/word/0123456789', 'pass#word#0123456789', 'pass%41word0123456789', 'pass?word=0123456789'].each do |password|
        expect(UwsgiFleet::Validation::REDIS_PASSWORD.check.call(password)).to be(true)
        uri = URI.parse(described_class.with_password(url, redis_password: password))
        expect([uri.host, uri.port, uri.path, URI.decode_www_form_component(uri.password.to_s)]).to eq(['10.0.0.5', 6379, '/0', password])
      end
    end

    # redis-py (Redis.from_url) unquotes the password; urlsplit splits at the first / ? # and the last @.
    it 'percent-encodes every character of the password but letters, digits and - . _ ~' do
      expect(described_class.with_password(url, redis_password: 'a/b?c#d%e@f:g+h!i$j&k*l=m,n;o(p)q~r.s_t-u'))
        .to eq('redis://:a%2Fb%3Fc%23d%25e%40f%3Ag%2Bh%21i%24j%26k%2Al%3Dm%2Cn%3Bo%28p%29q~r.s_t-u@10.0.0.5:6379/0')
    end

    it 'puts the password before a bracketed IPv6 host, which stays as it is' do
      expect(described_class.with_password('redis://[fd00::5]:6380/0', props)).to eq("redis://:#{'p' * 16}@[fd00::5]:6380/0")
    end
  end

  describe '.forwarder_args' do
    it "runs the app's own forwarder module with this app's config" do
      expect(described_class.forwarder_args(config_path: '/etc/uwsgi_fleet/store/store_app.json')).to eq(
        ['/usr/bin/python3', '-m', 'store_app.forwarder', '--config', '/etc/uwsgi_fleet/store/store_app.json']
      )
    end
  end

  describe '.fleet_settings' do
    it 'runs the app installed in install_dir, with its config in the environment' do
      expect(described_class.fleet_settings(install_dir: '/opt/uwsgi_fleet/store', config_path: '/etc/uwsgi_fleet/store/store_app.json')).to eq(
        app_module: 'store_app.wsgi:application', wsgi_file: nil, chdir: '/opt/uwsgi_fleet/store',
        pythonpath: ['/opt/uwsgi_fleet/store'], env: { 'STORE_APP_CONFIG' => '/etc/uwsgi_fleet/store/store_app.json' }
      )
    end
  end
end
