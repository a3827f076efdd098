#
# Cookbook:: uwsgi_fleet
# Library:: process_manager
#
# How an instance runs, in one place per process manager: its name, its file,
# how it is stopped, and which instances a node already has. The resources
# uwsgi_fleet_supervisor_instances and uwsgi_fleet_systemd_instances converge
# them; uwsgi-fleetctl (Python) drives them at run time from the manifest.
module UwsgiFleet
  module ProcessManager
    def self.for(plan)
      named(plan[:process_manager]).new(plan)
    end

    def self.named(process_manager)
      { 'supervisor' => Supervisor, 'systemd' => Systemd }.fetch(process_manager)
    end

    # One supervisor program per instance: `supervisorctl update NAME` adds or
    # removes one program without touching the others (numprocs would restart all).
    class Supervisor
      CONF_DIR = '/etc/supervisor/conf.d'.freeze
      PACKAGES = %w(supervisor).freeze
      RESOURCE = :uwsgi_fleet_supervisor_instances

      attr_reader :plan

      def initialize(plan)
        @plan = plan
      end

      def instance_name(port)
        "#{plan[:instance_prefix]}#{port}"
      end

      def instance_file(port)
        ::File.join(CONF_DIR, "#{instance_name(port)}.conf")
      end

      # Ports of this fleet's program files on the node (supervisor reads all of CONF_DIR).
      def present_ports(conf_dir = CONF_DIR)
        pattern = /\A#{Regexp.escape(plan[:instance_prefix])}(\d+)\.conf\z/
        Dir.glob(::File.join(conf_dir, '*.conf')).filter_map { |f| ::File.basename(f)[pattern, 1]&.to_i }.sort
      end

      # Supervisor expands %(name)s in command= and directory=: a literal % is doubled.
      def self.escape(value)
        value.gsub('%', '%%')
      end

      # command= from arguments: split like a shell, then expanded.
      def self.command_line(args)
        escape(UwsgiCommand.shell_words(args))
      end

      def escape(value)
        self.class.escape(value)
      end

      def command(port)
        self.class.command_line(plan.uwsgi_args(port))
      end

      # A store app's forwarder (one long-running program next to the instances).
      def self.forwarder_name(app)
        "uwsgi_fleet_forwarder_#{app}"
      end

      def self.forwarder_file(app)
        ::File.join(CONF_DIR, "#{forwarder_name(app)}.conf")
      end
    end

    # One systemd template unit per fleet, <prefix>@.service, and one enabled
    # instance <prefix>@<port>.service per port.
    class Systemd
      UNIT_DIR = '/etc/systemd/system'.freeze
      WANTS_DIR = ::File.join(UNIT_DIR, 'multi-user.target.wants').freeze
      PACKAGES = [].freeze
      RESOURCE = :uwsgi_fleet_systemd_instances
      # The unit file stands for every port: the arguments are built with this
      # token for the port, then it becomes systemd's %i. No property may hold
      # a newline, so the token cannot come from the operator.
      PORT_TOKEN = "\nport\n".freeze

      attr_reader :plan

      def initialize(plan)
        @plan = plan
      end

      def template_name
        "#{plan[:instance_prefix]}@.service"
      end

      def template_file
        ::File.join(UNIT_DIR, template_name)
      end

      def instance_name(port)
        "#{plan[:instance_prefix]}@#{port}.service"
      end

      # Instances share the template unit.
      def instance_file(_port)
        template_file
      end

      # Ports of this fleet's enabled instances on the node.
      def present_ports(wants_dir = WANTS_DIR)
        pattern = /\A#{Regexp.escape(plan[:instance_prefix])}@(\d+)\.service\z/
        Dir.glob(::File.join(wants_dir, '*.service')).filter_map { |f| ::File.basename(f)[pattern, 1]&.to_i }.sort
      end

      # Unit file settings expand %specifiers: a literal % is doubled. ExecStart=
      # also expands $VARIABLES and unquotes "..." itself (see quote).
      def self.escape(value)
        value.gsub('%', '%%')
      end

      # One ExecStart= argument: quoted, with %, $, \ and " escaped.
      def self.quote(arg)
        %("#{escape(arg).gsub('$', '$$').gsub('\\', '\\\\\\\\').gsub('"', '\\"')}")
      end

      # ExecStart= from arguments.
      def self.command_line(args)
        args.map { |arg| quote(arg) }.join(' ')
      end

      def escape(value)
        self.class.escape(value)
      end

      def self.forwarder_name(app)
        "uwsgi-fleet-forwarder-#{app}.service"
      end

      def self.forwarder_file(app)
        ::File.join(UNIT_DIR, forwarder_name(app))
      end

      def command
        self.class.command_line(plan.uwsgi_args(PORT_TOKEN)).gsub(PORT_TOKEN, '%i')
      end

      # Paths with the port in them, for the unit file (%i, escaped like the rest).
      def per_port(path_with_token)
        escape(path_with_token).gsub(escape(PORT_TOKEN), '%i')
      end
    end
  end
end
