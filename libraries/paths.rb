#
# Cookbook:: uwsgi_fleet
# Library:: paths
#
module UwsgiFleet
  # Root creates and re-owns directories for the fleets. It must never do so
  # through a path the app user controls: a symlink planted there would make
  # root chown or write whatever it points to.
  module Paths
    class Unsafe < SecurityError; end

    module_function

    # Problems with letting root manage +path+: [] when it is safe.
    def problems(path)
      found = []
      found << "#{path} is a symlink" if ::File.symlink?(path)
      found << "#{path} exists and is not a directory" if ::File.exist?(path) && !::File.directory?(path)
      ancestors(path).each do |dir|
        next unless ::File.exist?(dir)
        stat = ::File.lstat(dir)
        found << "#{dir} is a symlink" if stat.symlink?
        found << "#{dir} is not owned by root" unless stat.uid.zero?
        found << "#{dir} is writable by group or others" if (stat.mode & 0o022).nonzero? && (stat.mode & 0o1000).zero?
      end
      found
    end

    # Whether root should make +path+ a shared parent of its own (root, 0755): it
    # does not exist yet, or another user owns it (0.1.0 left some to the app
    # user). An existing directory of root's is left as it is, /tmp included.
    def claim?(path)
      !::File.lstat(path).uid.zero?
    rescue Errno::ENOENT
      true
    end

    def check!(path)
      found = problems(path)
      return true if found.empty?
      raise Unsafe, "uwsgi_fleet: root will not manage #{path}: #{found.join('; ')}. " \
                    'Fix the ownership or pick another path, so that no other user controls a directory above it.'
    end

    # /a/b/c -> ['/', '/a', '/a/b']
    def ancestors(path)
      parts = path.split('/').reject(&:empty?)
      ['/'] + (1...parts.size).map { |i| '/' + parts[0, i].join('/') }
    end
  end
end
