require_relative '../spec_helper'

describe 'test::systemd' do
  step_into :uwsgi_fleet, :uwsgi_fleet_store_app, :uwsgi_fleet_supervisor_instances, :uwsgi_fleet_systemd_instances
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  let(:symlinks) { ['/etc/nginx/sites-enabled/default'] }
  let(:unit) { '/etc/systemd/system/uwsgi-fleet-store@.service' }

  it 'runs the store app on a fleet of systemd units' do
    expect(chef_run).to create_uwsgi_fleet('store').with(process_manager: 'systemd', store_app: 'store', default_server: true)
    expect(chef_run).to create_template(unit)
    expect(rendered(unit)).to match(/^KillSignal=SIGHUP$/).and include('"--module" "store_app.wsgi:application"')
    %w(uwsgi-fleet-store@9000.service uwsgi-fleet-store@9001.service).each do |name|
      expect(chef_run).to enable_service(name)
      expect(chef_run).to start_service(name)
    end
  end

  it "renders the manifest, with systemd's commands, and the store app's config to their schemas" do
    expect(JSON.parse(rendered('/etc/uwsgi_fleet/store/fleet.json'))['process_manager_commands']).to eq(UwsgiFleet::ProcessManager::Systemd::COMMANDS)
    expect(rendered('/etc/uwsgi_fleet/store/fleet.json')).to match_schema(:fleet)
    expect(rendered('/etc/uwsgi_fleet/store/store_app.json')).to match_schema(:store_app)
  end

  it 'installs no supervisor and writes no program' do
    expect(chef_run.find_resources(:package).map(&:name)).not_to include(/supervisor/)
    expect(chef_run.find_resources(:template).map(&:name).grep(%r{/etc/supervisor/})).to be_empty
  end

  it "is the default server on :80, replacing Debian's default site" do
    expect(rendered('/etc/nginx/conf.d/uwsgi_fleet_store.conf')).to match(/^\s+listen 80 default_server;$/)
    expect(chef_run).to delete_link('/etc/nginx/sites-enabled/default')
  end

  it 'reloads the fleet when the store app changes' do
    expect(chef_run.find_resource(:uwsgi_fleet_store_app, 'store')).to notify('uwsgi_fleet[store]').to(:reload).delayed
  end

  context 'with the store fleet resized to 3 instances (the suite grows it)' do
    default_attributes['test']['store_processes'] = 3
    let(:wants) { %w(9000 9001 9002 9003).map { |port| "/etc/systemd/system/multi-user.target.wants/uwsgi-fleet-store@#{port}.service" } }

    it 'runs 3 units and stops the fourth' do
      expect(chef_run).to start_service('uwsgi-fleet-store@9002.service')
      expect(chef_run).to stop_service('uwsgi-fleet-store@9003.service')
      expect(chef_run).not_to stop_service('uwsgi-fleet-store@9002.service')
    end
  end

  context 'on a node whose init is not systemd' do
    let(:init_comm) { "tini\n" }

    it 'fails before anything converges' do
      expect_refused_before_converge(/process_manager must be supervisor on this node/)
    end
  end
end
