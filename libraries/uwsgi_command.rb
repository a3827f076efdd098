#
# Cookbook:: uwsgi_fleet
# Library:: uwsgi_command
#
require 'shellwords'

module UwsgiFleet
  # The uWSGI command line of one instance, as supervisor runs it.
  module UwsgiCommand
    UWSGI = '/usr/bin/uwsgi'.freeze

    module_function

    # Command line for the instance on +port+. +web+ is node['uwsgi_fleet']['web'];
    # +fifo+ is the instance's master FIFO; +env+ is extra environment for the app.
    def for_instance(web, port:, fifo:, env: {})
      args = [UWSGI, '--plugin', 'python3',
              # One master + one worker: the master keeps the socket open while
              # the worker is replaced, so reloads drop nothing.
              '--master', '--processes', '1', '--threads', web['threads'].to_s,
              '--socket', Fleet.host_port(web['bind_address'], port),
              '--listen', web['listen_backlog'].to_s,
              '--buffer-size', web['buffer_size'].to_s,
              '--harakiri', web['harakiri'].to_s,
              # The app loads in the worker, so a worker reload ('w' on the FIFO) loads new code.
              '--lazy-apps', '--need-app',
              # uWSGI 2.0: SIGTERM alone is a brutal *reload*; with --die-on-term it stops.
              # SIGHUP is a graceful reload, and --exit-on-reload turns it into a graceful
              # stop, which is why supervisor stops instances with HUP.
              '--die-on-term', '--exit-on-reload',
              '--master-fifo', fifo,
              '--disable-logging', '--log-4xx', '--log-5xx']
      args.concat(app_args(web['app']))
      web['app']['env'].merge(env).sort.each { |name, value| args.push('--env', "#{name}=#{value}") }
      args.map { |a| Shellwords.escape(a) }.join(' ')
    end

    # Where the app comes from: module or wsgi file, chdir, sys.path, virtualenv.
    def app_args(app)
      args = ['--chdir', app['chdir']]
      Array(app['pythonpath']).each { |path| args.push('--pythonpath', path) }
      args.push('--virtualenv', app['virtualenv']) if app['virtualenv']
      if app['wsgi_file'].to_s.empty?
        args.push('--module', app['module'])
      else
        args.push('--wsgi-file', app['wsgi_file'])
      end
      args
    end

    # Supervisor expands %(name)s in commands, so a literal % must be doubled.
    def for_supervisor(command)
      command.gsub('%', '%%')
    end
  end
end
