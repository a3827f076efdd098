# apt packages on a node whose lists may be empty, stale or locked.
action_class do
  # Install +names+ on a node whose apt lists may be empty (fresh cloud and
  # container images ship without them) or stale (packages gone from the mirror).
  #
  # A fresh cloud image runs unattended-upgrades at first boot, which holds
  # apt's locks for minutes: `apt-get update` fails at once on a held lock
  # (it has no lock timeout), so it is retried; the install waits for dpkg's
  # lock (DPkg::Lock::Timeout).
  def install_packages(names)
    apt_update 'uwsgi_fleet' do
      frequency 86_400
      retries UwsgiFleet::Packages::APT_RETRIES
      retry_delay UwsgiFleet::Packages::APT_RETRY_DELAY
      action :periodic
    end

    # The periodic stamp can outlive the lists it vouches for (`rm -rf
    # /var/lib/apt/lists/*`, image builds): then update regardless.
    apt_update 'uwsgi_fleet: the apt lists are empty' do
      retries UwsgiFleet::Packages::APT_RETRIES
      retry_delay UwsgiFleet::Packages::APT_RETRY_DELAY
      action :update
      only_if { UwsgiFleet::Packages.apt_lists_empty? }
    end

    package names.uniq do
      options UwsgiFleet::Packages::APT_LOCK_WAIT
    end
  end
end
