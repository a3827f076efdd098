action_class do
  # Install +names+ on a node whose apt lists may be empty (fresh cloud and
  # container images ship without them) or stale (packages gone from the mirror).
  def install_packages(names)
    apt_update 'uwsgi_fleet' do
      frequency 86_400
      action :periodic
    end

    # The periodic stamp can outlive the lists it vouches for (`rm -rf
    # /var/lib/apt/lists/*`, image builds): then update regardless.
    apt_update 'uwsgi_fleet: the apt lists are empty' do
      action :update
      only_if { UwsgiFleet::Packages.apt_lists_empty? }
    end

    package names.uniq
  end

  # A directory whose parent belongs to root, created (or re-owned) as given.
  # Root never follows a path another user controls: an existing +path+ must
  # be a real directory, and every directory above it root's alone.
  def safe_directory(path, owner:, mode:)
    UwsgiFleet::Paths.check!(path)
    directory path do
      owner owner
      group owner
      mode mode
    end
  end

  # A shared parent such as /var/lib/uwsgi_fleet: root's, readable by all.
  def root_directory(path)
    safe_directory(path, owner: 'root', mode: '0755')
  end
end
