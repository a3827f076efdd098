# frozen_string_literal: true

# Debian's ruby-shadow inside a bundle (see lib/shadow.rb for why).
Gem::Specification.new do |s|
  s.name = 'ruby-shadow-debian'
  s.version = '1.0.0'
  s.summary = "Loads Debian's build of ruby-shadow (apt-get install ruby-shadow) in a Bundler-managed Chef"
  s.authors = ['uwsgi_fleet developers']
  s.license = 'Apache-2.0'
  s.files = ['lib/shadow.rb']
  s.required_ruby_version = '>= 3.1'
end
