require_relative '../spec_helper'

# resources/partial/_nginx_site.rb: the nginx site file of a uwsgi_fleet and of
# a uwsgi_fleet_balancer, with the same steps for both. The including context
# declares the resource (recipe) and names it: +label+ (as in its reload),
# +site+ (its file), +candidate_name+ (the candidate's file in the cache).
RSpec.shared_examples 'an nginx site of this cookbook' do
  fleetctl = '/usr/local/sbin/uwsgi-fleetctl'
  removed_link = '/etc/nginx/sites-enabled/default'
  removed_file = '/etc/nginx/conf.d/old.conf'

  let(:candidate) { chef_run && File.join(Chef::Config[:file_cache_path], candidate_name) }
  let(:reload) { "reload nginx for #{label}" }
  let(:test_command) { "#{fleetctl} nginx-test --put #{site}=%{path} --remove #{removed_link} --remove #{removed_file}" }

  it 'tests the candidate site whole, with the tool just installed, before anything else changes' do
    template = chef_run.template(candidate)
    expect(template.mode).to eq('0600')
    expect(verify_commands(template)).to eq([test_command])
    expect(position(:cookbook_file, fleetctl)).to be < position(:template, candidate)
    first_change = resources.index do |r|
      %i(user directory service link).include?(r.declared_type) || (%i(file template).include?(r.declared_type) && r.name == site)
    end
    expect(position(:template, candidate)).to be < first_change
  end

  it "installs uwsgi-fleetctl as root's: its package (directories 0755, files 0644, modules it no longer has purged) in #{UwsgiFleet::Tool::LIB}, then the launcher" do
    expect(chef_run).to create_remote_directory(UwsgiFleet::Tool::PACKAGE)
      .with(cookbook: 'uwsgi_fleet', source: 'uwsgi_fleetctl', owner: 'root', group: 'root', mode: '0755',
            files_owner: 'root', files_group: 'root', files_mode: '0644', purge: true, recursive: true)
    expect(chef_run).to create_cookbook_file(fleetctl).with(cookbook: 'uwsgi_fleet', source: 'uwsgi-fleetctl', owner: 'root', group: 'root', mode: '0755')
    expect(position(:remote_directory, UwsgiFleet::Tool::PACKAGE)).to be < position(:cookbook_file, fleetctl)
  end

  it 'tests exactly the file that goes live' do
    expect(chef_run.template(candidate).source).to eq(chef_run.template(site).source)
    expect(rendered(candidate)).to eq(rendered(site))
  end

  it 'installs the live file (0644) through a temp file tested whole again, nginx enabled and started first' do
    expect(chef_run).to create_template(site).with(cookbook: 'uwsgi_fleet', mode: '0644')
    expect(verify_commands(chef_run.template(site))).to eq([test_command])
    expect(chef_run).to enable_service('nginx')
    expect(chef_run).to start_service('nginx')
    expect(position(:service, 'nginx')).to be < position(:template, site)
  end

  it 'says in the site file which removals it is converged with' do
    expect(rendered(site)).to include("# Converged together with: the removal of #{removed_link}, #{removed_file}.")
  end

  it 'removes the replaced sites after the live file (a symlink as a link, a file as a file), before the reload' do
    expect(chef_run).to delete_link(removed_link)
    expect(chef_run).to delete_file(removed_file)
    expect(position(:template, site)).to be < position(:link, removed_link)
    expect(position(:file, removed_file)).to be < position(:execute, reload)
  end

  it 'reloads nginx once, through uwsgi-fleetctl (which tests the live config and waits for the new workers)' do
    expect(chef_run.execute(reload).command).to eq("#{fleetctl} nginx-reload")
    expect(chef_run.find_resources(:execute).map(&:name).grep(/reload nginx/)).to eq([reload])
  end

  it 'reloads only if the live file or a removal changed, not for the candidate' do
    execute = chef_run.execute(reload)
    expect(chef_run).not_to run_execute(reload)
    chef_run.template(candidate).updated_by_last_action(true)
    expect(guard_passes?(execute)).to be(false)
    chef_run.file(removed_file).updated_by_last_action(true)
    expect(guard_passes?(execute)).to be(true)
  end

  it 'reloads when the live file alone changed' do
    chef_run.template(site).updated_by_last_action(true)
    expect(guard_passes?(chef_run.execute(reload))).to be(true)
  end

  # (A fleet's 502 page sheds first: see the examples of each below.)
  it "answers nginx's own errors with the shared JSON pages (nginx_error_pages.erb)" do
    pages = rendered(site).scan(/^ *error_page (\d+) = @error_\1;\n *location @error_\1 \{\n(?:.*\n)*? *return (\d+) '(.*)';\n {4}\}$/)
    expect(pages).to eq(UwsgiFleet::Nginx.error_pages.map { |status, sent, body| [status.to_s, sent.to_s, body] })
  end
end

RSpec.shared_examples 'an nginx site removed by :delete' do
  let(:reload) { "reload nginx for #{label}" }

  it 'removes its site file first, nginx enabled and started so that it can reload' do
    expect(chef_run).to delete_file(site)
    expect(chef_run).to start_service('nginx')
    expect(position(:service, 'nginx')).to be < position(:file, site)
    expect(position(:file, site)).to be < position(:execute, reload)
  end

  it 'reloads nginx only if the file was there' do
    execute = chef_run.execute(reload)
    expect(guard_passes?(execute)).to be(false)
    chef_run.file(site).updated_by_last_action(true)
    expect(guard_passes?(execute)).to be(true)
  end

  context 'when the site file is a symlink' do
    let(:symlinks) { [site] }

    it 'removes the link, not what it points to' do
      expect(chef_run).to delete_link(site)
      expect(chef_run).not_to delete_file(site)
    end
  end
end

describe 'the nginx site partial (resources/partial/_nginx_site.rb)' do
  step_into :uwsgi_fleet, :uwsgi_fleet_balancer, :uwsgi_fleet_supervisor_instances
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  let(:symlinks) { ['/etc/nginx/sites-enabled/default'] }

  context 'of a uwsgi_fleet' do
    recipe do
      uwsgi_fleet 'api' do
        app_module 'api_app:application'
        remove_sites ['/etc/nginx/sites-enabled/default', '/etc/nginx/conf.d/old.conf']
      end
    end

    let(:label) { 'uwsgi_fleet[api]' }
    let(:site) { '/etc/nginx/conf.d/uwsgi_fleet_api.conf' }
    let(:candidate_name) { 'uwsgi_fleet-api-uwsgi_fleet_api.conf.candidate' }

    it_behaves_like 'an nginx site of this cookbook'

    it 'renders the fleet template' do
      expect(chef_run.template(site).source).to eq('nginx_site.conf.erb')
    end

    it "sheds in its 502 page when nginx can pick none of its instances (each holds max_conns): its upstream's name in $upstream_addr" do
      page = rendered(site)[/^ *location @error_502 \{\n(?:.*\n)*? {4}\}\n/]
      expect(page).to include(%(if ($upstream_addr ~ "(^|, )uwsgi_fleet_api$") {), "return 503 '#{UwsgiFleet::Nginx.shed_body}';")
      expect(rendered(site).scan(/^\s*if \(/).size).to eq(1)
    end
  end

  context 'of a uwsgi_fleet_balancer' do
    recipe do
      uwsgi_fleet_balancer 'default' do
        backends ['10.0.0.11:80']
        remove_sites ['/etc/nginx/sites-enabled/default', '/etc/nginx/conf.d/old.conf']
      end
    end

    let(:label) { 'uwsgi_fleet_balancer[default]' }
    let(:site) { '/etc/nginx/conf.d/uwsgi_fleet_balancer_default.conf' }
    let(:candidate_name) { 'uwsgi_fleet-default-uwsgi_fleet_balancer_default.conf.candidate' }

    it_behaves_like 'an nginx site of this cookbook'

    it 'renders the balancer template' do
      expect(chef_run.template(site).source).to eq('balancer_site.conf.erb')
    end

    # A web node's nginx sheds, and its 503 passes through the balancer as it is.
    it 'neither limits nor sheds: no max_conns, no shed block, its 502 page the shared one' do
      expect(rendered(site)).not_to include('max_conns', '$upstream_addr ~', 'overloaded', 'Retry-After')
      expect(rendered(site)).not_to match(/^\s*if \(/)
    end
  end

  context 'of a uwsgi_fleet and a uwsgi_fleet_balancer in one run' do
    recipe do
      uwsgi_fleet 'web' do
        app_module 'api_app:application'
        listen 8080
        listen_address '10.0.0.11'
      end
      uwsgi_fleet_balancer 'web' do
        backends ['10.0.0.11:8080']
      end
    end

    it 'keeps their candidates, files and reloads apart' do
      cache = chef_run && Chef::Config[:file_cache_path]
      expect(chef_run).to create_template(File.join(cache, 'uwsgi_fleet-web-uwsgi_fleet_web.conf.candidate'))
      expect(chef_run).to create_template(File.join(cache, 'uwsgi_fleet-web-uwsgi_fleet_balancer_web.conf.candidate'))
      expect(chef_run.find_resources(:execute).map(&:name).grep(/reload nginx/))
        .to eq(['reload nginx for uwsgi_fleet[web]', 'reload nginx for uwsgi_fleet_balancer[web]'])
    end

    it "sheds in the fleet's site only" do
      expect(rendered('/etc/nginx/conf.d/uwsgi_fleet_web.conf')).to include(%(if ($upstream_addr ~ "(^|, )uwsgi_fleet_web$") {))
      expect(rendered('/etc/nginx/conf.d/uwsgi_fleet_balancer_web.conf')).not_to include('$upstream_addr ~')
    end

    it 'tests each one with its own file in place (the other converges on its own, tested in turn)' do
      expect(verify_commands(chef_run.template('/etc/nginx/conf.d/uwsgi_fleet_balancer_web.conf')))
        .to eq(['/usr/local/sbin/uwsgi-fleetctl nginx-test --put /etc/nginx/conf.d/uwsgi_fleet_balancer_web.conf=%{path}'])
      expect(rendered('/etc/nginx/conf.d/uwsgi_fleet_web.conf')).to match(/^\s+listen 10\.0\.0\.11:8080;$/)
    end
  end

  context 'of a uwsgi_fleet being deleted' do
    let(:node_files) do
      { '/etc/uwsgi_fleet/api/fleet.json' => JSON.generate(
        'name' => 'api', 'process_manager' => 'supervisor', 'ports' => [9000], 'instance_prefix' => 'uwsgi_fleet_api_',
        'site_file' => '/etc/nginx/conf.d/uwsgi_fleet_api.conf', 'fifo_dir' => '/var/lib/uwsgi_fleet/api', 'log_dir' => '/var/log/uwsgi_fleet/api'
      ) }
    end

    recipe do
      uwsgi_fleet 'api' do
        action :delete
      end
    end

    let(:label) { 'uwsgi_fleet[api]' }
    let(:site) { '/etc/nginx/conf.d/uwsgi_fleet_api.conf' }

    it_behaves_like 'an nginx site removed by :delete'
  end

  context 'of a uwsgi_fleet_balancer being deleted' do
    recipe do
      uwsgi_fleet_balancer 'default' do
        action :delete
      end
    end

    let(:label) { 'uwsgi_fleet_balancer[default]' }
    let(:site) { '/etc/nginx/conf.d/uwsgi_fleet_balancer_default.conf' }

    it_behaves_like 'an nginx site removed by :delete'
  end
end
