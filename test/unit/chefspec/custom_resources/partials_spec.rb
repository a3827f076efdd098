require_relative '../spec_helper'

# resources/partial/: each file's name says what it holds, and each is used.
describe 'the resource partials (resources/partial/)' do
  resources = Dir[File.join(UwsgiFleetSpec::COOKBOOK_ROOT, 'resources', '*.rb')].to_h { |path| [File.basename(path, '.rb'), File.read(path)] }
  partials = Dir[File.join(UwsgiFleetSpec::COOKBOOK_ROOT, 'resources', 'partial', '*.rb')].map { |path| File.basename(path, '.rb') }
  uses = resources.transform_values { |text| text.scan(%r{^use 'partial/(\w+)'$}).flatten }

  it 'are each used by a resource, and every one a resource uses exists' do
    expect(uses.values.flatten.uniq.sort).to eq(partials.sort)
  end

  # Chef's own checks are off: a resource with this partial and no Validation
  # call in after_created would take any value at all.
  it "turn Chef's own property checks off only in resources that check every property with UwsgiFleet::Validation" do
    checked = uses.select { |_, used| used.include?('_chef_property_checks_off') }.keys
    expect(checked).to include('fleet', 'balancer', 'store_app', 'redis')
    checked.each do |name|
      after_created = resources[name][/^def after_created\n(?:.*\n)*?^end$/]
      expect(after_created).to match(/UwsgiFleet::Validation\.\w+_errors\(/).and(match(/UwsgiFleet::Validation\.raise_if_any!/)), name
    end
  end

  it 'give safe_directory to the resources that create directories, and install_packages to those that install' do
    resources.each do |name, text|
      expect(uses[name]).to include('_safe_directories'), name if text.match?(/\b(safe|root)_directory\(/)
      expect(uses[name]).to include('_packages'), name if text.include?('install_packages(')
    end
  end
end
