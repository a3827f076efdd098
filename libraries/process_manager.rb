#
# Cookbook:: uwsgi_fleet
# Library:: process_manager
#
# How an instance runs, in one place per process manager: its name, its file,
# how it is stopped, the commands uwsgi-fleetctl drives it with (written into
# the manifest), which instances a node already has, and the store app's
# forwarder. The resource a class names (RESOURCE) converges the instances;
# uwsgi-fleetctl (Python) drives them at run time from the manifest's commands.
#
# A class knows only plain values (the fleet's instance prefix, a command's
# arguments): FleetPlan asks it, never the other way round.
# documentation/process_managers.md says what a class provides.
module UwsgiFleet
  module ProcessManager
    # What a fleet or a store app runs under when nothing says otherwise.
    DEFAULT = 'supervisor'.freeze
    # In the manifest's commands, an instance's name (uwsgi-fleetctl fills it in).
    NAME = '{name}'.freeze

    # name => class. A wrapper cookbook may register its own (a library of its
    # own, loaded after this one): validation and the fleet resource read this.
    @registry ||= {}

    def self.register(name, klass)
      @registry[name] = klass
    end

    def self.names
      @registry.keys
    end

    # What a property's description says of them (read when a resource file loads:
    # the shipped ones, and any a wrapper's library registered before).
    def self.described
      names.map { |n| "'#{n}'" }.join(', ') + ' (documentation/process_managers.md)'
    end

    # The class of +name+, or nil for a process manager nobody registered.
    def self.registered(name)
      @registry[name]
    end

    def self.named(name)
      @registry.fetch(name)
    end

    # The process manager of a fleet whose instances are named from +instance_prefix+.
    def self.for(name, instance_prefix:)
      named(name).new(instance_prefix)
    end

    # The default instance prefix of fleet +name+ under +process_manager+
    # (an unknown one, which validation reports, gets the default's).
    def self.instance_prefix(name, process_manager)
      (registered(process_manager) || named(DEFAULT)).instance_prefix(name)
    end

    # What every process manager shares: its instance prefix and the patterns
    # of its instance files.
    class Base
      # Where its templates are (the forwarder's): a wrapper's own class names its cookbook.
      COOKBOOK = 'uwsgi_fleet'.freeze

      attr_reader :prefix

      def initialize(prefix)
        @prefix = prefix
      end

      # Nothing stops it on any node (a class that needs something says what).
      def self.node_error(*)
        nil
      end

      # Unit and program files expand %: a literal % is doubled.
      def self.escape(value)
        value.gsub('%', '%%')
      end

      def escape(value)
        self.class.escape(value)
      end

      # Ports of this fleet's instance files in +dir+ whose names match +format+
      # (a format with {port}).
      def ports_in(dir, format)
        before, after = format.split('{port}', 2).map { |part| Regexp.escape(part) }
        pattern = /\A#{before}(\d+)#{after}\z/
        Dir.glob(::File.join(dir, "*#{::File.extname(format)}")).filter_map { |f| ::File.basename(f)[pattern, 1]&.to_i }.sort
      end

      # How uwsgi-fleetctl and the tests drive an instance (fleet.schema.json's
      # process_manager_commands): the class's COMMANDS.
      def commands
        self.class::COMMANDS
      end

      # The manifest's commands +ops+ for program +name+, as one shell line:
      # what Chef runs is what uwsgi-fleetctl runs.
      def self.shell(name, *ops)
        argvs = ops.flat_map { |op| self::COMMANDS.fetch(op) }
        argvs.map { |argv| UwsgiCommand.shell_words(argv.map { |arg| arg == NAME ? name : arg }) }.join(' && ')
      end
    end

    # One supervisor program per instance: `supervisorctl update NAME` adds or
    # removes one program without touching the others (numprocs would restart all).
    class Supervisor < Base
      CONF_DIR = '/etc/supervisor/conf.d'.freeze
      PACKAGES = %w(supervisor).freeze
      RESOURCE = :uwsgi_fleet_supervisor_instances
      # The daemon that must run before any program does.
      SERVICE = 'supervisor'.freeze
      CTL = 'supervisorctl'.freeze
      COMMANDS = {
        'ready' => [CTL, 'pid'],
        'pid' => [CTL, 'pid', NAME],
        'start' => [[CTL, 'start', NAME]],
        'stop' => [[CTL, 'stop', NAME]],
        'restart' => [[CTL, 'restart', NAME]],
        # update adds, restarts (a changed file) or removes (a deleted file) one program.
        'apply' => [[CTL, 'reread'], [CTL, 'update', NAME]],
      }.freeze
      FORWARDER_TEMPLATE = 'forwarder_program.conf.erb'.freeze

      def self.instance_prefix(fleet)
        "uwsgi_fleet_#{fleet}_"
      end

      def instance_name(port)
        "#{prefix}#{port}"
      end

      def instance_file(port)
        ::File.join(CONF_DIR, "#{instance_name(port)}.conf")
      end

      # Ports of this fleet's program files on the node (supervisor reads all of CONF_DIR).
      def present_ports(conf_dir = CONF_DIR)
        ports_in(conf_dir, instance_file('{port}').delete_prefix("#{CONF_DIR}/"))
      end

      # command= from arguments: split like a shell, then expanded.
      def self.command_line(args)
        escape(UwsgiCommand.shell_words(args))
      end

      # The program's command= for the instance run with +args+.
      def command(args)
        self.class.command_line(args)
      end

      # A store app's forwarder (one long-running program next to the instances).
      def self.forwarder_name(app)
        "uwsgi_fleet_forwarder_#{app}"
      end

      def self.forwarder_file(app)
        ::File.join(CONF_DIR, "#{forwarder_name(app)}.conf")
      end

      # Start or restart the forwarder as its file says (its config and code are read at start).
      def self.forwarder_apply(name)
        shell(name, 'apply', 'restart')
      end

      # Declares, in +dsl+ (a resource's action), what retires forwarder +name+
      # from its file at +path+: the file goes, then supervisor stops the program
      # (TERM: it finishes its batch) and forgets it.
      def self.retire_forwarder(dsl, name, path)
        forget = shell(name, 'apply')
        dsl.file path do
          action :delete
          notifies :run, "execute[retire #{name}]", :immediately
        end
        dsl.execute "retire #{name}" do
          command forget
          action :nothing
        end
      end
    end

    # One systemd template unit per fleet, <prefix>@.service, and one enabled
    # instance <prefix>@<port>.service per port.
    class Systemd < Base
      UNIT_DIR = '/etc/systemd/system'.freeze
      WANTS_DIR = ::File.join(UNIT_DIR, 'multi-user.target.wants').freeze
      PACKAGES = [].freeze
      RESOURCE = :uwsgi_fleet_systemd_instances
      # systemd is init: nothing to start first.
      SERVICE = nil
      CTL = 'systemctl'.freeze
      COMMANDS = {
        # systemd answers whenever the node is up.
        'ready' => nil,
        'pid' => [CTL, 'show', '--property=MainPID', '--value', NAME],
        'start' => [[CTL, 'start', NAME]],
        'stop' => [[CTL, 'stop', NAME]],
        'restart' => [[CTL, 'restart', NAME]],
        # Chef's service resources enable, start and stop the instances.
        'apply' => nil,
      }.freeze
      FORWARDER_TEMPLATE = 'forwarder.service.erb'.freeze
      # The unit file stands for every port: the arguments are built with this
      # token for the port, then it becomes systemd's %i. No property may hold
      # a newline, so the token cannot come from the operator.
      PORT_TOKEN = "\nport\n".freeze

      def self.instance_prefix(fleet)
        "uwsgi-fleet-#{fleet}"
      end

      # Only where systemd is init (PID 1).
      def self.node_error(systemd:)
        'must be supervisor on this node: systemd is not its init (PID 1)' unless systemd
      end

      def template_name
        "#{prefix}@.service"
      end

      def template_file
        ::File.join(UNIT_DIR, template_name)
      end

      def instance_name(port)
        "#{prefix}@#{port}.service"
      end

      # Instances share the template unit.
      def instance_file(_port)
        template_file
      end

      # Ports of this fleet's enabled instances on the node.
      def present_ports(wants_dir = WANTS_DIR)
        ports_in(wants_dir, instance_name('{port}'))
      end

      # One ExecStart= argument: quoted, with %, $, \ and " escaped (ExecStart=
      # also expands $VARIABLES and unquotes "..." itself).
      def self.quote(arg)
        %("#{escape(arg).gsub('$', '$$').gsub('\\', '\\\\\\\\').gsub('"', '\\"')}")
      end

      # ExecStart= from arguments.
      def self.command_line(args)
        args.map { |arg| quote(arg) }.join(' ')
      end

      # The template's ExecStart=, from the arguments of the instance on PORT_TOKEN.
      def command(args)
        self.class.command_line(args).gsub(PORT_TOKEN, '%i')
      end

      # Paths with the port in them, for the unit file (%i, escaped like the rest).
      def per_port(path_with_token)
        escape(path_with_token).gsub(escape(PORT_TOKEN), '%i')
      end

      def self.forwarder_name(app)
        "uwsgi-fleet-forwarder-#{app}.service"
      end

      def self.forwarder_file(app)
        ::File.join(UNIT_DIR, forwarder_name(app))
      end

      def self.forwarder_apply(name)
        "#{CTL} daemon-reload && #{CTL} enable #{name} && #{CTL} restart #{name}"
      end

      # Declares, in +dsl+, what retires forwarder +name+: stopped (TERM: it
      # finishes its batch) and disabled while its unit file is there, then the file goes.
      def self.retire_forwarder(dsl, name, path)
        dsl.service(name) { action %i(stop disable) }
        dsl.file(path) { action :delete }
      end
    end

    register 'supervisor', Supervisor
    register 'systemd', Systemd
  end
end
