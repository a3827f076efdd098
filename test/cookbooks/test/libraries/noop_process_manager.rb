#
# Cookbook:: test
# Library:: noop_process_manager
#
# A third process manager, for ChefSpec only (the test cookbook is not
# shipped): it runs nothing. It shows what adding one takes
# (documentation/process_managers.md): this class, registered, and the
# resource it names (resources/noop_instances.rb).
module UwsgiFleetTest
  class NoopProcessManager < UwsgiFleet::ProcessManager::Base
    PACKAGES = [].freeze
    RESOURCE = :uwsgi_fleet_test_noop_instances
    SERVICE = nil
    # Nothing runs, so there is never a pid; every step is empty.
    COMMANDS = { 'ready' => nil, 'pid' => %w(true), 'start' => [], 'stop' => [], 'restart' => [], 'apply' => nil }.freeze
    FORWARDER_TEMPLATE = nil

    def self.instance_prefix(fleet)
      "noop-#{fleet}-"
    end

    def self.command_line(args)
      UwsgiFleet::UwsgiCommand.shell_words(args)
    end

    def self.forwarder_name(app)
      "noop-forwarder-#{app}"
    end

    def self.forwarder_file(app)
      ::File.join('/nonexistent', forwarder_name(app))
    end

    def self.forwarder_apply(_name)
      'true'
    end

    def self.retire_forwarder(_dsl, _name, _path); end

    def instance_name(port)
      "#{prefix}#{port}"
    end

    def instance_file(port)
      ::File.join('/nonexistent', instance_name(port))
    end

    def present_ports
      []
    end

    def command(args)
      self.class.command_line(args)
    end
  end
end

UwsgiFleet::ProcessManager.register('noop', UwsgiFleetTest::NoopProcessManager)
