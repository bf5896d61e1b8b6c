"""A training run on the host, around the jitted update.

- ``setup``: checks a config, reads the task's spaces and the dataset, puts the data on the device;
- ``schedule``: where chunks of steps end (logging, pretraining, evaluation, checkpoints); pure;
- ``resume``: the run folder's config.json and checkpoints, and restoring a stopped run;
- ``acting``: the policy as an act function for the simulator, and its evaluation;
- ``loop``: ``run_training``, the loop that ties them together and writes result.json.
"""
