# chef-client --local-mode config used by `make converge`. The repository root is
# the cookbook; `make converge` copies its parts (the Makefile's COOKBOOK_PARTS)
# to .chef-local/cookbooks/uwsgi_fleet and converges that copy.
repo = File.expand_path('..', __dir__)
chef_repo_path File.join(repo, '.chef-local')
cookbook_path [File.join(repo, '.chef-local', 'cookbooks')]
file_cache_path '/var/cache/uwsgi_fleet/chef'
chef_license 'accept-no-persist'
log_location $stdout
