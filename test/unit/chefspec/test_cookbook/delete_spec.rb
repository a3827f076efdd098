require_relative '../spec_helper'

describe 'test::delete' do
  step_into :uwsgi_fleet, :uwsgi_fleet_store_app, :uwsgi_fleet_supervisor_instances, :uwsgi_fleet_systemd_instances
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  conf = ->(name, port) { "/etc/supervisor/conf.d/uwsgi_fleet_#{name}_#{port}.conf" }

  # The node as test::two_fleets left it.
  let(:api_manifest) { UwsgiFleetSpec.fleet_plan('api', base_port: 9100, processes: 2, user: 'api_fleet').manifest }
  let(:node_files) { { '/etc/uwsgi_fleet/api/fleet.json' => JSON.generate(api_manifest), '/etc/uwsgi_fleet/store/fleet.json' => '{}' } }
  let(:node_dirs) { { '/etc/uwsgi_fleet/api' => true } }
  let(:supervisor_confs) { [conf.call('store', 9000), conf.call('store', 9001), conf.call('api', 9100), conf.call('api', 9101)] }

  it 'removes the api fleet: nginx first, then its instances, then its files' do
    order = [
      position(:file, '/etc/nginx/conf.d/uwsgi_fleet_api.conf'),
      position(:execute, 'reload nginx for uwsgi_fleet[api]'),
      position(:file, conf.call('api', 9100)),
      position(:file, conf.call('api', 9101)),
      position(:directory, '/var/lib/uwsgi_fleet/api'),
      position(:directory, '/var/log/uwsgi_fleet/api'),
      position(:file, '/etc/uwsgi_fleet/api/fleet.json'),
      position(:directory, '/etc/uwsgi_fleet/api'),
    ]
    expect(order).to eq(order.sort)
    expect(chef_run).to delete_file('/etc/nginx/conf.d/uwsgi_fleet_api.conf')
    expect(chef_run).to delete_file(conf.call('api', 9101))
    expect(chef_run).to delete_directory('/etc/uwsgi_fleet/api')
  end

  it 'leaves the store fleet and the store app alone' do
    names = resources.map(&:to_s)
    expect(names.grep(/store/)).to be_empty
  end

  context 'once the api fleet is gone' do
    let(:node_files) { {} }
    let(:node_dirs) { {} }

    it 'changes nothing' do
      expect(resources.map(&:to_s)).to eq(['uwsgi_fleet[api]', 'directory[/etc/uwsgi_fleet/api]'])
      expect(chef_run).not_to delete_directory('/etc/uwsgi_fleet/api')
    end
  end
end
