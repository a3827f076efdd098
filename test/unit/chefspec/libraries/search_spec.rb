require_relative '../spec_helper'

# What the balancer and default recipes read from the nodes a Chef search
# returns. A search returns Chef::Node objects, which answer [] but not dig:
# every example that reads a node reads one as search gives it (stub_node),
# and the plain Hashes of the attributes as well.
describe UwsgiFleet::Search do
  # A node as a search returns it: its address from Ohai, +attrs+ at normal level.
  def web_node(name, ipaddress, attrs = {})
    stub_node(name, platform: 'debian', version: '12', ohai: { ipaddress: ipaddress }) do |node|
      node.normal['uwsgi_fleet'] = attrs unless attrs.empty?
    end
  end

  describe '.in_environment' do
    it "limits a query to the node's environment, whatever the query's own operators" do
      expect(described_class.in_environment('role:uwsgi_fleet_web', 'production'))
        .to eq('(role:uwsgi_fleet_web) AND chef_environment:production')
      expect(described_class.in_environment('role:a OR role:b', '_default'))
        .to eq('(role:a OR role:b) AND chef_environment:_default')
    end
  end

  describe '.backend' do
    it "is the node's own address and nginx's port 80 when it sets neither" do
      expect(described_class.backend(web_node('web1', '10.0.0.11'))).to eq('10.0.0.11:80')
    end

    it 'is the address and port its nginx serves on (listen_address, listen)' do
      node = web_node('web1', '192.0.2.11', 'web' => { 'nginx' => { 'listen_address' => '10.0.0.11', 'listen' => 8080 } })
      expect(described_class.backend(node)).to eq('10.0.0.11:8080')
    end

    it 'brackets an IPv6 address' do
      node = web_node('web1', '10.0.0.11', 'web' => { 'nginx' => { 'listen_address' => 'fd00::11' } })
      expect(described_class.backend(node)).to eq('[fd00::11]:80')
    end

    it "reads the node's attributes as a plain Hash too" do
      attrs = { 'ipaddress' => '10.0.0.12', 'uwsgi_fleet' => { 'web' => { 'nginx' => { 'listen' => 81 } } } }
      expect(described_class.backend(attrs)).to eq('10.0.0.12:81')
    end
  end

  describe '.backends' do
    it 'is every node, sorted and without duplicates, so the site file changes only when the set of nodes does' do
      nodes = [web_node('web2', '10.0.0.12'), web_node('web1', '10.0.0.11'), web_node('web1-again', '10.0.0.11')]
      expect(described_class.backends(nodes)).to eq(%w(10.0.0.11:80 10.0.0.12:80))
      expect(described_class.backends(nodes.reverse)).to eq(described_class.backends(nodes))
    end

    it 'is empty for no node (the balancer recipe then fails before anything changes)' do
      expect(described_class.backends([])).to eq([])
    end

    # A node bootstrapped with the role whose first run has not succeeded is on
    # the server with its run list but without attributes: no address yet.
    it 'leaves out a web node that has no address yet' do
      bare = Chef::Node.new.tap { |node| node.name('web9') }
      expect(described_class.backends([web_node('web1', '10.0.0.11'), bare])).to eq(['10.0.0.11:80'])
    end

    it 'keeps a node whose nginx names its address though Ohai gave none, and leaves out one with neither' do
      named = Chef::Node.new.tap { |node| node.normal['uwsgi_fleet']['web']['nginx']['listen_address'] = '10.0.0.13' }
      expect(described_class.backends([named, { 'ipaddress' => nil }])).to eq(['10.0.0.13:80'])
    end

    it 'is empty when no node has an address yet (the balancer then refuses its empty backends)' do
      expect(described_class.backends([Chef::Node.new, { 'uwsgi_fleet' => { 'web' => { 'nginx' => { 'listen' => 8080 } } } }])).to eq([])
    end
  end

  describe '.redis_url' do
    it "is redis://<bind_address>:<port>/0 of the Redis node's uwsgi_fleet::redis attributes" do
      node = web_node('redis1', '192.0.2.5', 'redis' => { 'bind_address' => '10.0.0.5', 'port' => 6380 })
      expect(described_class.redis_url(node)).to eq('redis://10.0.0.5:6380/0')
    end

    it 'passes the rule of a store app URL' do
      node = web_node('redis1', '192.0.2.5', 'redis' => { 'bind_address' => '10.0.0.5', 'port' => 6379 })
      expect(UwsgiFleet::Validation::REDIS_URL.check.call(described_class.redis_url(node))).to be(true)
    end

    it 'passes that rule for a Redis on an IPv6 address too (uwsgi_fleet_redis takes one)' do
      expect(UwsgiFleet::Validation::SPECIFIC_ADDRESS.check.call('fd00::5')).to be(true)
      node = web_node('redis1', '192.0.2.5', 'redis' => { 'bind_address' => 'fd00::5', 'port' => 6379 })
      expect(described_class.redis_url(node)).to eq('redis://[fd00::5]:6379/0')
      expect(UwsgiFleet::Validation::REDIS_URL.check.call(described_class.redis_url(node))).to be(true)
    end

    # The Redis node is found by its run list once bootstrapped, before its first run has saved its attributes.
    it 'refuses a Redis node without a bind_address yet, in a message that says so' do
      [web_node('redis1', '192.0.2.5'), web_node('redis1', '192.0.2.5', 'redis' => { 'port' => 6379 }), {}].each do |node|
        expect { described_class.redis_url(node) }.to raise_error(
          UwsgiFleet::InvalidConfiguration, 'uwsgi_fleet: the Redis node found has no bind_address or port yet (has it converged?)'
        )
      end
    end
  end

  describe '.quota_url' do
    it "is redis://<bind_address>:<quota_port>/0: the Redis node's quota instance, beside its events one" do
      node = web_node('redis1', '192.0.2.5', 'redis' => { 'bind_address' => '10.0.0.5', 'port' => 6379, 'quota_port' => 6390 })
      expect([described_class.redis_url(node), described_class.quota_url(node)]).to eq(%w(redis://10.0.0.5:6379/0 redis://10.0.0.5:6390/0))
    end

    it 'brackets an IPv6 address, and passes the rule of a store app URL' do
      node = web_node('redis1', '192.0.2.5', 'redis' => { 'bind_address' => 'fd00::5', 'port' => 6379, 'quota_port' => 6380 })
      expect(described_class.quota_url(node)).to eq('redis://[fd00::5]:6380/0')
      expect(UwsgiFleet::Validation::REDIS_URL.check.call(described_class.quota_url(node))).to be(true)
    end

    it "reads the node's attributes as a plain Hash too" do
      attrs = { 'uwsgi_fleet' => { 'redis' => { 'bind_address' => '10.0.0.5', 'quota_port' => 6380 } } }
      expect(described_class.quota_url(attrs)).to eq('redis://10.0.0.5:6380/0')
    end

    it 'refuses a Redis node without a bind_address yet, in a message that says so' do
      expect { described_class.quota_url(web_node('redis1', '192.0.2.5', 'redis' => { 'quota_port' => 6380 })) }
        .to raise_error(UwsgiFleet::InvalidConfiguration, 'uwsgi_fleet: the Redis node found has no bind_address or quota_port yet (has it converged?)')
    end

    # A Redis node last converged by a cookbook without the quota instance has a bind_address and no quota_port.
    it 'refuses a Redis node without a quota_port yet, in a message that says so' do
      node = web_node('redis1', '192.0.2.5', 'redis' => { 'bind_address' => '10.0.0.5', 'port' => 6379 })
      expect { described_class.quota_url(node) }.to raise_error(UwsgiFleet::InvalidConfiguration, /quota_port.*converged/)
    end
  end

  describe '.value' do
    it 'is nil where a level is missing, on a node as on a Hash' do
      expect(described_class.value(web_node('web1', '10.0.0.11'), 'uwsgi_fleet', 'web', 'nginx', 'listen_address')).to be_nil
      expect(described_class.value({}, 'a', 'b')).to be_nil
      expect(described_class.value({ 'a' => { 'b' => 1 } }, 'a', 'b')).to eq(1)
    end
  end
end
