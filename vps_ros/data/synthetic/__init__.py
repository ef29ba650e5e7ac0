"""The synthetic driving-scene generator: :mod:`.scene` (what moves where),
:mod:`.shapes` and :mod:`.textures` (how things look), :mod:`.render` (pixels and ground
truth), :mod:`.dataset` (splits of seeded sequences as a VideoDataset), :mod:`.stats`
(how hard a split is for a tracker)."""
