require_relative '../spec_helper'
require 'shellwords'

describe UwsgiFleet::UwsgiCommand do
  let(:props) do
    { threads: 4, bind_address: '127.0.0.1', listen_backlog: 1024, buffer_size: 65_535, harakiri: 60,
      app_module: 'store_app.wsgi:application', wsgi_file: nil, chdir: '/opt/uwsgi_fleet', pythonpath: ['/opt/uwsgi_fleet'],
      virtualenv: nil }
  end
  let(:fifo) { '/var/lib/uwsgi_fleet/store/9001.fifo' }
  let(:env) { {} }
  let(:args) { described_class.args(props, port: 9001, fifo: fifo, env: env) }

  # Every value given to +flag+, in order.
  def values_of(flag)
    args.each_index.select { |i| args[i] == flag }.map { |i| args[i + 1] }
  end

  describe '.args' do
    it 'runs /usr/bin/uwsgi with the python3 plugin' do
      expect(args.first).to eq('/usr/bin/uwsgi')
      expect(values_of('--plugin')).to eq(['python3'])
    end

    it 'runs a master and exactly one worker process, with the configured threads' do
      props[:threads] = 16
      expect(args).to include('--master')
      expect(values_of('--processes')).to eq(['1'])
      expect(values_of('--threads')).to eq(['16'])
    end

    it 'binds the socket to bind_address and the instance port' do
      expect(values_of('--socket')).to eq(['127.0.0.1:9001'])
    end

    it 'binds an IPv6 bind_address in brackets' do
      props[:bind_address] = '::1'
      expect(values_of('--socket')).to eq(['[::1]:9001'])
    end

    it 'has no http socket: only nginx faces clients' do
      expect(args.grep(/\A--http/)).to be_empty
    end

    it 'sets listen backlog, buffer size and harakiri from the properties' do
      props.merge!(listen_backlog: 2048, buffer_size: 32_768, harakiri: 30)
      expect([values_of('--listen'), values_of('--buffer-size'), values_of('--harakiri')]).to eq([['2048'], ['32768'], ['30']])
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

    it 'passes no environment when given none' do
      expect(values_of('--env')).to eq([])
    end

    context 'with an environment' do
      let(:env) { { 'Z_LAST' => 'z', 'A_FIRST' => 'it\'s "quoted" $HOME', 'N' => 3, 'EMPTY' => '' } }

      it 'passes every variable as NAME=value, sorted by name, after the app' do
        expect(values_of('--env')).to eq(['A_FIRST=it\'s "quoted" $HOME', 'EMPTY=', 'N=3', 'Z_LAST=z'])
        expect(args.index('--env')).to be > args.index('--module')
      end
    end
  end

  describe '.app_args' do
    it 'is chdir, pythonpath, virtualenv, then the module' do
      props.merge!(chdir: '/srv/app', pythonpath: ['/srv/app', '/srv/lib'], virtualenv: '/srv/venv', app_module: 'app:application')
      expect(described_class.app_args(props)).to eq(
        ['--chdir', '/srv/app', '--pythonpath', '/srv/app', '--pythonpath', '/srv/lib', '--virtualenv', '/srv/venv', '--module', 'app:application']
      )
    end

    it 'loads a wsgi_file instead of the module when one is set' do
      props.merge!(wsgi_file: '/srv/app/wsgi.py')
      expect(described_class.app_args(props)).to eq(['--chdir', '/opt/uwsgi_fleet', '--pythonpath', '/opt/uwsgi_fleet', '--wsgi-file', '/srv/app/wsgi.py'])
    end

    it 'has no --virtualenv or --pythonpath when there are none' do
      props.merge!(pythonpath: [])
      expect(described_class.app_args(props)).to eq(['--chdir', '/opt/uwsgi_fleet', '--module', 'store_app.wsgi:application'])
    end
  end

  describe '.shell_words' do
    it 'quotes each argument so a shell-style split gives them back' do
      words = ['/usr/bin/uwsgi', '--env', %(GREETING=it's a "quoted" $HOME; `x` & y), '--env', 'EMPTY=', '--chdir', '/srv/a b']
      expect(Shellwords.split(described_class.shell_words(words))).to eq(words)
    end

    it 'separates arguments by single unescaped spaces' do
      expect(described_class.shell_words(['a b', 'c'])).to eq('a\\ b c')
    end

    it 'keeps a single % (doubling it is the supervisor escape)' do
      expect(described_class.shell_words(['FORMAT=%(asctime)s 100%']).count('%')).to eq(2)
    end
  end
end
