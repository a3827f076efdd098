#
# Cookbook:: uwsgi_fleet
# Library:: legacy_manifest
#
# The one reader of manifests written before manifest_version 1: 0.1.0's
# (no process_manager, no name, program_prefix) and the unversioned ones of
# the releases after it. Only Chef reads them, to delete such a fleet or to
# keep its process manager; it rewrites them as version 1 before anything
# runs uwsgi-fleetctl, which refuses them.
module UwsgiFleet
  module LegacyManifest
    # What 0.1.0's manifest left unsaid: its one fleet ran under supervisor as
    # programs uwsgi_fleet_<port> (the default recipe keeps those names).
    DEFAULTS_0_1_0 = { 'process_manager' => 'supervisor', 'program_prefix' => 'uwsgi_fleet_' }.freeze
    # Manifest keys that are the uwsgi_fleet properties of the same name.
    PROPERTIES = %w(bind_address threads listen_backlog burst_queue_ms sustained_queue_ms user log_dir upstream
                    site_file listen listen_address server_name pythonpath max_conns).freeze

    module_function

    def current?(manifest)
      manifest['manifest_version'] == FleetPlan::MANIFEST_VERSION
    end

    # 0.1.0's: its FIFOs, logs and nginx config were in shared places.
    def v0_1_0?(manifest)
      !manifest.key?('process_manager')
    end

    # What the fleet on the node runs under.
    def process_manager(manifest)
      manifest.fetch('process_manager', DEFAULTS_0_1_0['process_manager'])
    end

    # The fleet's properties as the node has it (+manifest+, of any version):
    # the manifest's values over +props+ (the resource's, for what an old
    # manifest lacks). 0.1.0's shared places are never taken: its own
    # defaults stand in (a shared parent is never deleted).
    def properties(manifest, props)
      process_manager = process_manager(manifest)
      defaults = Fleet.named_defaults(props[:name], process_manager)
      ports = manifest['ports']
      from_manifest = manifest.slice(*PROPERTIES).transform_keys(&:to_sym).compact
      config = manifest['store_app_config']
      props.merge(defaults.slice(:site_file, :log_dir)).merge(from_manifest).merge(
        processes: ports.size, base_port: ports.first || 1024, process_manager: process_manager,
        instance_prefix: manifest['instance_prefix'] || manifest.fetch('program_prefix', DEFAULTS_0_1_0['program_prefix']),
        fifo_dir: v0_1_0?(manifest) ? defaults[:fifo_dir] : manifest['fifo_dir'],
        env: config ? { 'STORE_APP_CONFIG' => config } : {}
      )
    end
  end
end
