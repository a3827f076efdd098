# What every process-manager implementation of a fleet's instances takes.
property :plan, UwsgiFleet::FleetPlan,
         required: true,
         description: 'The fleet (UwsgiFleet::FleetPlan) whose instances this converges'

property :fleetctl, String,
         default: UwsgiFleet::Tool::FLEETCTL,
         description: 'Path of uwsgi-fleetctl, which applies, waits for and retires instances'

action_class do
  def plan
    new_resource.plan
  end

  def pm
    plan.process_manager
  end

  # uwsgi-fleetctl for this fleet (the manifest names everything).
  def fleetctl(*args)
    [new_resource.fleetctl, '--manifest', plan.manifest_path, *args].join(' ')
  end
end
