"""The DAG machinery: the stage registry both tools read (registry.py), params.yaml's validation
(params.py), code dependencies read from imports (codedeps.py), the dvc.yaml generator (dvcgen.py)
and DVC's headline metrics stage (headline.py). Nothing in pipeline/run/ imports it."""
