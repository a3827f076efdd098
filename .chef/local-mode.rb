# chef-client --local-mode config used by `make converge`. The repository root is
# the cookbook; .chef-local/cookbooks/uwsgi_fleet links back to it.
repo = File.expand_path('..', __dir__)
chef_repo_path File.join(repo, '.chef-local')
cookbook_path [File.join(repo, '.chef-local', 'cookbooks')]
file_cache_path '/var/cache/uwsgi_fleet/chef'
chef_license 'accept-no-persist'
log_location $stdout
