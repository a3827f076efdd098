name 'test'
maintainer 'uwsgi_fleet developers'
maintainer_email 'uwsgi-fleet@example.org'
license 'Apache-2.0'
description 'A wrapper cookbook for the Kitchen suites: declares uwsgi_fleet resources'
version '0.1.0'
chef_version '>= 18'

depends 'uwsgi_fleet'
