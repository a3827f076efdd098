require_relative '../spec_helper'
require 'shellwords'

describe 'uwsgi_fleet_supervisor_instances' do
  step_into :uwsgi_fleet_supervisor_instances
  platform 'debian', '12'
  include_context 'uwsgi_fleet node'

  fleetctl = '/usr/local/sbin/uwsgi-fleetctl --manifest /etc/uwsgi_fleet/api/fleet.json'
  conf = ->(port) { "/etc/supervisor/conf.d/uwsgi_fleet_api_#{port}.conf" }

  context 'action :start' do
    recipe do
      uwsgi_fleet_supervisor_instances 'api' do
        plan UwsgiFleetSpec.fleet_plan('api', processes: 3, base_port: 9100, user: 'api_fleet', harakiri: 30,
                                              chdir: '/opt/100%app', env: { 'FORMAT' => '%(asctime)s', 'HOME_DIR' => '$HOME' })
      end
    end

    it { is_expected.to enable_service('supervisor') }
    it { is_expected.to start_service('supervisor') }

    it 'waits, at the end of the action, until every instance serves (supervisord starts them in the background)' do
      expect(chef_run.service('supervisor')).to notify('execute[wait until the instances serve]').to(:run).delayed
      expect(chef_run.execute('wait until the instances serve')).to do_nothing
      expect(chef_run.execute('wait until the instances serve').command).to eq("#{fleetctl} wait 9100 9101 9102")
    end

    it 'writes one program file per port, and no more' do
      [9100, 9101, 9102].each do |port|
        expect(chef_run).to create_template(conf.call(port)).with(cookbook: 'uwsgi_fleet', source: 'supervisor_program.conf.erb', mode: '0644')
      end
      expect(chef_run.find_resources(:template).map(&:name)).to eq([9100, 9101, 9102].map(&conf))
    end

    it 'applies each program right after its file changes, so a change rolls one instance at a time' do
      [9100, 9101, 9102].each do |port|
        expect(chef_run.template(conf.call(port))).to notify("execute[apply #{port}]").to(:run).immediately
        expect(chef_run.execute("apply #{port}")).to do_nothing
        expect(chef_run.execute("apply #{port}").command).to eq("#{fleetctl} apply #{port}")
      end
    end

    it 'starts supervisor before writing the programs' do
      expect(position(:service, 'supervisor')).to be < position(:template, conf.call(9100))
    end

    describe 'the program file' do
      let(:content) { rendered(conf.call(9101)) }

      it 'names the program after its port' do
        expect(content).to include("[program:uwsgi_fleet_api_9101]\n")
      end

      it 'stops with HUP (a graceful stop with --exit-on-reload), waiting harakiri + 5 s, for the whole group' do
        expect(content).to match(/^stopsignal=HUP$/).and match(/^stopwaitsecs=35$/).and match(/^killasgroup=true$/)
      end

      it 'runs as the fleet user, restarts it and logs to its own file' do
        expect(content).to match(/^user=api_fleet$/).and match(/^autorestart=true$/)
          .and match(%r{^stdout_logfile=/var/log/uwsgi_fleet/api/9101\.log$})
      end

      it 'doubles % in directory=, which supervisor expands' do
        expect(content[/^directory=(.*)$/, 1]).to eq('/opt/100%%app')
      end

      it "gives uWSGI exactly the instance's arguments once supervisor has expanded %% and split command=" do
        command = content[/^command=(.*)$/, 1]
        expect(command.scan(/%+/).map(&:size)).to all(be_even)
        plan = chef_run.find_resource(:uwsgi_fleet_supervisor_instances, 'api').plan
        expect(Shellwords.split(command.gsub('%%', '%'))).to eq(plan.uwsgi_args(9101))
      end
    end

    it 'retires nothing at :start' do
      expect(chef_run.find_resources(:file)).to be_empty
    end
  end

  context 'action :prune, with program files of other ports, fleets and 0.1.0 on the node' do
    let(:supervisor_confs) do
      [conf.call(9100), conf.call(9105), conf.call(9101), conf.call(9103), '/etc/supervisor/conf.d/uwsgi_fleet_store_9104.conf',
       '/etc/supervisor/conf.d/uwsgi_fleet_9106.conf']
    end

    recipe do
      uwsgi_fleet_supervisor_instances 'api' do
        plan UwsgiFleetSpec.fleet_plan('api', processes: 2, base_port: 9100)
        action :prune
      end
    end

    it "deletes the program file of each of this fleet's ports no longer wanted, and only those" do
      expect(chef_run.find_resources(:file).map(&:name)).to eq([conf.call(9103), conf.call(9105)])
      [9103, 9105].each { |port| expect(chef_run).to delete_file(conf.call(port)) }
    end

    it 'retires each one (supervisor stops it with HUP and forgets it) right after its file goes' do
      [9103, 9105].each do |port|
        expect(chef_run.file(conf.call(port))).to notify("execute[retire #{port}]").to(:run).immediately
        expect(chef_run.execute("retire #{port}")).to do_nothing
        expect(chef_run.execute("retire #{port}").command).to eq("#{fleetctl} apply #{port}")
      end
    end

    it 'neither writes programs nor touches supervisor' do
      expect(chef_run.find_resources(:template)).to be_empty
      expect(chef_run.find_resources(:service)).to be_empty
    end
  end

  context 'action :stop' do
    let(:supervisor_confs) { [conf.call(9100), conf.call(9101), '/etc/supervisor/conf.d/uwsgi_fleet_store_9000.conf'] }

    recipe do
      uwsgi_fleet_supervisor_instances 'api' do
        plan UwsgiFleetSpec.fleet_plan('api', processes: 5, base_port: 9100)
        action :stop
      end
    end

    it "retires every program of this fleet on the node, whatever the plan's ports" do
      expect(chef_run.find_resources(:file).map(&:name)).to eq([conf.call(9100), conf.call(9101)])
      expect(chef_run.file(conf.call(9100))).to notify('execute[retire 9100]').to(:run).immediately
    end
  end

  context 'with another uwsgi-fleetctl' do
    recipe do
      uwsgi_fleet_supervisor_instances 'api' do
        plan UwsgiFleetSpec.fleet_plan('api', base_port: 9100)
        fleetctl '/opt/bin/fleetctl'
      end
    end

    it 'runs it' do
      expect(chef_run.execute('apply 9100').command).to eq('/opt/bin/fleetctl --manifest /etc/uwsgi_fleet/api/fleet.json apply 9100')
    end
  end

  context 'without a plan' do
    recipe do
      uwsgi_fleet_supervisor_instances 'api'
    end

    it 'fails: the plan is required' do
      expect { chef_run }.to raise_error(Chef::Exceptions::ValidationFailed, /plan is a required property/)
    end
  end

  describe 'the resource' do
    recipe do
      uwsgi_fleet_supervisor_instances 'api' do
        plan UwsgiFleetSpec.fleet_plan('api')
        action :nothing
      end
    end

    it 'describes itself and every property' do
      klass = resource_class(:uwsgi_fleet_supervisor_instances)
      expect(klass.description).to match(/supervisor/)
      expect(own_properties(klass).keys).to match_array(%i(plan fleetctl))
      own_properties(klass).each_value { |property| expect(property.description).to be_a(String).and(match(/\w{3}/)) }
    end

    it 'has the actions :start (the default), :prune and :stop' do
      klass = resource_class(:uwsgi_fleet_supervisor_instances)
      expect(klass.default_action).to eq([:start])
      expect(klass.allowed_actions).to include(:start, :prune, :stop)
    end
  end
end
