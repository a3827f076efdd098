#
# Cookbook:: test
# Resource:: uwsgi_fleet_test_noop_instances
#
# The instances of a fleet under the no-op process manager
# (libraries/noop_process_manager.rb): nothing runs, nothing is written.
unified_mode true
provides :uwsgi_fleet_test_noop_instances
default_action :start

property :plan, UwsgiFleet::FleetPlan, required: true
property :fleetctl, String, default: UwsgiFleet::Tool::FLEETCTL

action :start do
  log "#{new_resource.plan.name}: #{new_resource.plan.ports.size} instances would start" do
    level :info
  end
end

action :prune do
end

action :stop do
end
