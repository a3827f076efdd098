#
# Cookbook:: uwsgi_fleet
# Recipe:: default
#
include_recipe 'uwsgi_fleet::web'
