name 'uwsgi_fleet'
maintainer 'uwsgi_fleet developers'
maintainer_email 'uwsgi-fleet@example.org'
license 'Apache-2.0'
description 'nginx in front of N single-process, multi-threaded uWSGI instances run by supervisor (the Sentry web tier pattern)'
version '0.2.0'
chef_version '>= 18'

source_url 'https://github.com/uwsgi-fleet/uwsgi_fleet'
issues_url 'https://github.com/uwsgi-fleet/uwsgi_fleet/issues'

# Tested on Debian 13 and Debian 12, with and without systemd (documentation/testing.md: "What is tested";
# documentation/platforms.md).
supports 'debian', '>= 12.0'
