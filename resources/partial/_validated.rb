# Chef checks a property's type when it is set and stops at the first bad one.
# Every property's rule, its type included, is in UwsgiFleet::Validation
# instead: the resource checks them all at once when it has been declared
# (after_created, at compile time), so one message names every bad value
# before anything on the node changes.
def validate(opts, map)
  super
rescue Chef::Exceptions::ValidationFailed
  nil
end

# {property => value} for the properties this resource declares (Chef's own,
# such as retries or sensitive, left out).
def uwsgi_fleet_properties
  self.class.properties.filter_map { |key, p| [key, send(key)] if p.declared_in == self.class }.to_h
end
