require_relative '../spec_helper'

describe UwsgiFleet::Nginx do
  let(:pages) { described_class.error_pages }

  describe '.error_pages' do
    it 'has one page per status nginx answers by itself' do
      expect(pages.map(&:first)).to eq(described_class::ERROR_REASONS.keys)
      expect(pages.map(&:first)).to include(400, 413, 494, 502, 503, 504)
    end

    it 'sends 494 (request headers too large) to the client as 400' do
      expect(pages.assoc(494)[1]).to eq(400)
    end

    it 'sends every other status as it is' do
      pages.reject { |status, _, _| status == 494 }.each do |status, sent, _|
        expect(sent).to eq(status)
      end
    end

    it 'answers JSON naming the error' do
      expect(JSON.parse(pages.assoc(413)[2])).to eq('error' => 'request body too large')
      expect(JSON.parse(pages.assoc(502)[2])).to eq('error' => 'no backend available')
      pages.each { |_, _, body| expect(JSON.parse(body).keys).to eq(['error']) }
    end

    it "has bodies that fit inside nginx's single quotes" do
      pages.each { |_, _, body| expect(body).not_to match(/['\\\n]/) }
    end
  end

  describe 'UwsgiFleet::Plan#error_pages' do
    it 'are the nginx error pages' do
      plan = UwsgiFleet::Plan.new(default_attrs, cpus: 2, somaxconn: 4096)
      expect(plan.error_pages).to eq(pages)
    end
  end
end
