require_relative '../spec_helper'
require 'shellwords'

describe UwsgiFleet::UwsgiCommand do
  let(:web) { default_attrs['web'] }
  let(:fifo) { '/var/lib/uwsgi_fleet/9001.fifo' }
  let(:extra_env) { {} }
  let(:command) { described_class.for_instance(web, port: 9001, fifo: fifo, env: extra_env) }
  # The command as a shell (and supervisor, which splits like a POSIX shell) reads it.
  let(:args) { Shellwords.split(command) }

  # Every value given to +flag+, in order.
  def values_of(flag)
    args.each_index.select { |i| args[i] == flag }.map { |i| args[i + 1] }
  end

  describe '.for_instance' do
    it 'runs /usr/bin/uwsgi with the python3 plugin' do
      expect(args.first).to eq('/usr/bin/uwsgi')
      expect(values_of('--plugin')).to eq(['python3'])
    end

    it 'runs a master and exactly one worker process' do
      expect(args).to include('--master')
      expect(values_of('--processes')).to eq(['1'])
    end

    it 'runs the configured number of threads' do
      web['threads'] = 16
      expect(values_of('--threads')).to eq(['16'])
    end

    it 'keeps one worker process whatever web.processes says (that is the instance count)' do
      web['processes'] = 8
      expect(values_of('--processes')).to eq(['1'])
    end

    it 'binds the socket to bind_address and the instance port' do
      expect(values_of('--socket')).to eq(['127.0.0.1:9001'])
    end

    it 'binds an IPv6 bind_address in brackets' do
      web['bind_address'] = '::1'
      expect(values_of('--socket')).to eq(['[::1]:9001'])
    end

    it 'has no http socket: only nginx faces clients' do
      expect(args.grep(/\A--http/)).to be_empty
    end

    it 'sets listen backlog, buffer size and harakiri from the attributes' do
      web['listen_backlog'] = 2048
      web['buffer_size'] = 32_768
      web['harakiri'] = 30
      expect(values_of('--listen')).to eq(['2048'])
      expect(values_of('--buffer-size')).to eq(['32768'])
      expect(values_of('--harakiri')).to eq(['30'])
    end

    it 'loads the app in the worker (--lazy-apps) and requires it to load' do
      expect(args).to include('--lazy-apps', '--need-app')
    end

    it 'stops on TERM and turns a HUP reload into a graceful exit' do
      expect(args).to include('--die-on-term', '--exit-on-reload')
    end

    it 'opens the master FIFO it is given' do
      expect(values_of('--master-fifo')).to eq([fifo])
    end

    it 'logs only 4xx and 5xx requests' do
      expect(args).to include('--disable-logging', '--log-4xx', '--log-5xx')
    end

    it 'loads the module by default' do
      expect(values_of('--module')).to eq(['store_app.wsgi:application'])
      expect(args).not_to include('--wsgi-file')
    end

    it 'loads a wsgi_file instead of a module when one is set' do
      web['app']['module'] = nil
      web['app']['wsgi_file'] = '/srv/app/wsgi.py'
      expect(values_of('--wsgi-file')).to eq(['/srv/app/wsgi.py'])
      expect(args).not_to include('--module')
    end

    it 'prefers wsgi_file when the module is an empty string' do
      web['app']['module'] = ''
      web['app']['wsgi_file'] = '/srv/app/wsgi.py'
      expect(values_of('--wsgi-file')).to eq(['/srv/app/wsgi.py'])
      expect(args).not_to include('--module')
    end

    it 'changes into chdir and adds each pythonpath entry in order' do
      web['app']['chdir'] = '/srv/app'
      web['app']['pythonpath'] = ['/srv/app', '/srv/lib']
      expect(values_of('--chdir')).to eq(['/srv/app'])
      expect(values_of('--pythonpath')).to eq(['/srv/app', '/srv/lib'])
    end

    it 'has no --virtualenv by default' do
      expect(args).not_to include('--virtualenv')
    end

    it 'runs in the virtualenv when one is set' do
      web['app']['virtualenv'] = '/srv/venv'
      expect(values_of('--virtualenv')).to eq(['/srv/venv'])
    end

    it 'passes no environment by default' do
      expect(values_of('--env')).to eq([])
    end

    context 'with app env and extra env' do
      let(:extra_env) { { 'STORE_APP_INSTANCE' => '9001', 'B_SHARED' => 'from-recipe' } }

      before do
        web['app']['env'] = { 'DJANGO_SETTINGS_MODULE' => 'app.settings', 'B_SHARED' => 'from-node', 'WORKERS' => 3 }
      end

      it 'passes every variable as NAME=value, sorted by name, extra env winning' do
        expect(values_of('--env')).to eq(
          %w(B_SHARED=from-recipe DJANGO_SETTINGS_MODULE=app.settings STORE_APP_INSTANCE=9001 WORKERS=3)
        )
      end
    end

    context 'with env values that need quoting' do
      before do
        web['app']['env'] = { 'GREETING' => %(it's a "quoted" $HOME; `x` & y), 'EMPTY' => '', 'SPACED' => 'a  b' }
      end

      it 'quotes them so the shell-style split gives back exactly the value' do
        expect(values_of('--env')).to eq(['EMPTY=', 'GREETING=it\'s a "quoted" $HOME; `x` & y', 'SPACED=a  b'])
      end

      it 'separates arguments only by unescaped spaces' do
        expect(command.split(/(?<!\\) /).size).to eq(args.size)
      end
    end

    it 'keeps a single % (doubling it is for_supervisor\'s job)' do
      web['app']['env'] = { 'FORMAT' => '%(asctime)s 100%' }
      expect(values_of('--env')).to eq(['FORMAT=%(asctime)s 100%'])
    end
  end

  describe '.app_args' do
    it 'is chdir, pythonpath, virtualenv, then the app source' do
      app = { 'chdir' => '/srv/app', 'pythonpath' => ['/srv/lib'], 'virtualenv' => '/srv/venv', 'module' => 'app:application', 'wsgi_file' => nil }
      expect(described_class.app_args(app)).to eq(
        ['--chdir', '/srv/app', '--pythonpath', '/srv/lib', '--virtualenv', '/srv/venv', '--module', 'app:application']
      )
    end

    it 'accepts a single pythonpath string' do
      app = { 'chdir' => '/srv/app', 'pythonpath' => '/srv/lib', 'module' => 'app' }
      expect(described_class.app_args(app)).to eq(['--chdir', '/srv/app', '--pythonpath', '/srv/lib', '--module', 'app'])
    end
  end

  describe '.for_supervisor' do
    it 'doubles every % so supervisor does not expand it' do
      expect(described_class.for_supervisor('a % b %(ENV_HOME)s %%')).to eq('a %% b %%(ENV_HOME)s %%%%')
    end

    it 'leaves a command without % unchanged' do
      expect(described_class.for_supervisor(command)).to eq(command)
    end

    context 'with a % in an env value' do
      before { web['app']['env'] = { 'FORMAT' => '%(asctime)s 100%' } }

      let(:for_supervisor) { described_class.for_supervisor(command) }

      it 'leaves no single % for supervisor to expand' do
        expect(for_supervisor.scan(/%+/).map(&:size)).to all(be_even)
      end

      it 'gives back the value once supervisor has expanded %% and split the command' do
        expanded = for_supervisor.gsub('%%', '%')
        expect(Shellwords.split(expanded)).to include('FORMAT=%(asctime)s 100%')
      end
    end
  end
end
