require_relative '../spec_helper'

# Graceful overload: max_conns per instance, and the 503 nginx sheds with.
describe 'uwsgi_fleet overload (max_conns)' do
  props = {
    name: 'store', processes: 2, threads: 4, base_port: 9000, bind_address: '127.0.0.1', user: 'uwsgi_fleet',
    listen_backlog: 1024, buffer_size: 65_535, harakiri: 60, process_manager: 'supervisor', store_app: nil,
    app_module: 'store_app.wsgi:application', wsgi_file: nil, chdir: '/opt/uwsgi_fleet', pythonpath: ['/opt/uwsgi_fleet'],
    virtualenv: nil, env: {}, listen: 80, server_name: '_', default_server: false, client_max_body_size: '2m',
    client_body_buffer_size: '1m', balance: 'least_conn', max_conns: 'auto', client_timeout: 10, remove_sites: [],
    nginx_main_config: nil
  }.merge(UwsgiFleet::Fleet.named_defaults('store', 'supervisor')).freeze

  def errors(props)
    UwsgiFleet::Validation.fleet_errors(props, cpus: 2, somaxconn: 4096, systemd: false)
  end

  # The site template as Chef renders it, partials from this cookbook's templates/.
  def rendered(props)
    templates = File.join(UwsgiFleetSpec::COOKBOOK_ROOT, 'templates')
    finder = Object.new.tap { |f| f.define_singleton_method(:find) { |name, _options = {}| File.join(templates, name) } }
    plan = UwsgiFleet::FleetPlan.new(props, cpus: 2)
    context = Chef::Mixin::Template::TemplateContext.new(plan: plan, error_pages: UwsgiFleet::Nginx.error_pages, removes: [],
                                                         template_finder: finder)
    context.render_template(File.join(templates, 'nginx_site.conf.erb'))
  end

  it 'has a rule in Validation, like every property' do
    expect(UwsgiFleet::Validation::FLEET).to have_key(:max_conns)
    expect(errors(props)).to eq([])
  end

  [0, 1, 8, 65_535, 'auto'].each do |value|
    it "accepts max_conns #{value.inspect}" do
      expect(errors(props.merge(max_conns: value))).to eq([])
    end
  end

  [-1, 65_536, '8', 'AUTO', nil, 2.0].each do |value|
    it "rejects max_conns #{value.inspect}, naming the rule" do
      expect(errors(props.merge(max_conns: value)).map { |e| [e.path, e.rule] })
        .to eq([[[:max_conns], "must be 'auto' or an integer from 0 (no limit) to 65535"]])
    end
  end

  it "resolves 'auto' to 2 x threads, and writes it in the manifest" do
    expect(UwsgiFleet::FleetPlan.new(props.merge(threads: 6), cpus: 2).max_conns).to eq(12)
    expect(UwsgiFleet::FleetPlan.new(props.merge(max_conns: 0), cpus: 2).manifest['max_conns']).to eq(0)
  end

  it 'renders max_conns on every upstream server' do
    expect(rendered(props).scan(/^\s+server (\S+) .*max_conns=(\d+);$/))
      .to eq([['127.0.0.1:9000', '8'], ['127.0.0.1:9001', '8']])
    expect(rendered(props.merge(max_conns: 0))).to match(/^\s+server 127\.0\.0\.1:9000 .*max_conns=0;$/)
  end

  it 'sheds with a JSON 503, Retry-After and X-Sentry-Rate-Limits when no instance can be picked' do
    page = rendered(props)[/^ *location @error_502 \{\n(?:.*\n)*? {4}\}\n/]
    shed = page[/^ *if \(\$upstream_addr ~ "\(\^\|, \)uwsgi_fleet_store\$"\) \{\n(?:.*\n)*? {8}\}\n/]
    expect(shed).not_to be_nil, page
    expect(shed).to include('add_header Retry-After "1" always;', 'add_header X-Sentry-Rate-Limits "1::organization:overloaded" always;',
                            'add_header Access-Control-Allow-Origin "*" always;')
    body = shed[/return 503 '(.*)';/, 1]
    expect(JSON.parse(body)).to eq('error' => 'overloaded: no instance free, retry later', 'retry_after' => 1)
    expect(page).to match(/^ {8}return 502 '\{"error":"no backend available"\}';$/)
  end

  it "maps node['uwsgi_fleet']['web']['nginx']['max_conns'] for the default recipe ('auto' by default)" do
    expect(UwsgiFleet::Attributes::FLEET[:max_conns]).to eq(%w(web nginx max_conns))
    expect(UwsgiFleetSpec.attribute_defaults['web']['nginx']['max_conns']).to eq('auto')
  end
end
