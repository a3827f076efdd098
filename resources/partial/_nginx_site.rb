# An nginx site file of this cookbook's (a fleet's, the balancer's): tested
# whole with every other site before anything else changes, then installed
# through a verified temp file, with one reload. The resource using this
# defines site_source and site_variables (what its template renders) and has
# the properties site_file and remove_sites (and may have nginx_main_config).
action_class do
  def candidate(file)
    ::File.join(Chef::Config[:file_cache_path], "uwsgi_fleet-#{new_resource.name}-#{::File.basename(file)}.candidate")
  end

  def main_config
    new_resource.respond_to?(:nginx_main_config) ? new_resource.nginx_main_config : nil
  end

  # `uwsgi-fleetctl nginx-test` for the whole config as this converge leaves it:
  # +site+ (this resource's file) and the main config in place, removed sites gone.
  def nginx_test(site:, main:)
    candidates = { new_resource.site_file => site }
    candidates[UwsgiFleet::Nginx::CONF] = main if main_config
    UwsgiFleet::Nginx.test_command(UwsgiFleet::Tool::FLEETCTL, candidates: candidates, removes: new_resource.remove_sites)
  end

  def site_template(path, verify_command, mode: '0644')
    source_name = site_source
    vars = site_variables.merge(removes: new_resource.remove_sites, error_pages: UwsgiFleet::Nginx.error_pages,
                                cors_headers: UwsgiFleet::Nginx.cors_headers)
    template path do
      cookbook 'uwsgi_fleet'
      source source_name
      mode mode
      variables(vars)
      verify verify_command
    end
  end

  # Before anything else changes: a config nginx rejects stops the run here,
  # with the node untouched.
  def test_nginx_candidate
    main_candidate = candidate(UwsgiFleet::Nginx::CONF)
    text = main_config
    file main_candidate do
      content text
      mode '0600'
      only_if { text }
    end
    site_template(candidate(new_resource.site_file), nginx_test(site: '%{path}', main: main_candidate), mode: '0600')
  end

  # The live files, each tested whole again as a temp file before it replaces
  # the live one; then one reload, at once (a shrink must stop using an
  # instance before it is retired).
  def nginx_go_live
    nginx_service
    files = []
    if (text = main_config)
      main_test = nginx_test(site: candidate(new_resource.site_file), main: '%{path}')
      files << file(UwsgiFleet::Nginx::CONF) do
        content text
        mode '0644'
        verify main_test
      end
    end
    files << site_template(new_resource.site_file, nginx_test(site: '%{path}', main: candidate(UwsgiFleet::Nginx::CONF)))
    new_resource.remove_sites.each { |site| files << remove_path(site) }
    nginx_reload(files)
  end

  # The site file goes first, so no new request reaches what is behind it.
  def nginx_remove_site(path = new_resource.site_file)
    nginx_service
    nginx_reload([remove_path(path)])
  end

  def nginx_service
    service 'nginx' do
      supports status: true, reload: true
      action [:enable, :start]
    end
  end

  # Tests the live config, signals the master, and waits for its new workers.
  def nginx_reload(changed)
    execute "reload nginx for #{new_resource}" do
      command "#{UwsgiFleet::Tool::FLEETCTL} nginx-reload"
      only_if { changed.any?(&:updated_by_last_action?) }
    end
  end

  def remove_path(path)
    ::File.symlink?(path) ? link(path) { action :delete } : file(path) { action :delete }
  end

  # The package, then the command that imports it; root's throughout, since
  # root runs it. One remote_directory for the package: a module added needs
  # no resource of its own, the schema it checks manifests against comes with
  # it, and purge drops a module a later release removes (the launcher writes
  # no bytecode there, so nothing else is in it). Its parent, Tool::LIB, is
  # made with it (recursive; root's, 0755 under Chef's umask 022).
  def install_fleetctl
    remote_directory UwsgiFleet::Tool::PACKAGE do
      cookbook 'uwsgi_fleet'
      source 'uwsgi_fleetctl'
      owner 'root'
      group 'root'
      mode '0755'
      files_owner 'root'
      files_group 'root'
      files_mode '0644'
      purge true
      recursive true
    end
    cookbook_file UwsgiFleet::Tool::FLEETCTL do
      cookbook 'uwsgi_fleet'
      source 'uwsgi-fleetctl'
      owner 'root'
      group 'root'
      mode '0755'
    end
  end
end
