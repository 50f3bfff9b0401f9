"""Training: job (a request checked and resolved into a TrainJob, torch-free), setup (data, model,
optimizer), outputs (everything a run writes), evalset (fixed eval batches) and loop (the run).

Import from the modules: `engine.train.job` loads no torch, so the CLI and the app can
describe a job without paying for it.
"""
