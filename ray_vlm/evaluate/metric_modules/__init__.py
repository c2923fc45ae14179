"""`evaluate.Metric` modules, one folder each, loadable with `evaluate.load(folder)`."""
