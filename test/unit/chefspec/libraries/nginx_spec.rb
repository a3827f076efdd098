require_relative '../spec_helper'

describe UwsgiFleet::Nginx do
  let(:pages) { described_class.error_pages }

  describe '.test_command' do
    it 'asks uwsgi-fleetctl to test the whole config with the new files in place and removed sites gone' do
      command = described_class.test_command('/usr/local/sbin/uwsgi-fleetctl',
                                             candidates: { '/etc/nginx/conf.d/uwsgi_fleet_api.conf' => '%{path}', '/etc/nginx/nginx.conf' => '/tmp/main' },
                                             removes: ['/etc/nginx/sites-enabled/default', '/etc/nginx/conf.d/old.conf'])
      expect(command).to eq('/usr/local/sbin/uwsgi-fleetctl nginx-test --put /etc/nginx/conf.d/uwsgi_fleet_api.conf=%{path} ' \
                            '--put /etc/nginx/nginx.conf=/tmp/main --remove /etc/nginx/sites-enabled/default --remove /etc/nginx/conf.d/old.conf')
    end

    it "is a Chef verify command: %{path} becomes the temp file's path" do
      command = described_class.test_command('fleetctl', candidates: { '/etc/nginx/conf.d/api.conf' => '%{path}' }, removes: [])
      expect(format(command, path: '/tmp/chef-rendered')).to eq('fleetctl nginx-test --put /etc/nginx/conf.d/api.conf=/tmp/chef-rendered')
    end

    # Chef formats a verify command with %: a % in a path breaks it at converge,
    # so validation keeps % out of every path that may reach the command.
    it 'cannot carry a % in a path, so site_file and remove_sites refuse one, for a fleet and a balancer' do
      command = described_class.test_command('fleetctl', candidates: { '/etc/nginx/conf.d/100%.conf' => '%{path}' }, removes: [])
      expect { format(command, path: '/t') }.to raise_error(TypeError)
      %i(FLEET BALANCER).each do |rules|
        table = UwsgiFleet::Validation.const_get(rules)
        expect(table[:site_file].check.call('/etc/nginx/conf.d/100%.conf')).to be(false)
        expect(table[:remove_sites].check.call(['/etc/nginx/conf.d/100%.conf'])).to be(false)
        expect(table[:site_file].check.call('/etc/nginx/conf.d/100.conf')).to be(true)
      end
    end
  end

  describe '.listen' do
    it 'is the port alone for every address (nil), and address:port for one' do
      expect(described_class.listen(nil, 80)).to eq('80')
      expect(described_class.listen('10.0.0.2', 8080)).to eq('10.0.0.2:8080')
      expect(described_class.listen('fd00::2', 80)).to eq('[fd00::2]:80')
    end
  end

  describe '.balance_directive' do
    { 'least_conn' => 'least_conn;', 'random_two' => 'random two least_conn;', 'ip_hash' => 'ip_hash;', 'round_robin' => nil }.each do |balance, directive|
      it "is #{directive.inspect} for #{balance} (round robin is nginx's default)" do
        expect(described_class.balance_directive(balance)).to eq(directive)
      end
    end

    it 'refuses an unknown method' do
      expect { described_class.balance_directive('fastest') }.to raise_error(KeyError)
    end
  end

  describe '.legacy_main_config?' do
    around do |example|
      Dir.mktmpdir('uwsgi_fleet_nginx') do |dir|
        @path = File.join(dir, 'nginx.conf')
        example.run
      end
    end

    it 'is true for the nginx.conf that 0.1.0 rendered (its marker on the first line)' do
      File.write(@path, "#{described_class::LEGACY_MARKER} with the whole config before it goes live.\nuser www-data;\n")
      expect(described_class.legacy_main_config?(@path)).to be(true)
    end

    it "is false for Debian's nginx.conf" do
      File.write(@path, "user www-data;\nworker_processes auto;\n")
      expect(described_class.legacy_main_config?(@path)).to be(false)
    end

    it 'is false when the marker is not on the first line' do
      File.write(@path, "# something else\n#{described_class::LEGACY_MARKER}\n")
      expect(described_class.legacy_main_config?(@path)).to be(false)
    end

    it 'is false for an empty file and for no file' do
      expect(described_class.legacy_main_config?(@path)).to be(false)
      File.write(@path, '')
      expect(described_class.legacy_main_config?(@path)).to be(false)
    end

    it 'is false for the Debian config this cookbook restores (an upgrade does not loop)' do
      File.write(@path, described_class::DEBIAN_MAIN_CONFIG)
      expect(described_class.legacy_main_config?(@path)).to be(false)
    end

    it 'reads /etc/nginx/nginx.conf by default' do
      expect(described_class::CONF).to eq('/etc/nginx/nginx.conf')
      allow(File).to receive(:exist?).and_call_original
      allow(File).to receive(:exist?).with('/etc/nginx/nginx.conf').and_return(true)
      allow(File).to receive(:open).and_call_original
      allow(File).to receive(:open).with('/etc/nginx/nginx.conf') { |&block| block.call(StringIO.new("#{described_class::LEGACY_MARKER}\n")) }
      expect(described_class.legacy_main_config?).to be(true)
    end
  end

  describe 'DEBIAN_MAIN_CONFIG' do
    it "includes every site (conf.d and sites-enabled), as Debian's does" do
      expect(described_class::DEBIAN_MAIN_CONFIG).to include('include /etc/nginx/conf.d/*.conf;', 'include /etc/nginx/sites-enabled/*;')
    end

    it 'has no upstream or server of its own' do
      expect(described_class::DEBIAN_MAIN_CONFIG).not_to match(/^\s*(upstream|server)\b/)
    end
  end

  describe 'the shed answer (no instance free: each holds max_conns, or none is up)' do
    it 'is a 503, as Relay answers with a full queue (not 429: the node is out of capacity, not the client over a quota)' do
      expect(described_class::SHED_STATUS).to eq(503)
    end

    it 'asks SDKs to pause: Retry-After, and X-Sentry-Rate-Limits for every category (none named), with X-Sentry-Error' do
      expect(described_class::SHED_HEADERS).to eq('Retry-After' => '1', 'X-Sentry-Rate-Limits' => '1::organization:overloaded',
                                                  'X-Sentry-Error' => 'overloaded')
    end

    it "answers JSON saying when to retry, a body that fits inside nginx's single quotes" do
      expect(JSON.parse(described_class.shed_body)).to eq('error' => 'overloaded: no instance free, retry later', 'retry_after' => 1)
      expect(described_class.shed_body).not_to match(/['\\\n]/)
    end

    it "is taken when $upstream_addr ends in the upstream's name (nginx could pick no server), after failed tries too" do
      condition = described_class.shed_condition('uwsgi_fleet_api')
      expect(condition).to eq('$upstream_addr ~ "(^|, )uwsgi_fleet_api$"')
      regex = Regexp.new(condition[/"(.*)"/, 1])
      ['uwsgi_fleet_api', '127.0.0.1:9000, uwsgi_fleet_api'].each { |addr| expect(addr).to match(regex) }
      # Not for an instance that answered or failed, nor for another fleet's upstream whose name ends alike.
      ['127.0.0.1:9000', '127.0.0.1:9000, 127.0.0.1:9001', 'uwsgi_fleet_x_api', 'uwsgi_fleet_api2'].each do |addr|
        expect(addr).not_to match(regex)
      end
    end
  end

  describe '.cors_headers' do
    it "are the store app's CORS headers, from the data file its protocol.py reads (cors.json)" do
      cors = JSON.parse(File.read(File.join(UwsgiFleetSpec::COOKBOOK_ROOT, 'files', 'default', 'store_app', 'cors.json')))
      expect(described_class::CORS_FILE).to eq(File.join(File.realpath(UwsgiFleetSpec::COOKBOOK_ROOT), 'files', 'default', 'store_app', 'cors.json'))
      expect(described_class.cors_headers).to eq('Access-Control-Allow-Origin' => cors['allow_origin'],
                                                 'Access-Control-Expose-Headers' => cors['expose_headers'].join(', '))
    end
  end

  describe '.shed_answer' do
    it "is what the fleet's 502 page renders: the condition, the status, CORS then the shed headers, the body" do
      expect(described_class.shed_answer('uwsgi_fleet_api')).to eq(
        condition: described_class.shed_condition('uwsgi_fleet_api'), status: described_class::SHED_STATUS,
        headers: described_class.cors_headers.merge(described_class::SHED_HEADERS), body: described_class.shed_body
      )
      expect(described_class.shed_answer('uwsgi_fleet_api')[:headers].keys.first(2)).to eq(described_class.cors_headers.keys)
    end
  end

  describe '.error_pages' do
    it 'has one page per status nginx answers by itself' do
      expect(pages.map(&:first)).to eq(described_class::ERROR_REASONS.keys)
      expect(pages.map(&:first)).to include(400, 413, 494, 502, 503, 504)
    end

    it 'sends 494 (request headers too large) to the client as 400' do
      expect(pages.assoc(494)[1]).to eq(400)
    end

    it 'sends every other status as it is' do
      pages.reject { |status, _, _| status == 494 }.each { |status, sent, _| expect(sent).to eq(status) }
    end

    it 'answers JSON naming the error' do
      expect(JSON.parse(pages.assoc(413)[2])).to eq('error' => 'request body too large')
      expect(JSON.parse(pages.assoc(502)[2])).to eq('error' => 'no backend available')
      pages.each { |_, _, body| expect(JSON.parse(body).keys).to eq(['error']) }
    end

    it "has bodies that fit inside nginx's single quotes" do
      pages.each { |_, _, body| expect(body).not_to match(/['\\\n]/) }
    end
  end
end
