require_relative '../spec_helper'

describe 'uwsgi_fleet::default' do
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  password = 'Zq8xW3vN7pL2mK9sT4rY'
  redis_query = '(role:uwsgi_fleet_redis) AND chef_environment:production'

  let(:store_app) { chef_run.find_resource(:uwsgi_fleet_store_app, 'default') }

  # A Redis node as a search returns it: uwsgi_fleet::redis's attributes (its two instances' ports).
  def redis_node(name, bind_address, port = 6379, quota_port = port + 1)
    stub_node(name, platform: 'debian', version: '12', ohai: { ipaddress: '192.0.2.5' }) do |node|
      node.normal['uwsgi_fleet']['redis']['bind_address'] = bind_address
      node.normal['uwsgi_fleet']['redis']['port'] = port
      node.normal['uwsgi_fleet']['redis']['quota_port'] = quota_port
    end
  end

  it 'includes the web recipe' do
    expect(chef_run).to include_recipe('uwsgi_fleet::web')
  end

  it 'declares the store app and the fleet of the web recipe' do
    expect(chef_run).to create_uwsgi_fleet_store_app('default')
    expect(chef_run).to create_uwsgi_fleet('default')
  end

  # (No data bag is stubbed here, and the only search stubbed, for a Redis node to warn about, finds
  # none (spec_helper): ChefSpec fails a run that uses anything else.)
  it 'uses no Redis by default: no Redis search, no data bag, the quota on the node, nothing forwarded' do
    expect(store_app).to have_attributes(redis_url: nil, quota_redis_url: nil, redis_password: nil, quota_backend: 'local',
                                         forward_events: false)
  end

  # A web node in production whose search finds +found+, with the password in the data bag.
  shared_context 'a Redis found by search' do
    let(:chef_runner) { runner_in('production') }
    let(:found) { [redis_node('redis1', '10.0.0.5', 6380, 6390)] }

    before do
      stub_search(:node, redis_query).and_return(found)
      stub_data_bag_item('uwsgi_fleet', 'redis').and_return('id' => 'redis', 'password' => password)
    end
  end

  # (ChefSpec merges a nested context's attributes into its parent's own Hashes:
  # each context below sets all of its attributes itself, none nested.)
  context "with ['app']['redis']['search'] (scaled out)" do
    default_attributes['uwsgi_fleet']['app']['redis']['search'] = 'role:uwsgi_fleet_redis'
    include_context 'a Redis found by search'

    it "gives the store app the Redis node's URL (its bind_address and port) and the data bag's password" do
      expect(store_app).to have_attributes(redis_url: 'redis://10.0.0.5:6380/0', redis_password: password)
    end

    it "gives the quota the URL of the Redis node's quota instance (its quota_port)" do
      expect(store_app.quota_redis_url).to eq('redis://10.0.0.5:6390/0')
    end

    it 'keeps one quota for every web node in Redis, and forwards the events there under the fleet process manager' do
      expect(store_app).to have_attributes(quota_backend: 'redis', forward_events: true, process_manager: 'supervisor')
    end

    { 'no node' => [], 'two nodes' => :two }.each do |what, nodes|
      context "when the search finds #{what}" do
        let(:found) { nodes == :two ? [redis_node('redis1', '10.0.0.5'), redis_node('redis2', '10.0.0.6')] : nodes }

        it 'fails the run before any resource is declared: exactly one node is required' do
          expect_any_instance_of(Chef::ResourceCollection).not_to receive(:insert)
          expect { chef_run }.to raise_error(
            UwsgiFleet::InvalidConfiguration,
            "uwsgi_fleet: the Redis search \"#{redis_query}\" found #{found.size} nodes; it must find exactly one"
          )
        end
      end
    end

    context 'when the Redis node is on an IPv6 address' do
      let(:found) { [redis_node('redis1', 'fd00::5')] }

      it 'gives the store app its URLs, the address in brackets' do
        expect(store_app).to have_attributes(redis_url: 'redis://[fd00::5]:6379/0', quota_redis_url: 'redis://[fd00::5]:6380/0',
                                             quota_backend: 'redis', forward_events: true)
      end
    end

    # Bootstrapped with the role, its first run not (yet) through: no uwsgi_fleet::redis attributes.
    context 'when the Redis node found has no bind_address yet' do
      let(:found) { [redis_node('redis1', nil)] }

      it 'fails before any resource is declared, saying so' do
        expect_any_instance_of(Chef::ResourceCollection).not_to receive(:insert)
        expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration,
                                           'uwsgi_fleet: the Redis node found has no bind_address or port yet (has it converged?)')
      end
    end

    context "when the data bag item's password is too short" do
      before { stub_data_bag_item('uwsgi_fleet', 'redis').and_return('id' => 'redis', 'password' => 'hunter2hunter2') }

      it 'fails before any resource is declared, naming the data bag item (no attribute holds it), without printing it' do
        expect_any_instance_of(Chef::ResourceCollection).not_to receive(:insert)
        expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration) { |error|
          expect(error.message).to start_with(
            "uwsgi_fleet: invalid attributes, nothing was changed:\n  the 'password' of the data bag item named by " \
            "node['uwsgi_fleet']['redis'] must be 16-128 characters without spaces, quotes or backslashes, or nil; got "
          )
          expect(error.message).not_to include('hunter2hunter2')
        }
      end
    end

    context 'when the data bag item has no password' do
      before { stub_data_bag_item('uwsgi_fleet', 'redis').and_return('id' => 'redis') }

      it 'fails before any resource is declared, naming the URL (not printed) and the missing password' do
        expect_any_instance_of(Chef::ResourceCollection).not_to receive(:insert)
        expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration) { |error|
          expect(error.message).to start_with(
            "uwsgi_fleet: invalid attributes, nothing was changed:\n  " \
            "node['uwsgi_fleet']['app']['redis']['url'] and redis_password must be set when forward_events is true; got [sensitive]\n"
          )
          expect(error.message).not_to include('10.0.0.5')
        }
      end
    end

    context 'converged' do
      step_into :uwsgi_fleet_store_app

      it "writes the Redis quota and stream into the store app's config, and runs its forwarder beside the fleet" do
        config = JSON.parse(rendered('/etc/uwsgi_fleet/store_app.json'))
        expect(config['quota']).to include('backend' => 'redis', 'url' => "redis://:#{password}@10.0.0.5:6390/0")
        expect(config['stream']).to include('url' => "redis://:#{password}@10.0.0.5:6380/0", 'key_prefix' => 'uwsgi_fleet:events:')
        expect(rendered('/etc/uwsgi_fleet/store_app.json')).to match_schema(:store_app)
        expect(chef_run).to create_template('/etc/supervisor/conf.d/uwsgi_fleet_forwarder_default.conf')
        expect(chef_run).to create_directory('/var/log/uwsgi_fleet/store_app_default').with(owner: 'uwsgi_fleet', mode: '0750')
      end
    end
  end

  context "with ['app']['redis']['search'] and the quota left to each node" do
    default_attributes['uwsgi_fleet']['app']['redis'] = { 'search' => 'role:uwsgi_fleet_redis', 'quota' => false }
    include_context 'a Redis found by search'

    it 'still forwards the events, and gives the quota no Redis' do
      expect(store_app).to have_attributes(quota_redis_url: nil, quota_backend: 'local', forward_events: true)
    end
  end

  context "with ['app']['redis']['search'], ['url'] and ['quota_url']" do
    default_attributes['uwsgi_fleet']['app']['redis'] = { 'search' => 'role:uwsgi_fleet_redis', 'url' => 'redis://10.0.0.99:6379/0',
                                                          'quota_url' => 'redis://10.0.0.99:6380/0' }
    include_context 'a Redis found by search'

    it 'takes the node the search found, for both' do
      expect([store_app.redis_url, store_app.quota_redis_url]).to eq(%w(redis://10.0.0.5:6380/0 redis://10.0.0.5:6390/0))
    end
  end

  context "with ['app']['redis']['search'] and the data bag item named by the attributes" do
    default_attributes['uwsgi_fleet']['app']['redis']['search'] = 'role:uwsgi_fleet_redis'
    default_attributes['uwsgi_fleet']['redis'] = { 'data_bag' => 'secrets', 'data_bag_item' => 'fleet_redis' }
    include_context 'a Redis found by search'

    before { stub_data_bag_item('secrets', 'fleet_redis').and_return('id' => 'fleet_redis', 'password' => "#{password}x") }

    it 'reads that item' do
      expect(store_app.redis_password).to eq("#{password}x")
    end
  end

  context "with ['app']['redis']['url']" do
    default_attributes['uwsgi_fleet']['app']['redis']['url'] = 'redis://10.0.0.5:6379/0'

    before { stub_data_bag_item('uwsgi_fleet', 'redis').and_return('id' => 'redis', 'password' => password) }

    # (No search is stubbed: one would fail the run.)
    it 'uses that URL without a search, for the quota too, with the password of the data bag item' do
      expect(store_app).to have_attributes(redis_url: 'redis://10.0.0.5:6379/0', quota_redis_url: 'redis://10.0.0.5:6379/0',
                                           redis_password: password, quota_backend: 'redis', forward_events: true)
    end
  end

  context "with ['app']['redis']['url'] and ['quota_url']" do
    default_attributes['uwsgi_fleet']['app']['redis'] = { 'url' => 'redis://10.0.0.5:6379/0', 'quota_url' => 'redis://10.0.0.5:6380/0' }

    before { stub_data_bag_item('uwsgi_fleet', 'redis').and_return('id' => 'redis', 'password' => password) }

    it 'keeps the quota in the Redis of quota_url, the events going to url' do
      expect(store_app).to have_attributes(redis_url: 'redis://10.0.0.5:6379/0', quota_redis_url: 'redis://10.0.0.5:6380/0',
                                           redis_password: password, quota_backend: 'redis', forward_events: true)
    end
  end

  context "with ['app']['redis']['quota_url'] alone (the fleet's quota in Redis, no events forwarded)" do
    default_attributes['uwsgi_fleet']['app']['redis']['quota_url'] = 'redis://10.0.0.5:6380/0'

    before { stub_data_bag_item('uwsgi_fleet', 'redis').and_return('id' => 'redis', 'password' => password) }

    it 'reads the password of the data bag item for the quota' do
      expect(store_app).to have_attributes(redis_url: nil, quota_redis_url: 'redis://10.0.0.5:6380/0', redis_password: password,
                                           quota_backend: 'redis', forward_events: false)
    end
  end

  context "with ['app']['redis']['url'] under systemd" do
    default_attributes['uwsgi_fleet'] = { 'app' => { 'redis' => { 'url' => 'redis://10.0.0.5:6379/0' } }, 'web' => { 'process_manager' => 'systemd' } }

    before { stub_data_bag_item('uwsgi_fleet', 'redis').and_return('id' => 'redis', 'password' => password) }

    it 'runs the forwarder as a systemd unit, as the fleet its instances' do
      expect(store_app.process_manager).to eq('systemd')
    end
  end

  context "with an ['app']['redis']['url'] that holds the password" do
    default_attributes['uwsgi_fleet']['app']['redis']['url'] = "redis://:#{password}@10.0.0.5:6379/0"

    before { stub_data_bag_item('uwsgi_fleet', 'redis').and_return('id' => 'redis', 'password' => password) }

    it 'fails before any resource is declared, naming the attribute (the password belongs in the data bag)' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration,
                                         %r{^  node\['uwsgi_fleet'\]\['app'\]\['redis'\]\['url'\] must be redis://<address>:<port>/<db> \(IPv6 in brackets; the password is given apart\), or nil; got })
    end
  end

  context "with an ['app']['redis']['quota'] other than true or false" do
    default_attributes['uwsgi_fleet']['app']['redis']['quota'] = 'no'

    it 'fails before any resource is declared, naming the attribute' do
      expect_any_instance_of(Chef::ResourceCollection).not_to receive(:insert)
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration,
                                         "uwsgi_fleet: invalid attributes, nothing was changed:\n  " \
                                         "node['uwsgi_fleet']['app']['redis']['quota'] must be true or false; got \"no\"")
    end
  end

  context "with ['web']['nginx']['listen_address'] (a web node behind a balancer)" do
    default_attributes['uwsgi_fleet']['web']['nginx']['listen_address'] = '10.0.0.11'

    it 'serves the fleet there only' do
      expect(chef_run.find_resource(:uwsgi_fleet, 'default').listen_address).to eq('10.0.0.11')
    end
  end
end

# The Redis search and the data bag against a Chef server (chef-zero): a Redis
# node in each of two environments, the web node in production.
describe 'uwsgi_fleet::default, finding Redis on a Chef server' do
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  default_attributes['uwsgi_fleet']['app']['redis']['search'] = 'role:uwsgi_fleet_redis'

  let(:chef_runner) do
    ChefSpec::ServerRunner.new(chef_runner_options) do |node, server|
      %w(production staging).each { |env| server.create_environment(env, description: env) }
      redis = ['role[uwsgi_fleet_redis]']
      server.create_node('redis1', chef_environment: 'production', run_list: redis,
                                   normal: { uwsgi_fleet: { redis: { bind_address: '10.0.0.5', port: 6379, quota_port: 6380 } } })
      server.create_node('redis9', chef_environment: 'staging', run_list: redis,
                                   normal: { uwsgi_fleet: { redis: { bind_address: '10.9.0.5', port: 6379, quota_port: 6380 } } })
      server.create_data_bag('uwsgi_fleet', 'redis' => { 'password' => 'Zq8xW3vN7pL2mK9sT4rY' })
      node.chef_environment('production')
    end
  end
  let(:chef_run) { chef_runner.converge('uwsgi_fleet::default') }

  it 'finds the one Redis of its environment, and the password in the data bag' do
    expect(chef_run.find_resource(:uwsgi_fleet_store_app, 'default'))
      .to have_attributes(redis_url: 'redis://10.0.0.5:6379/0', quota_redis_url: 'redis://10.0.0.5:6380/0',
                          redis_password: 'Zq8xW3vN7pL2mK9sT4rY', quota_backend: 'redis')
  end
end
