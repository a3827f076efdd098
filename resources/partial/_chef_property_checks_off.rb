# Turns Chef's own property checks off. Chef checks a property (its type, and
# any callbacks) when it is set, and stops at the first bad one. Every
# property's rule, its type included, is in UwsgiFleet::Validation instead: the
# resource checks them all at once when it has been declared (after_created, at
# compile time), so one message names every bad value before anything on the
# node changes. A resource that uses this partial must call Validation in its
# after_created, or its properties go unchecked.
def validate(opts, map)
  super
rescue Chef::Exceptions::ValidationFailed
  nil
end

# {property => value} for the properties this resource declares (Chef's own,
# such as retries or sensitive, left out): what Validation checks.
def uwsgi_fleet_properties
  self.class.properties.filter_map { |key, p| [key, send(key)] if p.declared_in == self.class }.to_h
end
