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

  describe '.program_name' do
    it 'prefixes the port' do
      expect(described_class.program_name(9000)).to eq('uwsgi_fleet_9000')
    end

    it 'has no character supervisor treats specially' do
      expect(described_class.program_name(65_535)).not_to match(%r{[\s:/]})
    end
  end

  describe '.program_conf' do
    it 'is the program file under /etc/supervisor/conf.d' do
      expect(described_class.program_conf(9001)).to eq('/etc/supervisor/conf.d/uwsgi_fleet_9001.conf')
    end

    it 'honours another conf dir' do
      expect(described_class.program_conf(9001, '/tmp/conf.d')).to eq('/tmp/conf.d/uwsgi_fleet_9001.conf')
    end

    it 'builds the glob the recipe uses to find instance files' do
      expect(described_class.program_conf('*')).to eq('/etc/supervisor/conf.d/uwsgi_fleet_*.conf')
    end
  end

  describe '.stale_ports' do
    let(:dir) { '/etc/supervisor/conf.d' }

    it 'lists instance files whose port is no longer wanted, sorted' do
      files = %w(uwsgi_fleet_9005.conf uwsgi_fleet_9000.conf uwsgi_fleet_9003.conf uwsgi_fleet_9001.conf).map { |f| File.join(dir, f) }
      expect(described_class.stale_ports(files, [9000, 9001])).to eq([9003, 9005])
    end

    it 'is empty when every file is wanted' do
      files = [9000, 9001].map { |p| described_class.program_conf(p) }
      expect(described_class.stale_ports(files, [9000, 9001, 9002])).to eq([])
    end

    it 'is empty when there are no files' do
      expect(described_class.stale_ports([], [9000])).to eq([])
    end

    it 'ignores files that are not uwsgi_fleet instance files' do
      files = %w(
        supervisord.conf other_9000.conf uwsgi_fleet_9009.conf.bak uwsgi_fleet_abc.conf
        uwsgi_fleet_.conf xuwsgi_fleet_9007.conf uwsgi_fleet_9008.conf
      ).map { |f| File.join(dir, f) }
      expect(described_class.stale_ports(files, [9000])).to eq([9008])
    end
  end

  describe '.host_port' do
    it 'joins an IPv4 address and a port' do
      expect(described_class.host_port('127.0.0.1', 9000)).to eq('127.0.0.1:9000')
    end

    it 'brackets an IPv6 loopback' do
      expect(described_class.host_port('::1', 9000)).to eq('[::1]:9000')
    end

    it 'brackets a full IPv6 address' do
      expect(described_class.host_port('fd00:1:2::10', 9001)).to eq('[fd00:1:2::10]:9001')
    end

    it 'brackets the IPv6 any address' do
      expect(described_class.host_port('::', 9002)).to eq('[::]:9002')
    end
  end
end
