# How many instances the api fleet of the two_fleets recipe runs (the suite grows it).
default['test']['api_processes'] = 2
