"""The run library the stage scripts share: settings and command lines (settings.py, cli.py), files
and provenance, the checkpoint format (checkpoints.py), a run's folder (runs.py), chunked training
(chunks.py), a residual learner's trained base (bases.py), statistics (stats.py), and what the
report and compare stages share (reporting.py). It never imports pipeline/dag/."""
