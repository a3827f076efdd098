require_relative 'spec_helper'
require 'open3'

# test/integration/cookbook_facts.rb: what the Python checks of a node read
# instead of restating the cookbook's rules. It evaluates attributes/default.rb
# without Chef: its answer must be Chef's own.
describe 'test/integration/cookbook_facts.rb' do
  def facts(*args)
    script = File.join(UwsgiFleetSpec::COOKBOOK_ROOT, 'test', 'integration', 'cookbook_facts.rb')
    out, err, status = Open3.capture3(RbConfig.ruby, script, *args.map(&:to_s))
    raise "cookbook_facts.rb #{args.join(' ')}: #{err}" unless status.success?
    JSON.parse(out)
  end

  it "reads node['uwsgi_fleet'] exactly as Chef sets it from attributes/default.rb" do
    expect(facts('defaults')).to eq('uwsgi_fleet' => JSON.parse(JSON.generate(UwsgiFleetSpec.attribute_defaults)))
  end

  it 'answers the instance count with UwsgiFleet::Fleet.instance_count' do
    [['auto', 1], ['auto', 2], ['auto', 6], [3, 8], [1, 64]].each do |processes, cpus|
      expect(facts('instance-count', JSON.generate(processes), cpus)).to eq(UwsgiFleet::Fleet.instance_count(processes, cpus))
    end
  end
end
