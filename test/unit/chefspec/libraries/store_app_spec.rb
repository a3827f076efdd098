require_relative '../spec_helper'
require 'tmpdir'

describe UwsgiFleet::StoreApp do
  let(:key) { '0123456789abcdef0123456789abcdef' }

  it 'keeps its config and default key under /etc/uwsgi_fleet' do
    expect(described_class::CONFIG_PATH).to eq('/etc/uwsgi_fleet/store_app.json')
    expect(described_class::DEFAULT_KEY_PATH).to eq('/etc/uwsgi_fleet/default_project.key')
  end

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

    it 'reads /etc/uwsgi_fleet/default_project.key by default' do
      allow(File).to receive(:exist?).and_call_original
      allow(File).to receive(:exist?).with('/etc/uwsgi_fleet/default_project.key').and_return(true)
      allow(File).to receive(:read).and_call_original
      allow(File).to receive(:read).with('/etc/uwsgi_fleet/default_project.key').and_return("#{key}\n")
      expect(described_class.default_project_key).to eq(key)
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
    let(:app) { default_attrs['app'] }
    let(:projects) do
      {
        '7' => { 'public_key' => 'a' * 32, 'rate_limit' => { 'events_per_second' => 5, 'burst' => 10 } },
        '3' => { 'public_key' => 'b' * 32 },
      }
    end
    let(:config) { described_class.config(app, projects: projects, instances: 4, max_body_bytes: 2 * 1024**2) }

    it 'gives a project its own rate limit' do
      expect(config['projects']['7']).to eq('public_key' => 'a' * 32, 'rate_limit' => { 'events_per_second' => 5, 'burst' => 10 })
    end

    it 'gives a project without one the app-wide rate limit from the attributes' do
      expect(config['projects']['3']['rate_limit']).to eq(app['rate_limit'])
      expect(config['projects']['3']['rate_limit']).to eq('events_per_second' => 1000, 'burst' => 2000)
    end

    it 'sorts projects by id' do
      expect(config['projects'].keys).to eq(%w(3 7))
    end

    it 'writes only the public key and rate limit of a project' do
      projects['3']['secret'] = 'nope'
      expect(config['projects']['3'].keys).to contain_exactly('public_key', 'rate_limit')
    end

    it 'tells each instance how many instances share the limits' do
      expect(config['instances']).to eq(4)
    end

    it 'carries spool_dir, body limits and simulated hops' do
      expect(config).to include(
        'spool_dir' => '/var/spool/uwsgi_fleet',
        'max_body_bytes' => 2 * 1024**2,
        'max_event_bytes' => 1_048_576,
        'simulated_hops' => 0,
        'simulated_hop_ms' => 2
      )
    end

    it 'has exactly the keys the store app reads' do
      expect(config.keys).to contain_exactly(
        'projects', 'spool_dir', 'max_body_bytes', 'max_event_bytes', 'simulated_hops', 'simulated_hop_ms', 'instances'
      )
    end

    it 'is JSON serialisable' do
      expect(JSON.parse(JSON.generate(config))).to eq(config)
    end
  end
end
