#
# The store app on a fleet run by systemd instead of supervisor.
#
uwsgi_fleet_store_app 'store' do
  notifies :reload, 'uwsgi_fleet[store]', :delayed
end

uwsgi_fleet 'store' do
  store_app 'store'
  process_manager 'systemd'
  processes node['test']['store_processes'] if node['test']['store_processes']
  default_server true
  remove_sites ['/etc/nginx/sites-enabled/default']
end
