require_relative '../spec_helper'

describe 'uwsgi_fleet::default' do
  platform 'debian', '12'
  include_context 'uwsgi_fleet machine stubs'

  it 'includes the web recipe' do
    expect(chef_run).to include_recipe('uwsgi_fleet::web')
  end

  it 'converges the web tier' do
    expect(chef_run).to install_package('nginx, supervisor, uwsgi-core, uwsgi-plugin-python3, python3, iproute2, libbrotli1, libzstd1')
    expect(chef_run).to create_template('/etc/nginx/nginx.conf')
    expect(chef_run).to create_template('/etc/supervisor/conf.d/uwsgi_fleet_9000.conf')
  end
end
