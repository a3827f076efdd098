#
# Cookbook:: uwsgi_fleet
# Attributes:: default
#
# The default recipe's interface (0.1.0's): it maps these onto one
# uwsgi_fleet_store_app and one uwsgi_fleet named 'default' (UwsgiFleet::Attributes):
#   ['web']          -> the fleet's instances (supervisor programs uwsgi_fleet_<port>)
#   ['web']['app']   -> what every uWSGI instance loads
#   ['web']['nginx'] -> the fleet's nginx file, /etc/nginx/conf.d/uwsgi_fleet_default.conf
#   ['app']          -> the store app, /etc/uwsgi_fleet/store_app.json
# Allowed values are checked by UwsgiFleet::Validation before anything converges;
# the resources' documentation (documentation/) gives each property's rule.

# Number of uWSGI instances. 'auto' means the node's CPU count, at least 2.
default['uwsgi_fleet']['web']['processes'] = 'auto'
# Threads per instance (each instance is one uWSGI worker process).
default['uwsgi_fleet']['web']['threads'] = 8
# Instance i listens on base_port + i.
default['uwsgi_fleet']['web']['base_port'] = 9000
# Backends listen here only; nginx is the public face.
default['uwsgi_fleet']['web']['bind_address'] = '127.0.0.1'
# Unprivileged system user that runs uWSGI (created by the recipe).
default['uwsgi_fleet']['web']['user'] = 'uwsgi_fleet'
# uWSGI listen backlog per instance; may not exceed net.core.somaxconn.
default['uwsgi_fleet']['web']['listen_backlog'] = 1024
# uWSGI request-header buffer. 65535 (the protocol maximum) is larger than
# anything nginx forwards, so oversized headers are refused by nginx with a 4xx.
default['uwsgi_fleet']['web']['buffer_size'] = 65_535
# Seconds before uWSGI kills a stuck request; a stop waits this long (+5).
default['uwsgi_fleet']['web']['harakiri'] = 60
# What runs the instances: a registered process manager, 'supervisor' (the default)
# or 'systemd' (needs systemd as PID 1): documentation/process_managers.md.
# (The cookbook's own constants: Chef loads libraries before attributes.)
default['uwsgi_fleet']['web']['process_manager'] = UwsgiFleet::ProcessManager::DEFAULT

# The WSGI app every instance loads. Set either module or wsgi_file.
default['uwsgi_fleet']['web']['app']['module'] = 'store_app.wsgi:application'
default['uwsgi_fleet']['web']['app']['wsgi_file'] = nil
# Working directory of each instance.
default['uwsgi_fleet']['web']['app']['chdir'] = '/opt/uwsgi_fleet'
# Directories added to sys.path.
default['uwsgi_fleet']['web']['app']['pythonpath'] = ['/opt/uwsgi_fleet']
# A virtualenv to run in (uWSGI --virtualenv); nil uses the system python3.
default['uwsgi_fleet']['web']['app']['virtualenv'] = nil
# Extra environment variables for the app, e.g. { 'DJANGO_SETTINGS_MODULE' => 'app.settings' }.
default['uwsgi_fleet']['web']['app']['env'] = {}

# nginx: the port and name it serves on.
default['uwsgi_fleet']['web']['nginx']['listen'] = 80
default['uwsgi_fleet']['web']['nginx']['server_name'] = '_'
# Largest envelope, as received (nginx: 413 beyond) and once decoded (the store app's cap):
# one size, so that nginx and the app refuse the same bodies. 100m is Relay's max_envelope_size
# and what Sentry's self-hosted nginx passes; an event and its attachments fit (a 3 MB attachment
# cost the event with 2m). The app reads the body in chunks: a larger body costs no more memory.
# The other caps: ['app']['max_event_bytes'] and ['app']['max_attachment_bytes'].
default['uwsgi_fleet']['web']['nginx']['client_max_body_size'] = UwsgiFleet::StoreApp::MAX_BODY_SIZE
# Bodies up to this size stay in memory instead of nginx temp files.
default['uwsgi_fleet']['web']['nginx']['client_body_buffer_size'] = '1m'
# Behind a balancer (uwsgi_fleet::balancer): nginx serves on this private address only,
# the one the balancer reaches (nil: every address of the node).
default['uwsgi_fleet']['web']['nginx']['listen_address'] = nil
# Upstream balancing: 'least_conn' (as Sentry's config), 'round_robin', 'random_two' or 'ip_hash'.
default['uwsgi_fleet']['web']['nginx']['balance'] = 'least_conn'
# Overload (documentation/uwsgi_fleet.md, Overload). Requests queue in each instance's listen queue;
# the store app sheds (503 + Retry-After) a request that waited longer than burst_queue_ms, or
# sustained_queue_ms once the queue has not emptied for burst_queue_ms: a burst is stored whole,
# sustained overload is shed with the accepted requests kept fast.
default['uwsgi_fleet']['web']['nginx']['burst_queue_ms'] = 500
default['uwsgi_fleet']['web']['nginx']['sustained_queue_ms'] = 50
# Requests nginx gives one instance at once; past that on every instance nginx sheds at once.
# 'auto' = 8 x threads (a burst of 4 x threads per instance twice over; at most threads +
# listen_backlog, what the instance can hold); 0 = no limit.
default['uwsgi_fleet']['web']['nginx']['max_conns'] = 'auto'
# Retired: nginx.conf is the distribution's now (set worker_processes there).
# Anything but 'auto' only logs a warning.
default['uwsgi_fleet']['web']['nginx']['worker_processes'] = 'auto'
# Slow clients are cut off after this many seconds of silence (header, body, send).
default['uwsgi_fleet']['web']['nginx']['client_timeout'] = 10

# The embedded store app. Projects: { '<digits>' => { 'public_key' => '<32 hex>' } }, optionally
# with 'rate_limit' => { 'events_per_second' => n, 'burst' => n }. Empty: project '1' gets a random
# key, kept stable across converges in /etc/uwsgi_fleet/default_project.key.
default['uwsgi_fleet']['app']['projects'] = {}
# One JSON file per accepted event, under <spool_dir>/<project id>/.
default['uwsgi_fleet']['app']['spool_dir'] = '/var/spool/uwsgi_fleet'
# Rate limit for projects without their own: one bucket per project, shared as
# documentation/uwsgi_fleet_store_app.md ("Rate limit") says.
default['uwsgi_fleet']['app']['rate_limit']['events_per_second'] = UwsgiFleet::StoreApp::RATE_LIMIT['events_per_second']
default['uwsgi_fleet']['app']['rate_limit']['burst'] = UwsgiFleet::StoreApp::RATE_LIMIT['burst']
# Cap on one event's decoded size: Relay's max_event_size (1 MiB). Parsing an event may use up
# to 16x this, so it also bounds the memory of one request.
default['uwsgi_fleet']['app']['max_event_bytes'] = UwsgiFleet::StoreApp::MAX_EVENT_BYTES
# Cap on one attachment item's decoded size (the SDKs' own default, 20 MiB). The store keeps no
# attachment: one over this is dropped and counted (invalid, too_large) and the event that came
# with it is stored. Relay refuses the whole envelope instead, losing the event.
default['uwsgi_fleet']['app']['max_attachment_bytes'] = UwsgiFleet::StoreApp::MAX_ATTACHMENT_BYTES
# Cap on a whole envelope once decoded (Relay's max_envelope_size), an nginx size of at least
# max_event_bytes; nil: ['web']['nginx']['client_max_body_size'], so that nginx and the app refuse
# the same envelopes.
default['uwsgi_fleet']['app']['max_envelope_size'] = nil
# Trim each project's Redis stream (with a shared Redis) to about this many events; nil: not trimmed.
default['uwsgi_fleet']['app']['stream_maxlen'] = nil
# Simulated network hops (auth and quota lookups of the original); 0 = off. Used by the benchmark.
default['uwsgi_fleet']['app']['simulated_hops'] = 0
default['uwsgi_fleet']['app']['simulated_hop_ms'] = 2

# -- Scaling out: a shared Redis and a balancer node ------------------------------
# The shared Redis (uwsgi_fleet::redis) gives one quota per project for every web
# node and takes the accepted events (the forwarder moves them there from the
# spool). Find its node by Chef search in this node's environment, e.g.
# 'role:uwsgi_fleet_redis', or give its URL; nil for both: no Redis.
default['uwsgi_fleet']['app']['redis']['search'] = nil
# redis://<address>:<port>/<db>, used when search is nil.
default['uwsgi_fleet']['app']['redis']['url'] = nil
# The Redis of the quota, when url is given (search finds uwsgi_fleet::redis's quota
# instance by itself); nil: the url's.
default['uwsgi_fleet']['app']['redis']['quota_url'] = nil
# With a Redis: the quota's buckets are there, shared by every web node (false: each node keeps
# its own; documentation/uwsgi_fleet_store_app.md, "Rate limit").
default['uwsgi_fleet']['app']['redis']['quota'] = true
# The data bag item holding Redis's password ({ "password": "..." }), for web nodes and the Redis node.
default['uwsgi_fleet']['redis']['data_bag'] = 'uwsgi_fleet'
default['uwsgi_fleet']['redis']['data_bag_item'] = 'redis'
# uwsgi_fleet::redis: the private address Redis listens on (required), its port, its AOF fsync policy.
default['uwsgi_fleet']['redis']['bind_address'] = nil
default['uwsgi_fleet']['redis']['port'] = 6379
# Its second instance, for the quota, without persistence.
default['uwsgi_fleet']['redis']['quota_port'] = 6380
default['uwsgi_fleet']['redis']['appendfsync'] = 'always'
# The Redis node's role. A web node that uses no Redis (no ['app']['redis'] search,
# url or quota_url) looks for nodes with it in its environment, and warns when it
# finds one: the web role most likely lacks ['app']['redis']['search']. nil: no look.
# Not named 'role': Chef's search indexes every attribute under its last key too, so
# every node with this cookbook's attributes would match role:uwsgi_fleet_redis.
default['uwsgi_fleet']['redis']['role_name'] = 'uwsgi_fleet_redis'
# uwsgi_fleet::balancer: the web nodes, by Chef search in this node's environment;
# where it serves (nil: every address).
default['uwsgi_fleet']['balancer']['search'] = 'role:uwsgi_fleet_web'
default['uwsgi_fleet']['balancer']['listen'] = 80
default['uwsgi_fleet']['balancer']['listen_address'] = nil
