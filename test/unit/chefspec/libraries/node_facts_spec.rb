require_relative '../spec_helper'

describe UwsgiFleet::NodeFacts do
  around do |example|
    Dir.mktmpdir('uwsgi_fleet_facts') do |dir|
      @dir = dir
      example.run
    end
  end

  def fact_file(content)
    File.join(@dir, 'fact').tap { |path| File.write(path, content) }
  end

  describe '.cpus' do
    it "is Ohai's CPU total" do
      expect(described_class.cpus('cpu' => { 'total' => 6 })).to eq(6)
    end

    it 'reads a CPU total given as a string' do
      expect(described_class.cpus('cpu' => { 'total' => '6' })).to eq(6)
    end

    it "is the running kernel's CPU count without Ohai's cpu data" do
      allow(Etc).to receive(:nprocessors).and_return(12)
      expect(described_class.cpus({})).to eq(12)
      expect(described_class.cpus('cpu' => {})).to eq(12)
    end
  end

  describe '.somaxconn' do
    it 'reads net.core.somaxconn' do
      expect(described_class.somaxconn(fact_file("512\n"))).to eq(512)
    end

    it "is Linux's default (4096) when it cannot be read" do
      expect(described_class.somaxconn(File.join(@dir, 'missing'))).to eq(4096)
    end

    it 'reads /proc/sys/net/core/somaxconn by default' do
      allow(File).to receive(:read).and_call_original
      allow(File).to receive(:read).with('/proc/sys/net/core/somaxconn').and_return("128\n")
      expect(described_class.somaxconn).to eq(128)
    end
  end

  describe '.systemd?' do
    it 'is true when PID 1 is systemd' do
      expect(described_class.systemd?(fact_file("systemd\n"))).to be(true)
    end

    it 'is false under another init' do
      expect(described_class.systemd?(fact_file("tini\n"))).to be(false)
      expect(described_class.systemd?(fact_file("systemd-nspawn\n"))).to be(false)
    end

    it 'is false when PID 1 cannot be read' do
      expect(described_class.systemd?(File.join(@dir, 'missing'))).to be(false)
    end

    it 'reads /proc/1/comm by default' do
      allow(File).to receive(:read).and_call_original
      allow(File).to receive(:read).with('/proc/1/comm').and_return("systemd\n")
      expect(described_class.systemd?).to be(true)
    end
  end
end
