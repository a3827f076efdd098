#
# The api fleet of two_fleets removed (the store fleet stays).
#
uwsgi_fleet 'api' do
  action :delete
end
