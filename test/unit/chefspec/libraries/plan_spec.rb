require_relative '../spec_helper'
require 'shellwords'

describe UwsgiFleet::Plan do
  let(:attrs) { default_attrs }
  let(:cpus) { 4 }
  let(:plan) { described_class.new(attrs, cpus: cpus, somaxconn: 4096) }
  let(:fifo_dir) { '/var/lib/uwsgi_fleet' }

  it 'validates before planning' do
    attrs['web']['threads'] = 0
    expect { plan }.to raise_error(UwsgiFleet::InvalidAttribute, /\['threads'\]/)
  end

  describe '#ports' do
    it 'has one port per CPU with processes auto' do
      expect(plan.ports).to eq([9000, 9001, 9002, 9003])
    end

    context 'with a single CPU' do
      let(:cpus) { 1 }

      it 'still runs two instances' do
        expect(plan.ports).to eq([9000, 9001])
      end
    end

    it 'follows an explicit processes count and base_port' do
      attrs['web']['processes'] = 3
      attrs['web']['base_port'] = 8100
      expect(plan.ports).to eq([8100, 8101, 8102])
    end
  end

  describe 'accessors' do
    it 'exposes the user, the nginx settings and the body limit in bytes' do
      expect(plan.user).to eq('uwsgi_fleet')
      expect(plan.nginx).to eq(attrs['web']['nginx'])
      expect(plan.web).to eq(attrs['web'])
      expect(plan.app).to eq(attrs['app'])
      expect(plan.max_body_bytes).to eq(2 * 1024**2)
    end
  end

  describe '#backends' do
    it 'is bind_address:port for each instance, in port order' do
      expect(plan.backends).to eq(%w(127.0.0.1:9000 127.0.0.1:9001 127.0.0.1:9002 127.0.0.1:9003))
    end

    it 'brackets an IPv6 bind_address' do
      attrs['web']['bind_address'] = '::1'
      attrs['web']['processes'] = 2
      expect(plan.backends).to eq(['[::1]:9000', '[::1]:9001'])
    end
  end

  describe '#balance_directive' do
    {
      'least_conn' => 'least_conn;',
      'random_two' => 'random two least_conn;',
      'ip_hash' => 'ip_hash;',
      'round_robin' => nil,
    }.each do |method, directive|
      it "is #{directive.inspect} for #{method}" do
        attrs['web']['nginx']['balance'] = method
        expect(plan.balance_directive).to eq(directive)
      end
    end

    it 'covers every method validation accepts' do
      UwsgiFleet::Validation::BALANCE_METHODS.each do |method|
        attrs['web']['nginx']['balance'] = method
        expect { described_class.new(attrs, cpus: cpus, somaxconn: 4096).balance_directive }.not_to raise_error
      end
    end
  end

  describe '#command' do
    let(:args) { Shellwords.split(plan.command(9002, fifo_dir: fifo_dir)) }

    it "uses the port's own socket and FIFO" do
      expect(args.each_cons(2).to_a).to include(['--socket', '127.0.0.1:9002'], ['--master-fifo', '/var/lib/uwsgi_fleet/9002.fifo'])
    end

    it 'tells the app its instance and config file' do
      expect(args.each_cons(2).to_a).to include(
        ['--env', 'STORE_APP_INSTANCE=9002'], ['--env', 'STORE_APP_CONFIG=/etc/uwsgi_fleet/store_app.json']
      )
    end

    it 'doubles % for supervisor' do
      attrs['web']['app']['env'] = { 'LOG_FORMAT' => '%(message)s' }
      command = plan.command(9002, fifo_dir: fifo_dir)
      expect(command.scan(/%+/)).to all(eq('%%'))
      expect(Shellwords.split(command.gsub('%%', '%'))).to include('LOG_FORMAT=%(message)s')
    end
  end

  describe '#manifest' do
    let(:manifest) { plan.manifest(fifo_dir: fifo_dir) }

    it 'describes the live fleet for uwsgi-fleetctl' do
      expect(manifest).to eq(
        'ports' => [9000, 9001, 9002, 9003], 'bind_address' => '127.0.0.1', 'threads' => 4,
        'user' => 'uwsgi_fleet', 'fifo_dir' => fifo_dir, 'program_prefix' => 'uwsgi_fleet_',
        'listen' => 80, 'server_name' => '_', 'spool_dir' => '/var/spool/uwsgi_fleet',
        'store_app_config' => '/etc/uwsgi_fleet/store_app.json'
      )
    end

    it 'holds no project keys' do
      attrs['app']['projects'] = { '5' => { 'public_key' => 'c' * 32 } }
      expect(JSON.generate(manifest)).not_to include('c' * 32)
    end
  end
end
