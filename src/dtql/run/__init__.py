"""A training run on the host, around the jitted update.

- ``setup``: checks a config, reads the task's spaces and the dataset, puts the data on the device;
- ``schedule``: where chunks of steps end (logging, pretraining, evaluation, checkpoints); pure;
- ``resume``: the run folder's config.json and checkpoints, and restoring a stopped run;
- ``acting``: the policy as an act function for the simulator, and its evaluation;
- ``group``: what the runs of one program share, and their data;
- ``program``: a group of runs as one program, in parts: open, train a chunk, drop a diverged
  run, start the main phase, evaluate/log/checkpoint, finish;
- ``loop``: ``run_training`` and ``run_group``, Algorithm 1's outer loop over those parts.
"""
