require_relative '../spec_helper'

describe UwsgiFleet::Sizes do
  describe '.to_bytes' do
    {
      '1048576' => 1_048_576,
      '0' => 0,
      '8k' => 8 * 1024,
      '512K' => 512 * 1024,
      '2m' => 2 * 1024**2,
      '1M' => 1024**2,
      '1g' => 1024**3,
      '3G' => 3 * 1024**3,
    }.each do |size, bytes|
      it "reads #{size.inspect} as #{bytes} bytes" do
        expect(described_class.to_bytes(size)).to eq(bytes)
      end
    end

    it 'accepts an Integer as a byte count' do
      expect(described_class.to_bytes(2_097_152)).to eq(2_097_152)
    end

    ['', '2 m', '2mb', '1.5m', '-1m', 'm', '2t', "2m\n", ' 2m', 'lots'].each do |size|
      it "is nil for #{size.inspect}" do
        expect(described_class.to_bytes(size)).to be_nil
      end
    end

    it 'is nil for nil' do
      expect(described_class.to_bytes(nil)).to be_nil
    end
  end
end
