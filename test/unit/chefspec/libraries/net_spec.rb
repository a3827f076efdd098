require_relative '../spec_helper'

describe UwsgiFleet::Net do
  describe '.host_port' do
    it 'joins an IPv4 address and a port' do
      expect(described_class.host_port('127.0.0.1', 9000)).to eq('127.0.0.1:9000')
    end

    it 'brackets IPv6 addresses' do
      expect(described_class.host_port('::1', 9000)).to eq('[::1]:9000')
      expect(described_class.host_port('fd00:1:2::10', 9001)).to eq('[fd00:1:2::10]:9001')
      expect(described_class.host_port('::', 9002)).to eq('[::]:9002')
    end
  end
end
