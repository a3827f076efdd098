require_relative '../spec_helper'
require 'tsort'

# The libraries form a DAG: a library that names another's module depends on
# it, and no chain of them leads back to where it started (a cycle means two
# files that can only be read, changed and tested together).
describe 'the libraries' do
  libraries = Dir[File.expand_path('../../../../libraries/*.rb', __dir__)].to_h do |path|
    [File.basename(path, '.rb'), File.read(path).gsub(/#.*$/, '')]
  end
  # Module or class name => the library defining it.
  owners = libraries.flat_map { |lib, text| text.scan(/^\s*(?:module|class)\s+([A-Z]\w*)/).flatten.map { |name| [name, lib] } }
                    .reject { |name, _| name == 'UwsgiFleet' }.to_h
  graph = libraries.to_h do |lib, text|
    [lib, owners.filter_map { |name, owner| owner if owner != lib && text.match?(/\b#{name}\b/) }.uniq.sort]
  end

  it 'are found, with what each uses' do
    expect(graph.keys).to include('fleet', 'net', 'nginx', 'uwsgi_command')
    expect(graph['fleet']).to include('net', 'nginx', 'uwsgi_command')
  end

  it 'use each other without a cycle' do
    cycles = TSort.strongly_connected_components(->(&b) { graph.each_key(&b) }, ->(lib, &b) { graph.fetch(lib).each(&b) })
                  .select { |component| component.size > 1 }
    expect(cycles).to eq([]), "library cycles: #{cycles.inspect} (graph: #{graph.inspect})"
  end

  it 'write a host:port in one leaf library that uses no other' do
    expect(graph['net']).to eq([])
    %w(nginx uwsgi_command search).each { |lib| expect(graph[lib]).not_to include('fleet') }
  end

  it 'are not called by the templates, which render only the variables their resource computed' do
    templates = Dir[File.expand_path('../../../../templates/*.erb', __dir__)]
    expect(templates).not_to be_empty
    expect(templates.select { |path| File.read(path).include?('UwsgiFleet::') }.map { |path| File.basename(path) }).to eq([])
  end
end
