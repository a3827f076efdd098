#
# ChefSpec setup for the uwsgi_fleet cookbook (the repository root is the cookbook).
#
# Run with: bundle exec rspec --default-path test/unit/chefspec --pattern '**/*_spec.rb'
require 'chefspec'
require 'fileutils'
require 'json'
require 'tmpdir'

module UwsgiFleetSpec
  # The cookbook: the repository root, whatever its directory is called.
  COOKBOOK_ROOT = File.expand_path('../../..', __dir__).freeze

  # CI clones into a directory of any name, and ChefSpec would otherwise take the
  # repository's parent directory as the cookbook path. A private cookbook path
  # holding only a `uwsgi_fleet` symlink to the repository root always works.
  # ('cookbooks' in its name keeps ChefSpec from guessing a single-cookbook layout.)
  COOKBOOK_PATH = Dir.mktmpdir('uwsgi_fleet_chefspec_cookbooks').freeze
  COOKBOOK_LINK = File.join(COOKBOOK_PATH, 'uwsgi_fleet').freeze
  File.symlink(COOKBOOK_ROOT, COOKBOOK_LINK)
  at_exit { FileUtils.remove_entry(COOKBOOK_PATH) if File.directory?(COOKBOOK_PATH) }

  SUPERVISOR_GLOB = '/etc/supervisor/conf.d/uwsgi_fleet_*.conf'.freeze
  SOMAXCONN_PATH = '/proc/sys/net/core/somaxconn'.freeze

  module_function

  # node['uwsgi_fleet'] exactly as attributes/default.rb sets it, as a plain Hash.
  def attribute_defaults
    @attribute_defaults ||= begin
      node = Chef::Node.new
      node.from_file(File.join(COOKBOOK_ROOT, 'attributes', 'default.rb'))
      node['uwsgi_fleet'].to_hash.freeze
    end
  end

  # A fresh deep copy of the defaults, safe to mutate in one example.
  def default_attrs
    Marshal.load(Marshal.dump(attribute_defaults))
  end
end

# The libraries are plain Ruby modules: load them for the pure unit specs, through
# the same path Chef later requires them by, so they are loaded exactly once.
Dir.glob(File.join(UwsgiFleetSpec::COOKBOOK_LINK, 'libraries', '*.rb')).sort.each { |lib| require lib }

# Stubs for what a converge of the web recipe reads from the machine running the specs.
RSpec.shared_context 'uwsgi_fleet machine stubs' do
  let(:somaxconn) { "4096\n" }
  let(:existing_key) { nil }
  let(:supervisor_confs) { [] }

  before do
    allow(File).to receive(:read).and_call_original
    allow(File).to receive(:read).with(UwsgiFleetSpec::SOMAXCONN_PATH).and_return(somaxconn)
    allow(File).to receive(:exist?).and_call_original
    allow(File).to receive(:exist?).with(UwsgiFleet::StoreApp::DEFAULT_KEY_PATH).and_return(!existing_key.nil?)
    allow(File).to receive(:read).with(UwsgiFleet::StoreApp::DEFAULT_KEY_PATH).and_return("#{existing_key}\n") if existing_key
    allow(Dir).to receive(:glob).and_call_original
    allow(Dir).to receive(:glob).with(UwsgiFleetSpec::SUPERVISOR_GLOB).and_return(supervisor_confs)
  end
end

RSpec.configure do |config|
  config.cookbook_path = UwsgiFleetSpec::COOKBOOK_PATH
  # The spec files live under test/unit/chefspec, not spec/: name the cookbook root.
  config.cookbook_root = UwsgiFleetSpec::COOKBOOK_LINK
  config.platform = 'debian'
  config.version = '12'
  config.log_level = :fatal
  config.expect_with(:rspec) { |c| c.max_formatted_output_length = 2000 }
  config.include UwsgiFleetSpec
end
