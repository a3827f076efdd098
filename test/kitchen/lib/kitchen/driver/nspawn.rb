# frozen_string_literal: true

require 'json'
require 'kitchen'
require 'shellwords'

module Kitchen
  module Driver
    # Creates and destroys fresh Debian nodes booted with systemd under
    # systemd-nspawn, through test/nodes/nodectl.py (which owns the images, the
    # network and the cleanup). Kitchen then reaches a node like any machine:
    # the ssh transport, as root, with the nodes' key.
    #
    #   driver:
    #     name: nspawn
    #     release: debian-13   # default: the platform's name (debian-12, debian-13)
    #     init: systemd        # or 'none': no init system, as on this host
    #     seed:                # optional: converge this first, at create time,
    #       run_list: [...]    # so the suite starts from that state (e.g. the
    #       attributes: {...}  # default suite's) instead of a pristine node;
    #       cookbook: DIR      # with this uwsgi_fleet (default: the repository),
    #       cookbooks: [DIR]   # these cookbooks beside it,
    #       before: COMMAND    # after running this on the node first.
    #                          # The node then holds the seed's end time
    #                          # (epoch seconds) in SEEDED_AT, and a copy of
    #                          # the fleets' manifests in SEEDED_FLEETS.
    class Nspawn < Kitchen::Driver::Base
      plugin_version '0.1.0'
      kitchen_driver_api_version 2

      NODECTL = File.expand_path('../../../../nodes/nodectl.py', __dir__)
      SEEDED_AT = '/var/lib/kitchen-seed/seeded_at'
      SEEDED_FLEETS = '/var/lib/kitchen-seed/uwsgi_fleet'

      default_config :python, '/usr/bin/python3'
      default_config :init, 'systemd'
      default_config(:release) { |driver| driver.instance.platform.name }
      default_config :seed, nil

      def create(state)
        return if state[:hostname]
        node = JSON.parse(nodectl('create', instance.name, '--init', config[:init], '--release', config[:release]).lines.last)
        state[:hostname] = node['address']
        state[:username] = 'root'
        state[:ssh_key] = node['ssh_key']
        state[:node_init] = node['init']
        info("Node #{instance.name} is up at #{node['address']} (#{node['release']}, init: #{node['init']})")
        seed(state) if config[:seed]
      end

      def destroy(state)
        # Always: a half-created node (no hostname yet) must not be left behind either.
        nodectl('destroy', instance.name)
        %i(hostname username ssh_key node_init).each { |key| state.delete(key) }
      end

      private

      def seed(state)
        seed = config[:seed]
        root = config[:kitchen_root]
        info("Seeding #{instance.name}: #{Array(seed[:run_list]).join(',')} with #{seed[:attributes].to_h.to_json}")
        nodectl('ssh', instance.name, seed[:before]) if seed[:before]
        args = ['--run-list', Array(seed[:run_list]).join(','), '--json-attributes', JSON.generate(seed[:attributes].to_h)]
        args += ['--cookbook', File.expand_path(seed[:cookbook], root)] if seed[:cookbook]
        Array(seed[:cookbooks]).each { |dir| args += ['--extra-cookbook', File.expand_path(dir, root)] }
        nodectl('converge', instance.name, *args)
        nodectl('ssh', instance.name, "mkdir -p #{File.dirname(SEEDED_AT)} && date +%s > #{SEEDED_AT} && " \
                                      "(test ! -d /etc/uwsgi_fleet || cp -a /etc/uwsgi_fleet #{SEEDED_FLEETS})")
        state[:seeded] = true
      end

      # Kitchen::ShellOut#run_command (streams the output into Kitchen's log), not Chef's old helper.
      def nodectl(*args)
        run_command(Shellwords.join([config[:python], NODECTL, *args])) # rubocop:disable Chef/Deprecations/UsesRunCommandHelper
      end
    end
  end
end
