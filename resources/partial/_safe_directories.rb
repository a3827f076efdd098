# Directories root creates for a resource without ever following a path
# another user controls (see UwsgiFleet::Paths).
action_class do
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
