require_relative '../spec_helper'

# uwsgi_fleet::balancer: one uwsgi_fleet_balancer over the web nodes that a
# Chef search finds in this node's environment.
describe 'uwsgi_fleet::balancer' do
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  query = '(role:uwsgi_fleet_web) AND chef_environment:production'

  # A web node as a search returns it: Ohai's address, and its uwsgi_fleet attributes.
  def web_node(name, ipaddress, nginx = {})
    stub_node(name, platform: 'debian', version: '12', ohai: { ipaddress: ipaddress }) do |node|
      node.normal['uwsgi_fleet']['web']['nginx'] = nginx unless nginx.empty?
    end
  end

  # The balancer node lives in production.
  let(:chef_runner) { runner_in('production') }
  let(:web_nodes) { [web_node('web2', '192.0.2.12', 'listen_address' => '10.0.0.12'), web_node('web1', '10.0.0.11')] }
  let(:balancer) { chef_run.find_resource(:uwsgi_fleet_balancer, 'default') }

  before { stub_search(:node, query).and_return(web_nodes) }

  context 'with two web nodes in its environment' do
    it "declares one balancer over their nginx, sorted, each at the address it serves on, replacing Debian's default site" do
      expect(chef_run).to create_uwsgi_fleet_balancer('default')
      expect(balancer).to have_attributes(backends: %w(10.0.0.11:80 10.0.0.12:80), listen: 80, listen_address: nil,
                                          remove_sites: ['/etc/nginx/sites-enabled/default'])
      expect(resources.map(&:to_s)).to eq(['uwsgi_fleet_balancer[default]'])
    end
  end

  context 'with the web nodes serving on a port of their own' do
    let(:web_nodes) { [web_node('web1', '10.0.0.11', 'listen' => 8080), web_node('web2', '10.0.0.12', 'listen' => 8081)] }

    it 'reaches each on its port' do
      expect(balancer.backends).to eq(%w(10.0.0.11:8080 10.0.0.12:8081))
    end
  end

  context 'with its own search, port and address' do
    default_attributes['uwsgi_fleet']['balancer']['search'] = 'role:web OR tags:sentry_web'
    default_attributes['uwsgi_fleet']['balancer']['listen'] = 8080
    default_attributes['uwsgi_fleet']['balancer']['listen_address'] = '10.0.0.2'

    before { stub_search(:node, '(role:web OR tags:sentry_web) AND chef_environment:production').and_return([web_node('web9', '10.0.0.19')]) }

    it 'searches with it, still in its environment, and serves there' do
      expect(balancer).to have_attributes(backends: ['10.0.0.19:80'], listen: 8080, listen_address: '10.0.0.2')
    end
  end

  context 'in another environment' do
    let(:chef_runner) { runner_in('staging') }

    before { stub_search(:node, '(role:uwsgi_fleet_web) AND chef_environment:staging').and_return([web_node('stage1', '10.9.0.11')]) }

    it "balances over that environment's web nodes only" do
      expect(balancer.backends).to eq(['10.9.0.11:80'])
    end
  end

  # Bootstrapped with the role, its first run failed before Ohai's data was saved: no address.
  context 'with a web node that has no address yet' do
    let(:web_nodes) { [web_node('web1', '10.0.0.11'), Chef::Node.new.tap { |node| node.name('web9') }] }

    it 'balances over the others' do
      expect(balancer.backends).to eq(['10.0.0.11:80'])
    end

    context 'when no web node has one yet' do
      let(:web_nodes) { [Chef::Node.new.tap { |node| node.name('web9') }] }

      it 'fails before anything converges, the balancer refusing its empty backends (the last good config stays live)' do
        expect_refused_before_converge(/^  backends must be a non-empty list of 'address:port' \(no web node found\?\); got \[\]$/)
      end
    end
  end

  context 'when the search finds no web node' do
    let(:web_nodes) { [] }

    it 'fails the run with a clear message, before any resource is declared (the last good config stays live)' do
      expect_any_instance_of(Chef::ResourceCollection).not_to receive(:insert)
      expect { chef_run }.to raise_error(
        UwsgiFleet::InvalidConfiguration,
        "uwsgi_fleet::balancer: the search \"#{query}\" found no web node; the balancer keeps its last good config"
      )
    end
  end

  context 'converged' do
    step_into :uwsgi_fleet_balancer

    it 'renders an upstream of exactly the web nodes found' do
      site = rendered('/etc/nginx/conf.d/uwsgi_fleet_balancer_default.conf')
      expect(site.scan(/^\s*server (\S+) max_fails=1/).flatten).to eq(%w(10.0.0.11:80 10.0.0.12:80))
      expect(chef_run).to delete_file('/etc/nginx/sites-enabled/default')
    end
  end
end

# The same search against a Chef server (chef-zero), with web nodes in two
# environments and a node of another role: what the query really selects.
describe 'uwsgi_fleet::balancer, searching a Chef server' do
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  let(:chef_runner) do
    ChefSpec::ServerRunner.new(chef_runner_options) do |node, server|
      %w(production staging).each { |env| server.create_environment(env, description: env) }
      web = ['role[uwsgi_fleet_web]']
      server.create_node('web1', chef_environment: 'production', run_list: web, automatic: { ipaddress: '10.0.0.11' })
      server.create_node('web3', chef_environment: 'production', run_list: web, automatic: { ipaddress: '192.0.2.13' },
                                 normal: { uwsgi_fleet: { web: { nginx: { listen_address: '10.0.0.13', listen: 8080 } } } })
      server.create_node('stage1', chef_environment: 'staging', run_list: web, automatic: { ipaddress: '10.9.0.11' })
      server.create_node('db1', chef_environment: 'production', run_list: ['role[db]'], automatic: { ipaddress: '10.0.0.14' })
      node.chef_environment('production')
    end
  end
  let(:chef_run) { chef_runner.converge('uwsgi_fleet::balancer') }

  it 'balances over the web nodes of its own environment alone, each at the address its nginx serves on' do
    expect(chef_run.find_resource(:uwsgi_fleet_balancer, 'default').backends).to eq(%w(10.0.0.11:80 10.0.0.13:8080))
  end
end
