#
# What Ruby renders, checked against the JSON Schemas the Python side reads
# (the same files the node gets: one validator, jsonschema, for both sides).
#
#   expect(rendered('/etc/uwsgi_fleet/api/fleet.json')).to match_schema(:fleet)
require 'open3'

module UwsgiFleetSpec
  PYTHON = '/usr/bin/python3'.freeze
  SCHEMAS = {
    fleet: File.join(COOKBOOK_ROOT, 'files', 'default', 'uwsgi_fleetctl', 'fleet.schema.json'),
    store_app: File.join(COOKBOOK_ROOT, 'files', 'default', 'store_app', 'config.schema.json'),
  }.freeze
  # Reads the schema (argv[1]) and a document (stdin); prints one line per
  # error, "<JSON path>: <message>", and exits 1 if there is any.
  VALIDATE = <<~PYTHON.freeze
    import json, sys
    import jsonschema
    with open(sys.argv[1]) as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    errors = sorted(cls(schema).iter_errors(json.load(sys.stdin)), key=lambda e: list(map(str, e.absolute_path)))
    for e in errors:
        print("$" + "".join("[%s]" % json.dumps(p) for p in e.absolute_path) + ": " + e.message)
    sys.exit(1 if errors else 0)
  PYTHON

  module_function

  # The errors jsonschema finds in +content+ (JSON text) against schema +name+
  # (a key of SCHEMAS): [] when it conforms.
  def schema_errors(content, name)
    out, status = Open3.capture2e(PYTHON, '-c', VALIDATE, SCHEMAS.fetch(name), stdin_data: content)
    return [] if status.success?
    lines = out.lines.map(&:chomp)
    lines.empty? ? ["#{PYTHON} exited #{status.exitstatus}"] : lines
  end
end

RSpec::Matchers.define :match_schema do |name|
  match { |content| (@errors = UwsgiFleetSpec.schema_errors(content, name)).empty? }
  failure_message { "expected the rendered JSON to match #{UwsgiFleetSpec::SCHEMAS[name]}, but:\n  #{@errors.join("\n  ")}" }
end
