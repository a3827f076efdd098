require_relative '../spec_helper'

describe UwsgiFleet::Paths do
  # A temp tree; every directory in it is root's unless named in @not_root
  # (the specs may run as any user: File.lstat reports uid 0 for the rest).
  around do |example|
    Dir.mktmpdir('uwsgi_fleet_paths') do |dir|
      @root = File.realpath(dir)
      @not_root = []
      example.run
    end
  end

  before do
    allow(File).to receive(:lstat).and_wrap_original do |original, path|
      stat = original.call(path)
      uid = @not_root.include?(path) ? 1000 : 0
      instance_double(File::Stat, symlink?: stat.symlink?, directory?: stat.directory?, mode: stat.mode, uid: uid)
    end
  end

  def path(*parts)
    File.join(@root, *parts)
  end

  def mkdir(*parts, mode: 0o755)
    path(*parts).tap do |dir|
      Dir.mkdir(dir)
      File.chmod(mode, dir)
    end
  end

  describe '.ancestors' do
    it 'is every directory above the path, from /' do
      expect(described_class.ancestors('/var/lib/uwsgi_fleet/api')).to eq(['/', '/var', '/var/lib', '/var/lib/uwsgi_fleet'])
    end

    it 'is / for a top-level path, and / itself' do
      expect(described_class.ancestors('/srv')).to eq(['/'])
      expect(described_class.ancestors('/')).to eq(['/'])
    end
  end

  describe '.problems' do
    it 'is empty for a new directory under root-owned ones' do
      mkdir('lib')
      expect(described_class.problems(path('lib', 'fleet'))).to eq([])
    end

    it 'is empty for an existing directory' do
      mkdir('lib')
      mkdir('lib', 'fleet', mode: 0o750)
      expect(described_class.problems(path('lib', 'fleet'))).to eq([])
    end

    it 'finds a symlink at the path (root would chown what it points to)' do
      mkdir('elsewhere')
      File.symlink(path('elsewhere'), path('fleet'))
      expect(described_class.problems(path('fleet'))).to eq(["#{path('fleet')} is a symlink"])
    end

    it 'finds a file where the directory should be' do
      File.write(path('fleet'), '')
      expect(described_class.problems(path('fleet'))).to eq(["#{path('fleet')} exists and is not a directory"])
    end

    it 'finds a symlink above the path' do
      mkdir('real')
      File.symlink(path('real'), path('link'))
      # (A symlink's own mode is 0777, so it is also reported as writable.)
      expect(described_class.problems(path('link', 'fleet'))).to include("#{path('link')} is a symlink")
    end

    it 'finds a directory above the path that another user owns' do
      mkdir('lib')
      @not_root << path('lib')
      expect(described_class.problems(path('lib', 'fleet'))).to eq(["#{path('lib')} is not owned by root"])
    end

    it 'finds a directory above the path that group or others may write' do
      mkdir('group', mode: 0o775)
      mkdir('other', mode: 0o757)
      expect(described_class.problems(path('group', 'fleet'))).to eq(["#{path('group')} is writable by group or others"])
      expect(described_class.problems(path('other', 'fleet'))).to eq(["#{path('other')} is writable by group or others"])
    end

    it 'accepts a world-writable directory with the sticky bit (as /tmp)' do
      mkdir('tmp', mode: 0o1777)
      expect(described_class.problems(path('tmp', 'fleet'))).to eq([])
    end

    it 'lists every problem' do
      mkdir('lib', mode: 0o777)
      @not_root << path('lib')
      File.write(path('lib', 'fleet'), '')
      expect(described_class.problems(path('lib', 'fleet'))).to eq([
                                                                     "#{path('lib', 'fleet')} exists and is not a directory",
                                                                     "#{path('lib')} is not owned by root",
                                                                     "#{path('lib')} is writable by group or others",
                                                                   ])
    end

    it 'skips ancestors that do not exist yet' do
      expect(described_class.problems(path('a', 'b', 'c'))).to eq([])
    end
  end

  describe '.claim?' do
    it 'is true for a missing path (root makes it, 0755)' do
      expect(described_class.claim?(path('missing'))).to be(true)
    end

    it "is true for another user's directory (0.1.0 left some shared parents to the app user)" do
      dir = mkdir('lib')
      @not_root << dir
      expect(described_class.claim?(dir)).to be(true)
    end

    it "is false for an existing directory of root's" do
      expect(described_class.claim?(mkdir('lib'))).to be(false)
    end

    it "is false for root's sticky world-writable directory, as /tmp: its 1777 stays" do
      expect(described_class.claim?(mkdir('tmp', mode: 0o1777))).to be(false)
    end

    it "is false for root's group-writable directory too: check! of the directory under it refuses it instead" do
      shared = mkdir('shared', mode: 0o775)
      expect(described_class.claim?(shared)).to be(false)
      expect { described_class.check!(path('shared', 'fleet')) }.to raise_error(described_class::Unsafe, /is writable by group or others/)
    end

    it "is false for root's symlink, which is not followed: check! refuses what is under it" do
      File.symlink(mkdir('real'), path('link'))
      expect(described_class.claim?(path('link'))).to be(false)
      expect(described_class.problems(path('link', 'fleet'))).to include("#{path('link')} is a symlink")
    end
  end

  describe '.check!' do
    it 'is true for a safe path' do
      expect(described_class.check!(path('fleet'))).to be(true)
    end

    it 'raises Unsafe, a SecurityError, naming the path and every problem' do
      mkdir('lib', mode: 0o777)
      @not_root << path('lib')
      expect { described_class.check!(path('lib', 'fleet')) }.to raise_error(
        described_class::Unsafe,
        "uwsgi_fleet: root will not manage #{path('lib', 'fleet')}: #{path('lib')} is not owned by root; " \
        "#{path('lib')} is writable by group or others. " \
        'Fix the ownership or pick another path, so that no other user controls a directory above it.'
      )
      expect(described_class::Unsafe.ancestors).to include(SecurityError)
    end
  end
end
