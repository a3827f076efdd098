require_relative '../spec_helper'

# uwsgi_fleet_balancer: nginx on a node of its own in front of the web nodes.
# What it shares with a fleet (the candidate test, the verified live file, the
# one reload, removals) is in nginx_site_spec.rb; this is what is its own.
describe 'uwsgi_fleet_balancer' do
  step_into :uwsgi_fleet_balancer
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  fleetctl = '/usr/local/sbin/uwsgi-fleetctl'
  site = '/etc/nginx/conf.d/uwsgi_fleet_balancer_default.conf'
  reload = 'reload nginx for uwsgi_fleet_balancer[default]'

  let(:candidate) { chef_run && File.join(Chef::Config[:file_cache_path], 'uwsgi_fleet-default-uwsgi_fleet_balancer_default.conf.candidate') }
  let(:content) { rendered(site) }

  # The server lines of the upstream, in order.
  def upstream_servers(text)
    text[/^upstream \w+ \{\n(.*?)^\}/m, 1].scan(/^\s*server (\S+) max_fails=1 fail_timeout=\d+s;$/).flatten
  end

  # The directives of the location / block, stripped, without comments.
  def location(text)
    text[%r{^\s*location / \{\n(.*?)^\s*\}}m, 1].lines.map(&:strip).reject { |line| line.empty? || line.start_with?('#') }
  end

  context 'with three web nodes, on a private address and port' do
    recipe do
      uwsgi_fleet_balancer 'default' do
        backends %w(10.0.0.11:80 10.0.0.12:8080 [fd00::13]:80)
        listen 8080
        listen_address '10.0.0.2'
        remove_sites ['/etc/nginx/sites-enabled/default']
      end
    end

    it 'installs nginx and python3 (for uwsgi-fleetctl), refreshing the apt lists first, and the tool' do
      expect(chef_run).to install_package("nginx, #{UwsgiFleet::Packages::FLEETCTL.join(', ')}")
      expect(position(:apt_update, 'uwsgi_fleet')).to be < position(:package, "nginx, #{UwsgiFleet::Packages::FLEETCTL.join(', ')}")
      expect(chef_run).to create_cookbook_file(fleetctl).with(source: 'uwsgi-fleetctl', mode: '0755')
      expect(chef_run).to create_remote_directory(UwsgiFleet::Tool::PACKAGE).with(source: 'uwsgi_fleetctl')
    end

    it 'renders its own template, for the candidate as for the live file' do
      expect(chef_run.template(candidate).source).to eq('balancer_site.conf.erb')
      expect(chef_run).to create_template(site).with(cookbook: 'uwsgi_fleet', source: 'balancer_site.conf.erb', mode: '0644')
    end

    it 'lists exactly the backends upstream, in the order given, each left out for fail_timeout after a failed connect' do
      expect(upstream_servers(content)).to eq(%w(10.0.0.11:80 10.0.0.12:8080 [fd00::13]:80))
      expect(content.scan(/^\s*server \S+ .*;$/).map(&:strip)).to eq([
                                                                       'server 10.0.0.11:80 max_fails=1 fail_timeout=5s;',
                                                                       'server 10.0.0.12:8080 max_fails=1 fail_timeout=5s;',
                                                                       'server [fd00::13]:80 max_fails=1 fail_timeout=5s;',
                                                                     ])
    end

    it 'balances with least_conn over a shared zone, keeping connections to the web nodes' do
      upstream = content[/^upstream uwsgi_fleet_balancer_default \{\n(.*?)^\}/m, 1]
      expect(upstream).to match(/^\s+least_conn;$/).and match(/^\s+zone uwsgi_fleet_balancer_default 64k;$/)
        .and match(/^\s+keepalive 32;$/)
    end

    it 'serves only on the address and port given, as the default server, without the nginx version' do
      expect(content.scan(/^\s*listen .*;$/).map(&:strip)).to eq(['listen 10.0.0.2:8080 default_server;'])
      expect(content).to match(/^\s+server_name _;$/).and match(/^\s+server_tokens off;$/)
    end

    it 'passes requests to the web nodes over HTTP/1.1 keepalive, with the client address and scheme' do
      expect(location(content)).to include(
        'proxy_pass http://uwsgi_fleet_balancer_default;', 'proxy_http_version 1.1;', 'proxy_set_header Connection "";',
        'proxy_set_header Host $host;', 'proxy_set_header X-Real-IP $remote_addr;',
        'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;', 'proxy_set_header X-Forwarded-Proto $scheme;'
      )
    end

    it 'routes around a silent web node: a refused, reset or slow connect goes to the next one, POSTs too' do
      expect(location(content)).to include('proxy_connect_timeout 1s;', 'proxy_next_upstream error timeout non_idempotent;',
                                           'proxy_next_upstream_tries 3;', 'proxy_read_timeout 70s;')
    end

    it "names the web node and its instance that answered in X-Fleet-Instance (replacing the node's own header)" do
      expect(location(content)).to include('proxy_hide_header X-Fleet-Instance;',
                                           'add_header X-Fleet-Instance "$upstream_addr $upstream_http_x_fleet_instance" always;')
    end

    it "limits request bodies and times out slow clients as a fleet's nginx does" do
      expect(content).to match(/^\s+client_max_body_size 100m;$/).and match(/^\s+client_body_buffer_size 1m;$/)
        .and match(/^\s+client_header_timeout 10s;$/).and match(/^\s+client_body_timeout 10s;$/).and match(/^\s+send_timeout 10s;$/)
    end

    it "answers nginx's own errors (no web node left: 502) with JSON that browsers may read" do
      page = content[/^ *error_page 502 = @error_502;\n(?:.*\n){6}/].lines.map(&:strip)
      expect(page).to eq(['error_page 502 = @error_502;', 'location @error_502 {', 'default_type application/json;',
                          *UwsgiFleetSpec.cors_add_headers,
                          %(return 502 '{"error":"no backend available"}';), '}'])
      expect(content.scan(/^\s+error_page (\d+) = @error_\1;$/).flatten.map(&:to_i)).to eq(UwsgiFleet::Nginx::ERROR_REASONS.keys)
    end

    it 'tests the candidate and installs the live file with the removed site gone, then reloads once' do
      command = "#{fleetctl} nginx-test --put #{site}=%{path} --remove /etc/nginx/sites-enabled/default"
      expect(verify_commands(chef_run.template(candidate))).to eq([command])
      expect(verify_commands(chef_run.template(site))).to eq([command])
      expect(chef_run).to delete_file('/etc/nginx/sites-enabled/default')
      expect(chef_run.execute(reload).command).to eq("#{fleetctl} nginx-reload")
      expect(chef_run.find_resources(:execute).map(&:name)).to eq([reload])
    end

    it 'has no main nginx.conf of its own to test or install' do
      expect(chef_run).not_to create_file(File.join(Chef::Config[:file_cache_path], 'uwsgi_fleet-default-nginx.conf.candidate'))
      expect(chef_run).not_to create_file('/etc/nginx/nginx.conf')
    end

    it 'creates no user and no directory: it runs nothing but nginx' do
      expect(chef_run.find_resources(:user) + chef_run.find_resources(:directory)).to be_empty
    end
  end

  context 'with its own timeouts, names and balancing, on every address and not the default server' do
    recipe do
      uwsgi_fleet_balancer 'edge' do
        backends ['10.0.0.11:80']
        default_server false
        server_name 'sentry.example.com'
        balance 'round_robin'
        connect_timeout 3
        fail_timeout 30
        read_timeout 120
        client_timeout 20
        client_max_body_size '20m'
        client_body_buffer_size '4m'
      end
    end

    let(:content) { rendered('/etc/nginx/conf.d/uwsgi_fleet_balancer_edge.conf') }

    it 'names its upstream and file after the resource' do
      expect(chef_run).to create_template('/etc/nginx/conf.d/uwsgi_fleet_balancer_edge.conf')
      expect(content).to include("upstream uwsgi_fleet_balancer_edge {\n").and include('proxy_pass http://uwsgi_fleet_balancer_edge;')
    end

    it 'serves on every address, not as the default server, under its names' do
      expect(content.scan(/^\s*listen .*;$/).map(&:strip)).to eq(['listen 80;'])
      expect(content).to match(/^\s+server_name sentry\.example\.com;$/)
    end

    it 'renders no balancing directive for round robin (nginx default)' do
      upstream = content[/^upstream \w+ \{\n(.*?)^\}/m, 1].lines.reject { |line| line.strip.start_with?('#') }.join
      expect(upstream).not_to match(/least_conn|ip_hash|random/)
    end

    it 'renders its timeouts and body sizes' do
      expect(upstream_servers(content)).to eq(['10.0.0.11:80'])
      expect(content).to match(/^\s+server 10\.0\.0\.11:80 max_fails=1 fail_timeout=30s;$/)
      expect(location(content)).to include('proxy_connect_timeout 3s;', 'proxy_read_timeout 120s;')
      expect(content).to match(/^\s+client_header_timeout 20s;$/).and match(/^\s+client_max_body_size 20m;$/)
        .and match(/^\s+client_body_buffer_size 4m;$/)
    end

    it 'says nothing of a removal' do
      expect(content).not_to include('Converged together with')
      expect(verify_commands(chef_run.template('/etc/nginx/conf.d/uwsgi_fleet_balancer_edge.conf')))
        .to eq(["#{fleetctl} nginx-test --put /etc/nginx/conf.d/uwsgi_fleet_balancer_edge.conf=%{path}"])
    end
  end

  { 'random_two' => 'random two least_conn;', 'ip_hash' => 'ip_hash;' }.each do |balance, directive|
    context "with balance #{balance}" do
      recipe do
        uwsgi_fleet_balancer 'default' do
          backends ['10.0.0.11:80']
          balance balance
        end
      end

      it "renders #{directive}" do
        expect(content).to match(/^\s+#{Regexp.escape(directive)}$/)
        expect(content).not_to match(/^\s+least_conn;$/)
      end
    end
  end

  context 'with no backend (a search that found no web node)' do
    recipe do
      file '/tmp/declared before the balancer'
      uwsgi_fleet_balancer 'default' do
        backends []
      end
    end

    it 'refuses at compile time, before any resource converges: the last good config stays live' do
      expect_refused_before_converge(
        "uwsgi_fleet_balancer[default]: invalid properties, nothing was changed:\n  " \
        "backends must be a non-empty list of 'address:port' (no web node found?); got []"
      )
    end
  end

  context 'with no backends given at all' do
    recipe do
      uwsgi_fleet_balancer 'default'
    end

    it 'refuses too (the default is empty)' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration, /^  backends must be a non-empty list/)
    end
  end

  context 'with several bad properties' do
    recipe do
      uwsgi_fleet_balancer 'default' do
        backends ['web1:80']
        listen_address '0.0.0.0:80'
        connect_timeout 0
        remove_sites ['/etc/nginx/../shadow']
      end
    end

    it 'names them all in one message' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration) { |error|
        expect(error.message.lines.map(&:strip)).to eq([
                                                         'uwsgi_fleet_balancer[default]: invalid properties, nothing was changed:',
                                                         'listen_address must be a plain IPv4 or IPv6 address, or nil; got "0.0.0.0:80"',
                                                         'connect_timeout must be an integer from 1 to 60; got 0',
                                                         'remove_sites must be a list of absolute paths under /etc/nginx (no .. or %); ' \
                                                         'got ["/etc/nginx/../shadow"]',
                                                         %(backends must be a non-empty list of 'address:port' (no web node found?); got ["web1:80"]),
                                                       ])
      }
    end
  end

  context 'named longer than 10 characters' do
    recipe do
      uwsgi_fleet_balancer 'production_eu' do
        backends ['10.0.0.11:80']
      end
    end

    it 'is valid (its name is, and so are the upstream and file named after it)' do
      expect { chef_run }.not_to raise_error
      expect(rendered('/etc/nginx/conf.d/uwsgi_fleet_balancer_production_eu.conf')).to match(/^upstream uwsgi_fleet_balancer_production_eu \{$/)
    end
  end

  context 'named with the longest name there is (31 characters)' do
    recipe do
      uwsgi_fleet_balancer 'a' * 31 do
        backends ['10.0.0.11:80']
      end
    end

    it 'is valid: its upstream, uwsgi_fleet_balancer_<name>, is within 63 characters' do
      expect(chef_run.find_resource(:uwsgi_fleet_balancer, 'a' * 31).upstream).to eq("uwsgi_fleet_balancer_#{'a' * 31}")
    end
  end

  context 'with an upstream longer than 63 characters' do
    recipe do
      uwsgi_fleet_balancer 'default' do
        backends ['10.0.0.11:80']
        upstream 'a' * 64
      end
    end

    it 'refuses it, saying the limit' do
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration,
                                         /^  upstream must be lowercase letters, digits and _, starting with a letter \(up to 63\); got "a{64}"$/)
    end
  end

  context 'action :delete' do
    recipe do
      uwsgi_fleet_balancer 'default' do
        action :delete
      end
    end

    it 'needs no backends, and removes the site file, reloading nginx only if it was there' do
      expect(chef_run).to delete_file(site)
      expect(position(:file, site)).to be < position(:execute, reload)
      expect(guard_passes?(chef_run.execute(reload))).to be(false)
      chef_run.file(site).updated_by_last_action(true)
      expect(guard_passes?(chef_run.execute(reload))).to be(true)
    end

    it 'installs and renders nothing' do
      expect(chef_run.find_resources(:package) + chef_run.find_resources(:template)).to be_empty
    end
  end

  describe 'the resource' do
    recipe do
      uwsgi_fleet_balancer 'default' do
        backends ['10.0.0.11:80']
        action :nothing
      end
    end

    let(:klass) { resource_class(:uwsgi_fleet_balancer) }

    it 'describes itself and every property it declares' do
      expect(klass.description).to match(/balancing over the web nodes/)
      own_properties(klass).each do |name, property|
        expect(property.description).to be_a(String).and(match(/\w{3}/)), "#{name} has no description"
      end
    end

    it 'has the actions :create (the default) and :delete' do
      expect(klass.default_action).to eq([:create])
      expect(klass.allowed_actions).to include(:create, :delete)
    end

    it 'is valid with its defaults and backends' do
      expect { chef_run }.not_to raise_error
    end

    it 'validates every property it declares (a value of any wrong type is named in the message)' do
      chef_run
      own_properties(klass).each_key do |name|
        resource = klass.new('default', chef_run.run_context)
        resource.backends(['10.0.0.11:80']) unless name == :backends
        resource.send(name, Object.new)
        expect { resource.after_created }.to raise_error(UwsgiFleet::InvalidConfiguration, /^  #{name} /), "#{name} escaped validation"
      end
    end
  end
end
