# frozen_string_literal: true

require 'fileutils'
require 'kitchen/provisioner/chef_infra'

module Kitchen
  module Provisioner
    # chef_infra, plus fixture cookbooks (a wrapper cookbook under
    # test/cookbooks that declares the resources) in the sandbox beside this
    # one. Without a Berksfile or Policyfile, chef_infra copies only the
    # cookbook at the Kitchen root.
    #
    #   provisioner:
    #     name: chef_fixtures
    #     fixture_cookbooks: [test/cookbooks/test]
    class ChefFixtures < ChefInfra
      default_config :fixture_cookbooks, []

      def create_sandbox
        super
        cookbooks = File.join(sandbox_path, 'cookbooks')
        config[:fixture_cookbooks].each do |path|
          source = File.expand_path(path, config[:kitchen_root])
          info("Preparing fixture cookbook #{File.basename(source)}")
          FileUtils.cp_r(source, File.join(cookbooks, File.basename(source)))
        end
      end
    end
  end
end
