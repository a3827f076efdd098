require_relative '../spec_helper'

describe UwsgiFleet::Packages do
  it 'installs nginx, uWSGI with python3, iproute2 and what uwsgi-fleetctl needs for every fleet (each process manager adds its own)' do
    expect(described_class::FLEET).to eq(%w(nginx uwsgi-core uwsgi-plugin-python3 iproute2 python3 python3-jsonschema))
    expect(described_class::FLEET).not_to include('supervisor')
  end

  it 'installs python3 with jsonschema for uwsgi-fleetctl (it checks the manifest against fleet.schema.json)' do
    expect(described_class::FLEETCTL).to eq(%w(python3 python3-jsonschema))
  end

  it 'installs python3, jsonschema (config.schema.json) and the brotli and zstd libraries for the store app' do
    expect(described_class::STORE_APP).to eq(%w(python3 python3-jsonschema libbrotli1 libzstd1))
  end

  it 'installs uwsgi-fleetctl under /usr/local/sbin, its package under /usr/local/lib/uwsgi_fleet' do
    expect(UwsgiFleet::Tool::FLEETCTL).to eq('/usr/local/sbin/uwsgi-fleetctl')
    expect(UwsgiFleet::Tool::PACKAGE).to eq('/usr/local/lib/uwsgi_fleet/uwsgi_fleetctl')
  end

  it 'puts the package where the launcher imports it from' do
    files = File.join(UwsgiFleetSpec::COOKBOOK_ROOT, 'files', 'default')
    Dir.mktmpdir('uwsgi_fleet_tool') do |root|
      launcher = File.join(root, UwsgiFleet::Tool::FLEETCTL)
      FileUtils.mkdir_p([File.dirname(launcher), File.dirname(File.join(root, UwsgiFleet::Tool::PACKAGE))])
      FileUtils.cp(File.join(files, 'uwsgi-fleetctl'), launcher)
      FileUtils.cp_r(File.join(files, 'uwsgi_fleetctl'), File.join(root, UwsgiFleet::Tool::PACKAGE))
      out, err, status = Open3.capture3({ 'PYTHONDONTWRITEBYTECODE' => '1' }, '/usr/bin/python3', launcher, '--help')
      expect([status.success?, out]).to match([true, include('usage: uwsgi-fleetctl')]), err
    end
  end

  describe '.apt_lists_empty?' do
    around do |example|
      Dir.mktmpdir('uwsgi_fleet_apt') do |dir|
        @dir = dir
        example.run
      end
    end

    it 'is true for a fresh image: no Packages lists (only the lock and partial/)' do
      File.write(File.join(@dir, 'lock'), '')
      Dir.mkdir(File.join(@dir, 'partial'))
      expect(described_class.apt_lists_empty?(@dir)).to be(true)
    end

    it 'is false once apt has fetched a Packages list (compressed or not)' do
      File.write(File.join(@dir, 'deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4'), '')
      expect(described_class.apt_lists_empty?(@dir)).to be(false)
    end

    it 'reads /var/lib/apt/lists by default' do
      allow(Dir).to receive(:glob).and_call_original
      allow(Dir).to receive(:glob).with('/var/lib/apt/lists/*_Packages*').and_return([])
      expect(described_class.apt_lists_empty?).to be(true)
    end
  end
end
