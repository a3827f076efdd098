#
# Cookbook:: uwsgi_fleet
# Resource:: uwsgi_fleet_supervisor_instances
#
# A fleet's instances as supervisor programs, one file each
# (UwsgiFleet::ProcessManager::Supervisor). A changed file is applied at once,
# so a change rolls through the instances one at a time, each serving again
# before the next; a resize touches only the instances added or removed.
unified_mode true
provides :uwsgi_fleet_supervisor_instances
default_action :start

use 'partial/_instances'

description "A uwsgi_fleet's instances run by supervisor (used by uwsgi_fleet; process_manager 'supervisor')"

action_class do
  # Its program file goes, then supervisor stops it gracefully (HUP: running
  # requests finish) and forgets it.
  def retire(port)
    file pm.instance_file(port) do
      action :delete
      notifies :run, "execute[retire #{port}]", :immediately
    end
    execute "retire #{port}" do
      command fleetctl('apply', port)
      action :nothing
    end
  end
end

action :start do
  service pm.class::SERVICE do
    supports status: true
    action [:enable, :start]
    # supervisord starts its programs in the background; the action ends once they serve.
    notifies :run, 'execute[wait until the instances serve]', :delayed
  end
  execute 'wait until the instances serve' do
    command fleetctl('wait', *plan.ports)
    action :nothing
  end

  plan.ports.each do |port|
    template pm.instance_file(port) do
      cookbook 'uwsgi_fleet'
      source 'supervisor_program.conf.erb'
      mode '0644'
      variables(plan: plan, name: pm.instance_name(port), command: pm.command(plan.uwsgi_args(port)),
                directory: pm.escape(plan[:chdir]), log: pm.escape(plan.log(port)))
      notifies :run, "execute[apply #{port}]", :immediately
    end
    execute "apply #{port}" do
      command fleetctl('apply', port)
      action :nothing
    end
  end
end

action :prune do
  (pm.present_ports - plan.ports).each { |port| retire(port) }
end

action :stop do
  pm.present_ports.each { |port| retire(port) }
end
