require_relative '../spec_helper'

# uwsgi_fleet::redis: the Redis node of a scaled-out fleet, its password from
# a data bag item (plain or encrypted: data_bag_item decrypts it).
describe 'uwsgi_fleet::redis' do
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  password = 'Zq8xW3vN7pL2mK9sT4rY'

  let(:redis) { chef_run.find_resource(:uwsgi_fleet_redis, 'default') }
  let(:item) { { 'id' => 'redis', 'password' => password } }

  before { stub_data_bag_item('uwsgi_fleet', 'redis').and_return(item) }

  context 'with its private address' do
    default_attributes['uwsgi_fleet']['redis']['bind_address'] = '10.0.0.5'

    it 'declares one uwsgi_fleet_redis there, on 6379 and 6380 (the quota), fsyncing every write, with the password of the data bag item' do
      expect(chef_run).to create_uwsgi_fleet_redis('default')
      expect(redis).to have_attributes(bind_address: '10.0.0.5', port: 6379, quota_port: 6380, appendfsync: 'always', password: password)
      expect(resources.map(&:to_s)).to eq(['uwsgi_fleet_redis[default]'])
    end

    context 'converged' do
      step_into :uwsgi_fleet_redis

      it 'renders the password and the address into the config of each instance, the quota on quota_port' do
        expect(rendered('/etc/redis/redis.conf')).to match(/^requirepass #{password}$/).and match(/^bind 10\.0\.0\.5$/).and match(/^port 6379$/)
        expect(rendered('/etc/redis/redis-quota.conf')).to match(/^requirepass #{password}$/).and match(/^bind 10\.0\.0\.5$/)
          .and match(/^port 6380$/)
      end
    end
  end

  context 'with every attribute set' do
    default_attributes['uwsgi_fleet']['redis'] = {
      'bind_address' => 'fd00::5', 'port' => 6390, 'quota_port' => 6391, 'appendfsync' => 'everysec', 'data_bag' => 'secrets',
      'data_bag_item' => 'fleet_redis'
    }

    before { stub_data_bag_item('secrets', 'fleet_redis').and_return('id' => 'fleet_redis', 'password' => "#{password}x") }

    it 'maps each onto the resource, reading the data bag item they name' do
      expect(redis).to have_attributes(bind_address: 'fd00::5', port: 6390, quota_port: 6391, appendfsync: 'everysec', password: "#{password}x")
    end
  end

  # (quota_port defaults to 6380 as an attribute, not to port + 1.)
  context 'with the port of the quota instance as port' do
    default_attributes['uwsgi_fleet']['redis'] = { 'bind_address' => '10.0.0.5', 'port' => 6380 }

    it 'fails before anything converges, naming quota_port' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration,
                                         "uwsgi_fleet_redis[default]: invalid properties, nothing was changed:\n  " \
                                         'quota_port must be an integer from 1024 to 65535 other than port; got 6380')
    end
  end

  context 'without an address (the attribute is required)' do
    it 'fails before anything converges, naming bind_address' do
      expect_refused_before_converge(
        "uwsgi_fleet_redis[default]: invalid properties, nothing was changed:\n  " \
        'bind_address must be a plain IPv4 or IPv6 address of the node, not 0.0.0.0 or ::; got nil'
      )
    end
  end

  context 'on every address' do
    default_attributes['uwsgi_fleet']['redis']['bind_address'] = '0.0.0.0'

    it 'fails' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration, /^  bind_address .*; got "0\.0\.0\.0"$/)
    end
  end

  context 'with a data bag item without a password' do
    default_attributes['uwsgi_fleet']['redis']['bind_address'] = '10.0.0.5'
    let(:item) { { 'id' => 'redis' } }

    it 'fails, naming the password (and showing no value: it is sensitive)' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration,
                                         /^  password must be 16-128 characters without spaces, quotes or backslashes; got \[sensitive\]$/)
    end
  end

  context 'with a data bag item whose password is too short' do
    default_attributes['uwsgi_fleet']['redis']['bind_address'] = '10.0.0.5'
    let(:item) { { 'id' => 'redis', 'password' => 'hunter2hunter2' } }

    it 'fails without printing it' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration) { |error|
        expect(error.message).to end_with('password must be 16-128 characters without spaces, quotes or backslashes; got [sensitive]')
        expect(error.message).not_to include('hunter2hunter2')
      }
    end
  end
end
