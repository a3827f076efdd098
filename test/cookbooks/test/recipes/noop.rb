#
# A fleet under the no-op process manager of this cookbook's library: only
# ChefSpec converges it (test/unit/chefspec/test_cookbook/noop_spec.rb).
#
uwsgi_fleet 'noop' do
  process_manager 'noop'
  app_module 'api_app:application'
  base_port 9200
  listen 8200
end
