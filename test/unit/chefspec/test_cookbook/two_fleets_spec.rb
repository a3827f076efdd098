require_relative '../spec_helper'

# test/cookbooks/test: the wrapper cookbook of the Kitchen suites.
describe 'test::two_fleets' do
  step_into :uwsgi_fleet, :uwsgi_fleet_store_app, :uwsgi_fleet_supervisor_instances, :uwsgi_fleet_systemd_instances
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  let(:store) { chef_run.find_resource(:uwsgi_fleet, 'store') }
  let(:api) { chef_run.find_resource(:uwsgi_fleet, 'api') }

  def manifest(name)
    JSON.parse(rendered("/etc/uwsgi_fleet/#{name}/fleet.json"))
  end

  it 'converges two fleets and the store app' do
    expect(chef_run).to create_uwsgi_fleet_store_app('store')
    expect(chef_run).to create_uwsgi_fleet('store').with(store_app: 'store', server_name: 'store.example')
    expect(chef_run).to create_uwsgi_fleet('api').with(app_module: 'api_app:application', user: 'api_fleet', base_port: 9100,
                                                       threads: 2, processes: 2, server_name: 'api.example')
  end

  it "renders each fleet's manifest and the store app's config to their schemas" do
    %w(store api).each { |name| expect(rendered("/etc/uwsgi_fleet/#{name}/fleet.json")).to match_schema(:fleet) }
    expect(rendered('/etc/uwsgi_fleet/store/store_app.json')).to match_schema(:store_app)
  end

  it 'gives each fleet its own ports, users and server names' do
    expect(manifest('store')).to include('ports' => [9000, 9001], 'user' => 'uwsgi_fleet', 'server_name' => 'store.example')
    expect(manifest('api')).to include('ports' => [9100, 9101], 'user' => 'api_fleet', 'server_name' => 'api.example')
    expect(chef_run).to create_user('uwsgi_fleet')
    expect(chef_run).to create_user('api_fleet')
  end

  it 'shares no name, file or directory between the two fleets' do
    %w(instance_name instance_file upstream site_file fifo_dir log_dir instance_prefix).each do |key|
      expect(manifest('store')[key]).not_to eq(manifest('api')[key])
    end
    expect(chef_run.find_resources(:template).map(&:name).grep(%r{\A/etc/supervisor/})).to eq(
      %w(/etc/supervisor/conf.d/uwsgi_fleet_store_9000.conf /etc/supervisor/conf.d/uwsgi_fleet_store_9001.conf
         /etc/supervisor/conf.d/uwsgi_fleet_api_9100.conf /etc/supervisor/conf.d/uwsgi_fleet_api_9101.conf)
    )
  end

  it 'renders one site file per fleet, each with its own upstream and server, neither the default server' do
    store_site = rendered('/etc/nginx/conf.d/uwsgi_fleet_store.conf')
    api_site = rendered('/etc/nginx/conf.d/uwsgi_fleet_api.conf')
    expect(store_site).to include('upstream uwsgi_fleet_store {', 'server 127.0.0.1:9000 ', 'server_name store.example;', 'listen 80;')
    expect(api_site).to include('upstream uwsgi_fleet_api {', 'server 127.0.0.1:9100 ', 'server_name api.example;', 'listen 80;')
    expect(store_site).not_to include('9100')
    expect(api_site).not_to include('9000')
  end

  it "renders each site as Chef does for fleets declared by this cookbook, error pages from uwsgi_fleet's partial included" do
    %w(store api).each do |name|
      site = "/etc/nginx/conf.d/uwsgi_fleet_#{name}.conf"
      expect(chef_run.template(site).cookbook_name.to_s).to eq('test')
      expect(rendered_as_chef_does(site)).to eq(rendered(site)).and include('error_page 502 = @error_502;')
    end
  end

  it 'runs the store app on the store fleet and the api app on the api fleet' do
    expect(rendered('/etc/supervisor/conf.d/uwsgi_fleet_store_9000.conf')).to include('--module store_app.wsgi:application')
      .and include('STORE_APP_CONFIG\\=/etc/uwsgi_fleet/store/store_app.json')
    expect(rendered('/etc/supervisor/conf.d/uwsgi_fleet_api_9100.conf')).to include('--module api_app:application')
      .and include('--chdir /opt/test_api').and match(/^user=api_fleet$/)
    expect(rendered('/etc/supervisor/conf.d/uwsgi_fleet_api_9100.conf')).not_to include('STORE_APP_CONFIG')
  end

  it 'reloads a fleet when its app changes' do
    expect(chef_run.find_resource(:uwsgi_fleet_store_app, 'store')).to notify('uwsgi_fleet[store]').to(:reload).delayed
    expect(chef_run.cookbook_file('/opt/test_api/api_app.py')).to notify('uwsgi_fleet[api]').to(:reload).delayed
  end

  it 'keeps a site that is not ours beside the fleets, and removes no site' do
    expect(chef_run).to create_file('/etc/nginx/sites-available/other').with(content: /listen 8080;/)
    expect(chef_run).to create_link('/etc/nginx/sites-enabled/other').with(to: '/etc/nginx/sites-available/other')
    expect(chef_run.find_resources(:link).select { |l| l.performed_actions.include?(:delete) }).to be_empty
    expect(chef_run.find_resources(:file).map(&:name).grep(%r{\A/etc/nginx/sites-})).to eq(['/etc/nginx/sites-available/other'])
  end

  context 'with the api fleet grown to 3 instances' do
    default_attributes['test']['api_processes'] = 3
    let(:supervisor_confs) do
      %w(uwsgi_fleet_store_9000 uwsgi_fleet_store_9001 uwsgi_fleet_api_9100 uwsgi_fleet_api_9101).map { |n| "/etc/supervisor/conf.d/#{n}.conf" }
    end

    it 'adds one program to the api fleet and retires none of either fleet' do
      expect(manifest('api')['ports']).to eq([9100, 9101, 9102])
      expect(chef_run).to create_template('/etc/supervisor/conf.d/uwsgi_fleet_api_9102.conf')
      expect(chef_run.find_resources(:file).map(&:name).grep(%r{\A/etc/supervisor/})).to be_empty
      expect(manifest('store')['ports']).to eq([9000, 9001])
    end
  end

  context 'with the api fleet shrunk to 1 instance' do
    default_attributes['test']['api_processes'] = 1
    let(:supervisor_confs) do
      %w(uwsgi_fleet_store_9000 uwsgi_fleet_store_9001 uwsgi_fleet_api_9100 uwsgi_fleet_api_9101).map { |n| "/etc/supervisor/conf.d/#{n}.conf" }
    end

    it "retires the api fleet's second program, and leaves the store fleet's alone" do
      expect(chef_run.find_resources(:file).map(&:name).grep(%r{\A/etc/supervisor/})).to eq(['/etc/supervisor/conf.d/uwsgi_fleet_api_9101.conf'])
    end
  end
end
