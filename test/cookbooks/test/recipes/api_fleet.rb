#
# A fleet that runs another WSGI app than the store, with its own user, ports
# and server name.
#
directory '/opt/test_api'
cookbook_file '/opt/test_api/api_app.py' do
  source 'api_app.py'
  notifies :reload, 'uwsgi_fleet[api]', :delayed
end

uwsgi_fleet 'api' do
  app_module 'api_app:application'
  chdir '/opt/test_api'
  user 'api_fleet'
  processes node['test']['api_processes']
  threads 2
  base_port 9100
  server_name 'api.example'
end
