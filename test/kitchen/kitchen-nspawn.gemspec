# frozen_string_literal: true

# The Test Kitchen driver for this project's fresh nodes (systemd-nspawn).
Gem::Specification.new do |spec|
  spec.name = 'kitchen-nspawn'
  spec.version = '0.1.0'
  spec.summary = 'Test Kitchen driver: fresh Debian 12 nodes booted with systemd under systemd-nspawn'
  spec.authors = ['uwsgi_fleet developers']
  spec.license = 'Apache-2.0'
  spec.files = Dir['lib/**/*.rb']
  spec.require_paths = ['lib']
  spec.required_ruby_version = '>= 3.1'
end
