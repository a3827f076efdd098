require_relative '../spec_helper'

# A third process manager, registered by the test cookbook's library and
# converged by its resource, with no change to uwsgi_fleet
# (documentation/process_managers.md).
describe 'test::noop' do
  step_into :uwsgi_fleet, :uwsgi_fleet_test_noop_instances
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  manifest = '/etc/uwsgi_fleet/noop/fleet.json'
  # (The test cookbook's library is loaded by the run.)
  let(:pm) { chef_run && UwsgiFleetTest::NoopProcessManager }

  it 'is a process manager validation takes, once the cookbook has registered it' do
    expect(chef_run).to create_uwsgi_fleet('noop').with(process_manager: 'noop')
    expect(UwsgiFleet::ProcessManager.named('noop')).to be(pm)
  end

  it "converges the instances with the resource the class names, and no other process manager's" do
    expect(chef_run.find_resources(pm::RESOURCE).flat_map(&:performed_actions)).to eq(%i(start prune))
    expect(chef_run.find_resources(:uwsgi_fleet_supervisor_instances) + chef_run.find_resources(:uwsgi_fleet_systemd_instances)).to be_empty
  end

  it "renders a manifest of the schema, with the class's names and commands" do
    expect(rendered(manifest)).to match_schema(:fleet)
    expect(JSON.parse(rendered(manifest))).to include(
      'process_manager' => 'noop', 'process_manager_commands' => pm::COMMANDS, 'instance_prefix' => pm.instance_prefix('noop'),
      'instance_name' => pm.new(pm.instance_prefix('noop')).instance_name('{port}')
    )
  end

  it 'installs what a fleet needs and nothing of the class (it has no packages)' do
    expect(chef_run).to install_package((UwsgiFleet::Packages::FLEET + pm::PACKAGES).join(', '))
  end
end
