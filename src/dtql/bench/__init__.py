"""`dtql bench`: how fast dtql trains and acts on this machine, measured in one process.

Modules: ``timing`` (medians after warm-ups, the machine's description), ``training`` (steps/s
of each algorithm's update, its FLOPs from XLA's cost analysis, the machine's matmul rate at the
update's shapes, K runs in one vmapped program), ``acting`` (one action at batch 1 in each way of
acting, and the wall time of whole episodes), ``torch_reference`` (the same DTQL step and the
released code's candidate selection in eager PyTorch, for ``--against torch``), ``targets``
(issue 13's speed targets judged on the measured numbers), ``printing`` (the tables) and
``command`` (the arguments and the measurements in order).

Everything is measured in the run that prints it, on the same machine and threads; speed lives
here and in no timed test.
"""
