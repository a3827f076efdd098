# What the Python checks of a node (expected.py) need from the cookbook, from
# the cookbook's own Ruby, printed as JSON, so no rule is written again in
# Python and no Ruby is parsed with a regex. Plain Ruby (no Chef, no bundle):
# Kitchen's verifier runs expected.py on the host, where Debian's ruby is.
#
#   ruby cookbook_facts.rb defaults [ATTRIBUTES_FILE]
#     node['uwsgi_fleet'] as attributes/default.rb sets it
#   ruby cookbook_facts.rb instance-count PROCESSES_JSON CPUS
#     UwsgiFleet::Fleet.instance_count: how many instances a fleet runs
require 'json'

ROOT = File.expand_path('../..', __dir__)
# Every library, in Chef's order (sorted), before the attributes file: it uses
# the cookbook's constants, as Chef loads libraries before attributes.
Dir[File.join(ROOT, 'libraries', '*.rb')].sort.each { |library| require library }

# Chef's node attributes, as far as an attributes file uses them: `default`
# is a hash whose missing keys hold new hashes, so default['a']['b'] = 1 works.
# Any other call (node, override, a platform test) fails loudly here.
class AttributesFile
  attr_reader :default

  def initialize
    @default = Hash.new { |hash, key| hash[key] = Hash.new(&hash.default_proc) }
  end

  def self.evaluate(path)
    file = new
    file.instance_eval(File.read(path), path)
    file.default
  end
end

command, *args = ARGV
case command
when 'defaults'
  puts JSON.generate(AttributesFile.evaluate(args.first || File.join(ROOT, 'attributes', 'default.rb')))
when 'instance-count'
  puts JSON.generate(UwsgiFleet::Fleet.instance_count(JSON.parse(args.fetch(0)), Integer(args.fetch(1))))
else
  abort "usage: #{$PROGRAM_NAME} defaults [ATTRIBUTES_FILE] | instance-count PROCESSES_JSON CPUS"
end
