# frozen_string_literal: true

# Chef's user resource requires 'shadow' (ruby-shadow) to read /etc/shadow, and
# raises MissingLibrary without it. The gem from RubyGems (2.5.1, the last
# release) no longer builds on Debian 13's Ruby 3.3: its extconf.rb misreads the
# OS ("You are missing some of the required functions from either shadow.h
# ..."), and past that it calls rb_tainted_str_new2, which Ruby 3.2 removed.
# Debian patches and ships it as the package ruby-shadow on Debian 12 and 13,
# but as a system gem, which a bundle installed with `path` never sees. This
# file, the whole of a path gem in the Gemfile, loads Debian's build.
so = Dir.glob("/usr/lib/*/rubygems-integration/#{RbConfig::CONFIG['ruby_version']}/extensions/*/*/ruby-shadow-*/shadow.so").first
raise LoadError, "Debian's ruby-shadow is not installed (its shadow.so was not found): apt-get install ruby-shadow" unless so
require so
