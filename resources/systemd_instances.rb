#
# Cookbook:: uwsgi_fleet
# Resource:: uwsgi_fleet_systemd_instances
#
# A fleet's instances as systemd units: one template unit <prefix>@.service
# and one enabled instance <prefix>@<port>.service per port
# (UwsgiFleet::ProcessManager::Systemd). A changed template restarts the
# running instances one at a time, each serving again before the next; a
# resize starts or stops only the instances added or removed.
unified_mode true
provides :uwsgi_fleet_systemd_instances
default_action :start

use 'partial/_instances'

description "A uwsgi_fleet's instances run by systemd (used by uwsgi_fleet; process_manager 'systemd')"

action_class do
  # KillSignal=SIGHUP: systemctl stop lets running requests finish, and waits.
  def retire(port)
    service pm.instance_name(port) do
      action [:stop, :disable]
    end
  end
end

action :start do
  template pm.template_file do
    cookbook 'uwsgi_fleet'
    source 'systemd_instance.service.erb'
    mode '0644'
    variables(plan: plan, command: pm.command(plan.uwsgi_args(pm.class::PORT_TOKEN)), directory: pm.escape(plan[:chdir]),
              log: pm.per_port(plan.log(pm.class::PORT_TOKEN)))
    notifies :run, 'execute[systemctl daemon-reload]', :immediately
    notifies :run, 'execute[restart the running instances one at a time]', :immediately
  end
  execute 'systemctl daemon-reload' do
    action :nothing
  end
  execute 'restart the running instances one at a time' do
    command fleetctl('restart', *plan.ports)
    action :nothing
  end

  plan.ports.each do |port|
    service pm.instance_name(port) do
      action [:enable, :start]
      notifies :run, "execute[wait until #{port} serves]", :immediately
    end
    execute "wait until #{port} serves" do
      command fleetctl('wait', port)
      action :nothing
    end
  end
end

action :prune do
  (pm.present_ports - plan.ports).each { |port| retire(port) }
end

action :stop do
  pm.present_ports.each { |port| retire(port) }
  file pm.template_file do
    action :delete
    notifies :run, 'execute[systemctl daemon-reload]', :immediately
  end
  execute 'systemctl daemon-reload' do
    action :nothing
  end
end
