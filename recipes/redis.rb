#
# Cookbook:: uwsgi_fleet
# Recipe:: redis
#
# The Redis node of a scaled-out fleet: one quota per project for every web
# node, and the stream of accepted events. Its password comes from a data bag
# item (plain or encrypted: data_bag_item decrypts with the node's secret).
redis = node['uwsgi_fleet']['redis']

uwsgi_fleet_redis 'default' do
  bind_address redis['bind_address']
  port redis['port']
  quota_port redis['quota_port']
  appendfsync redis['appendfsync']
  password data_bag_item(redis['data_bag'], redis['data_bag_item'])['password']
end
