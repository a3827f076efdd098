require_relative '../spec_helper'

describe UwsgiFleet::RecipeHelpers do
  # A stand-in for a recipe: the helpers only need #node.
  let(:node_data) { { 'cpu' => { 'total' => 6 }, 'uwsgi_fleet' => default_attrs } }
  let(:recipe) do
    data = node_data
    Object.new.tap do |o|
      o.extend(described_class)
      o.define_singleton_method(:node) { data }
    end
  end

  before do
    allow(File).to receive(:read).and_call_original
  end

  it 'is mixed into Chef recipes' do
    expect(Chef::DSL::Recipe.ancestors).to include(described_class)
  end

  describe '#uwsgi_fleet_cpus' do
    it "is Ohai's cpu total" do
      expect(recipe.uwsgi_fleet_cpus).to eq(6)
    end

    context 'without cpu data from Ohai' do
      let(:node_data) { {} }

      it 'is the running kernel CPU count' do
        expect(recipe.uwsgi_fleet_cpus).to eq(Etc.nprocessors)
      end
    end
  end

  describe '#uwsgi_fleet_somaxconn' do
    it 'reads net.core.somaxconn' do
      allow(File).to receive(:read).with('/proc/sys/net/core/somaxconn').and_return("511\n")
      expect(recipe.uwsgi_fleet_somaxconn).to eq(511)
    end

    it 'falls back to 4096 when /proc cannot be read' do
      allow(File).to receive(:read).with('/proc/sys/net/core/somaxconn').and_raise(Errno::ENOENT)
      expect(recipe.uwsgi_fleet_somaxconn).to eq(4096)
    end
  end

  describe '#uwsgi_fleet_plan' do
    before { allow(File).to receive(:read).with('/proc/sys/net/core/somaxconn').and_return("4096\n") }

    it 'plans with the node CPU count' do
      expect(recipe.uwsgi_fleet_plan.ports).to eq((9000..9005).to_a)
    end

    it 'is computed once per recipe' do
      expect(recipe.uwsgi_fleet_plan).to equal(recipe.uwsgi_fleet_plan)
    end

    it 'checks listen_backlog against somaxconn' do
      allow(File).to receive(:read).with('/proc/sys/net/core/somaxconn').and_return("128\n")
      expect { recipe.uwsgi_fleet_plan }.to raise_error(UwsgiFleet::InvalidAttribute, /\['listen_backlog'\] must be an integer from 1 to 128; got 1024/)
    end
  end
end
