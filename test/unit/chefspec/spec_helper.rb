#
# ChefSpec setup for the uwsgi_fleet cookbook (the repository root is the cookbook)
# and the wrapper cookbook the Kitchen suites run (test/cookbooks/test).
#
# Run with: bundle exec rspec --default-path test/unit/chefspec --pattern '**/*_spec.rb'
require 'chefspec'
require 'fileutils'
require 'json'
require 'stringio'
require 'tmpdir'

module UwsgiFleetSpec
  # The cookbook: the repository root, whatever its directory is called.
  COOKBOOK_ROOT = File.expand_path('../../..', __dir__).freeze
  TEST_COOKBOOK = File.join(COOKBOOK_ROOT, 'test', 'cookbooks', 'test').freeze

  # The cookbook as Chef sees it: a private cookbook path whose `uwsgi_fleet`
  # mirrors the cookbook's own parts (directories, with every file a symlink to
  # the repository's) and whose `test` links to the wrapper cookbook. The
  # repository root itself would not do: CI clones it under any name, and Chef
  # would walk its thousands of test and bench files on every converge.
  # ('cookbooks' in the path's name keeps ChefSpec from guessing a
  # single-cookbook layout.)
  # The Makefile's COOKBOOK_PARTS: the one list `make converge` and the test nodes mirror too.
  COOKBOOK_PARTS = File.read(File.join(COOKBOOK_ROOT, 'Makefile'))[/^COOKBOOK_PARTS\s*:=\s*(.+)$/, 1].split.freeze
  COOKBOOK_PATH = Dir.mktmpdir('uwsgi_fleet_chefspec_cookbooks').freeze
  COOKBOOK_LINK = File.join(COOKBOOK_PATH, 'uwsgi_fleet').freeze
  at_exit { FileUtils.remove_entry(COOKBOOK_PATH) if File.directory?(COOKBOOK_PATH) }

  def self.mirror(source, dest)
    if File.directory?(source)
      FileUtils.mkdir_p(dest)
      Dir.children(source).reject { |entry| entry == '__pycache__' }.each do |entry|
        mirror(File.join(source, entry), File.join(dest, entry))
      end
    elsif File.exist?(source)
      FileUtils.mkdir_p(File.dirname(dest))
      File.symlink(source, dest)
    end
  end

  COOKBOOK_PARTS.each { |part| mirror(File.join(COOKBOOK_ROOT, part), File.join(COOKBOOK_LINK, part)) }
  File.symlink(TEST_COOKBOOK, File.join(COOKBOOK_PATH, 'test'))

  # The Chef environments a solo run may put its node in (the recipes search in
  # the node's environment, and chef-solo loads it from this path).
  ENVIRONMENTS = %w(production staging).freeze
  ENVIRONMENT_PATH = Dir.mktmpdir('uwsgi_fleet_chefspec_environments').freeze
  at_exit { FileUtils.remove_entry(ENVIRONMENT_PATH) if File.directory?(ENVIRONMENT_PATH) }
  ENVIRONMENTS.each do |name|
    File.write(File.join(ENVIRONMENT_PATH, "#{name}.json"),
               JSON.generate('name' => name, 'description' => name, 'json_class' => 'Chef::Environment', 'chef_type' => 'environment'))
  end

  FLEETCTL = '/usr/local/sbin/uwsgi-fleetctl'.freeze
  SUPERVISOR_GLOB = '/etc/supervisor/conf.d/*.conf'.freeze
  WANTS_GLOB = '/etc/systemd/system/multi-user.target.wants/*.service'.freeze
  SOMAXCONN_PATH = '/proc/sys/net/core/somaxconn'.freeze
  INIT_COMM_PATH = '/proc/1/comm'.freeze
  # Directories a fresh Debian node has, root's alone.
  ROOT_DIRS = %w(/ /etc /opt /var /var/lib /var/log /var/spool /etc/nginx /etc/nginx/conf.d).freeze

  module_function

  # node['uwsgi_fleet'] exactly as attributes/default.rb sets it, as a plain Hash.
  def attribute_defaults
    @attribute_defaults ||= begin
      node = Chef::Node.new
      node.from_file(File.join(COOKBOOK_ROOT, 'attributes', 'default.rb'))
      node['uwsgi_fleet'].to_hash.freeze
    end
  end

  # The CORS lines of every answer nginx gives itself, read from the one file
  # the store app reads too (files/default/store_app/cors.json), not from the library.
  def cors_add_headers
    cors = JSON.parse(File.read(File.join(COOKBOOK_ROOT, 'files', 'default', 'store_app', 'cors.json')))
    [%(add_header Access-Control-Allow-Origin "#{cors['allow_origin']}" always;),
     %(add_header Access-Control-Expose-Headers "#{cors['expose_headers'].join(', ')}" always;)]
  end

  # A fresh deep copy of the defaults, safe to mutate in one example.
  def default_attrs
    Marshal.load(Marshal.dump(attribute_defaults))
  end

  # A uwsgi_fleet's properties as the resource gives them (its defaults, an app
  # module and +overrides+): what FleetPlan and the instances resources take.
  def fleet_props(name, **overrides)
    process_manager = overrides.fetch(:process_manager, 'supervisor')
    {
      name: name, processes: 2, threads: 8, base_port: 9000, bind_address: '127.0.0.1', user: 'uwsgi_fleet',
      listen_backlog: 1024, buffer_size: 65_535, harakiri: 60, process_manager: process_manager,
      store_app: nil, app_module: 'app.wsgi:application', wsgi_file: nil, chdir: '/opt/uwsgi_fleet', pythonpath: ['/opt/uwsgi_fleet'],
      virtualenv: nil, env: {}, listen: 80, listen_address: nil, server_name: '_', default_server: false, client_max_body_size: '2m',
      client_body_buffer_size: '1m', balance: 'least_conn', max_conns: 'auto', burst_queue_ms: 500, sustained_queue_ms: 50,
      client_timeout: 10, remove_sites: [], nginx_main_config: nil
    }.merge(UwsgiFleet::Fleet.named_defaults(name, process_manager)).merge(overrides)
  end

  def fleet_plan(name, cpus: 2, **overrides)
    UwsgiFleet::FleetPlan.new(fleet_props(name, **overrides), cpus: cpus)
  end

  # A solo runner whose node is in +environment+ (one of ENVIRONMENTS).
  def runner_in(environment)
    ChefSpec::SoloRunner.new(chef_runner_options.merge(environment_path: ENVIRONMENT_PATH)) { |node| node.chef_environment(environment) }
  end

  # The command of a file resource's verify (Chef keeps it in @command).
  def verify_commands(resource)
    resource.verifications.map { |v| v.instance_variable_get(:@command) }
  end
end

require_relative 'support/schema'

# The libraries are plain Ruby modules: load them for the pure unit specs, through
# the same path Chef later requires them by, so they are loaded exactly once.
Dir.glob(File.join(UwsgiFleetSpec::COOKBOOK_LINK, 'libraries', '*.rb')).sort.each { |lib| require lib }

# What a converge reads from the node, stubbed so that the machine running the
# specs (which may have nginx, supervisor or a fleet of its own) never leaks in:
#   somaxconn, init_comm   -> /proc (node facts)
#   supervisor_confs, wants -> the instance files a node already has
#   node_files              -> {path => content} of files the resources read
#                              (manifests, the default project key, nginx.conf,
#                              a store app's forwarder file); every other path
#                              under /etc/uwsgi_fleet, /etc/nginx, /etc/supervisor
#                              or /etc/systemd does not exist
#   symlinks                -> paths that are symlinks (Debian's default site)
#   apt_lists_empty         -> whether /var/lib/apt/lists holds no package lists
#   node_dirs               -> {dir => empty?} of directories under /etc/uwsgi_fleet
#   root_dirs               -> existing directories of root's (Paths.claim? is
#                              false for them: root leaves them as they are)
RSpec.shared_context 'uwsgi_fleet node' do
  let(:somaxconn) { "4096\n" }
  let(:init_comm) { "systemd\n" }
  let(:supervisor_confs) { [] }
  let(:wants) { [] }
  let(:node_files) { {} }
  let(:symlinks) { [] }
  let(:apt_lists_empty) { false }
  let(:root_dirs) { UwsgiFleetSpec::ROOT_DIRS }
  let(:node_dirs) { {} }

  before do
    node_path = %r{\A/etc/(uwsgi_fleet|nginx|supervisor|systemd)(/|\z)}
    allow(File).to receive(:read).and_call_original
    allow(File).to receive(:read).with(UwsgiFleetSpec::SOMAXCONN_PATH) { somaxconn }
    allow(File).to receive(:read).with(UwsgiFleetSpec::INIT_COMM_PATH) { init_comm }
    allow(File).to receive(:read).with(node_path) { |path| node_files.fetch(path) { raise Errno::ENOENT, path } }
    allow(File).to receive(:exist?).and_call_original
    allow(File).to receive(:exist?).with(node_path) { |path| node_files.key?(path) }
    allow(File).to receive(:open).and_call_original
    allow(File).to receive(:open).with(node_path) do |path, &block|
      io = StringIO.new(node_files.fetch(path) { raise Errno::ENOENT, path })
      block ? block.call(io) : io
    end
    allow(File).to receive(:symlink?).and_call_original
    allow(File).to receive(:symlink?).with(node_path) { |path| symlinks.include?(path) }
    allow(Dir).to receive(:glob).and_call_original
    allow(Dir).to receive(:glob).with(UwsgiFleetSpec::SUPERVISOR_GLOB) { supervisor_confs }
    allow(Dir).to receive(:glob).with(UwsgiFleetSpec::WANTS_GLOB) { wants }
    allow(Dir).to receive(:exist?).and_call_original
    allow(Dir).to receive(:exist?).with(node_path) { |path| node_dirs.key?(path) }
    allow(Dir).to receive(:empty?).and_call_original
    allow(Dir).to receive(:empty?).with(node_path) { |path| node_dirs.fetch(path) { raise Errno::ENOENT, path } }
    allow(UwsgiFleet::Packages).to receive(:apt_lists_empty?) { apt_lists_empty }
    allow(UwsgiFleet::Paths).to receive(:claim?) { |path| !root_dirs.include?(path) }
    allow(UwsgiFleet::Paths).to receive(:problems).and_return([])
    # A web node without Redis looks for a node with the Redis role (to warn): by default it finds none.
    redis_role = Regexp.escape(UwsgiFleetSpec.attribute_defaults['redis']['role_name'])
    stub_search(:node, /\A\(role:#{redis_role}\) AND chef_environment:/).and_return([])
  end
end

# Helpers for specs that converge: order, rendered content, guards.
module UwsgiFleetSpec
  module Converge
    # Every resource of the run, in converge order (a stepped-into resource's
    # own resources follow it).
    def resources
      chef_run.resource_collection.all_resources
    end

    # Whether +resource+ is of +type+ and named +name+ (a String or a Regexp).
    def resource_is?(resource, type, name)
      resource.declared_type == type && (name.is_a?(Regexp) ? name.match?(resource.name.to_s) : name == resource.name)
    end

    # Position of a resource in the run; fails the example if it is not there.
    def position(type, name)
      resources.index { |r| resource_is?(r, type, name) } || raise("no #{type}[#{name}] in the run")
    end

    # The rendered content of the template or file +path+ in the run.
    def rendered(path)
      resource = chef_run.find_resource(:template, path) || chef_run.find_resource(:file, path)
      raise "no template or file #{path} in the run" unless resource
      ChefSpec::Renderer.new(chef_run, resource).content
    end

    # The content of the template +path+ as Chef's own template provider renders
    # it: partials are looked up in the cookbook that declared the template
    # (ChefSpec's renderer looks in the template's `cookbook`), so a fleet
    # declared by another cookbook shows what its node would get.
    def rendered_as_chef_does(path)
      template = chef_run.find_resource(:template, path) || raise("no template #{path} in the run")
      finder = Chef::Provider::TemplateFinder.new(chef_run.run_context, template.cookbook_name, chef_run.node)
      context = Chef::Mixin::Template::TemplateContext.new(template.variables)
      context[:node] = chef_run.node
      context[:template_finder] = finder
      context.render_template(finder.find(template.source, cookbook: template.cookbook))
    end

    # Positions of every resource of a type and name in the run.
    def positions(type, name)
      resources.each_index.select { |i| resource_is?(resources[i], type, name) }
    end

    # What a resource's only_if guards say now.
    def guard_passes?(resource)
      resource.only_if.all?(&:continue?)
    end

    # The class Chef resolves a resource name to on the converged node.
    def resource_class(name)
      Chef::ResourceResolver.resolve(name, node: chef_run.node)
    end

    # {name => Chef::Property} of the properties +klass+ declares itself.
    def own_properties(klass)
      klass.properties.select { |_, property| property.declared_in == klass }
    end

    # The run is refused at compile time, before any resource converges, with
    # +message+: a String is the whole message, a Regexp must match it.
    def expect_refused_before_converge(message)
      expect_any_instance_of(Chef::Runner).not_to receive(:converge)
      expect { chef_run }.to raise_error(UwsgiFleet::InvalidConfiguration, message)
    end
  end
end

RSpec.configure do |config|
  # ChefSpec loads the cookbook before every example of a `platform` group (its
  # preload, in an around hook), although it loads libraries and resources once
  # and for all: once is enough. (A recipe run still loads the whole cookbook.)
  config.before do
    ENV['CHEFSPEC_NO_PRELOAD'] = '1' if chefspec_platform
  end
  config.cookbook_path = UwsgiFleetSpec::COOKBOOK_PATH
  # The spec files live under test/unit/chefspec, not spec/: name the cookbook root.
  config.cookbook_root = UwsgiFleetSpec::COOKBOOK_LINK
  config.platform = 'debian'
  config.version = '12'
  config.log_level = :fatal
  config.expect_with(:rspec) { |c| c.max_formatted_output_length = 2000 }
  config.include UwsgiFleetSpec
  config.include UwsgiFleetSpec::Converge
end
