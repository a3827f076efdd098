#
# Cookbook:: uwsgi_fleet
# Library:: uwsgi_command
#
require 'shellwords'

module UwsgiFleet
  # The uWSGI command line of one instance. Each process manager quotes it its
  # own way (ProcessManager::Supervisor#command, ProcessManager::Systemd#command).
  module UwsgiCommand
    UWSGI = '/usr/bin/uwsgi'.freeze

    module_function

    # Arguments for the instance on +port+. +props+ are the fleet's properties;
    # +fifo+ is the instance's master FIFO; +env+ is the app's environment.
    def args(props, port:, fifo:, env: {})
      args = [UWSGI, '--plugin', 'python3',
              # One master + one worker: the master keeps the socket open while
              # the worker is replaced, so reloads drop nothing.
              '--master', '--processes', '1', '--threads', props[:threads].to_s,
              '--socket', Net.host_port(props[:bind_address], port),
              '--listen', props[:listen_backlog].to_s,
              '--buffer-size', props[:buffer_size].to_s,
              '--harakiri', props[:harakiri].to_s,
              # The app loads in the worker, so a worker reload ('w' on the FIFO) loads new code.
              '--lazy-apps', '--need-app',
              # uWSGI 2.0: SIGTERM alone is a brutal *reload*; with --die-on-term it stops.
              # SIGHUP is a graceful reload, and --exit-on-reload turns it into a graceful
              # stop, which is why supervisor and systemd stop instances with HUP.
              '--die-on-term', '--exit-on-reload',
              '--master-fifo', fifo,
              '--disable-logging', '--log-4xx', '--log-5xx']
      args.concat(app_args(props))
      env.sort.each { |name, value| args.push('--env', "#{name}=#{value}") }
      args
    end

    # Where the app comes from: module or wsgi file, chdir, sys.path, virtualenv.
    def app_args(props)
      args = ['--chdir', props[:chdir]]
      Array(props[:pythonpath]).each { |path| args.push('--pythonpath', path) }
      args.push('--virtualenv', props[:virtualenv]) if props[:virtualenv]
      props[:wsgi_file] ? args.push('--wsgi-file', props[:wsgi_file]) : args.push('--module', props[:app_module])
    end

    # One shell-style line (supervisor splits command= like a shell).
    def shell_words(args)
      args.map { |a| Shellwords.escape(a) }.join(' ')
    end
  end
end
