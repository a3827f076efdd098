#
# Two fleets on one nginx, beside a site that is not ours: the store app on
# one, another WSGI app on the other, each with its own user, ports and name.
#
uwsgi_fleet_store_app 'store' do
  notifies :reload, 'uwsgi_fleet[store]', :delayed
end

uwsgi_fleet 'store' do
  store_app 'store'
  server_name 'store.example'
end

include_recipe 'test::api_fleet'

# A site managed by someone else (as sous-chefs/nginx would render one).
file '/etc/nginx/sites-available/other' do
  content "server {\n    listen 8080;\n    server_name other.example;\n    location / { return 200 'other site\\n'; }\n}\n"
end
link '/etc/nginx/sites-enabled/other' do
  to '/etc/nginx/sites-available/other'
  notifies :reload, 'service[nginx]', :delayed
end
service 'nginx' do
  action :nothing
end
