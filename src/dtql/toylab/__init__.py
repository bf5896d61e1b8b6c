"""The 2D bandit lab: the paper's toy experiments (Figures 1, 2, 3, 6), drawn and measured.

A bandit has one constant state s = 0 (next state = state, never terminal), 10,000 dataset actions
in 2-D (``dtql.data.toy``) and a reward on actions. Training uses the package's own algorithms
(``dtql.algos``): the same losses, networks, update steps and ``run_steps_jit`` as a D4RL run.

- trust region (``reg='tr'``): DTQL, policy loss alpha * L_TR - min(Q1, Q2) (Eqs. 4, 5), with the
  Gaussian or the implicit one-step policy. As in the authors' toy code, nothing is pretrained:
  critics, diffusion BC model and policy train together from the first step. (With 1000 steps
  of pretraining, the implicit policy stayed on the centre mode where it starts, for every
  reward: the trust region is already sharp before the critic can pull the policy anywhere.)
- KL (``reg='kl'``): the KL baseline (Appendix D, Algorithm 2): the BC model is fitted alone
  (Algorithm 2's first loop, ``kl_bc_steps``, once per dataset), then BC model and critics are
  pretrained on the scenario, then the implicit generator and the fake-score model start from
  the BC weights. (With only 1000 steps of BC fitting, the BC model's own samples were 55%
  off the data manifold, and KL alone diverged to |a| ~ 1e8 within 1250 steps: the real score
  it distils must know the modes first.)

Both use the IQL critics (Eqs. 6, 7). "No Q term" (Figure 2) needs no switch in the algorithms
and is exact: critics and rewards are zeroed (``training``'s docstring says why that suffices).

Settings (REFERENCE.md, "2D bandit toys"): expectile 0.95, discount 0.99, hidden 128, Adam lr 3e-3,
alpha 1 (the released toy code's weight). Departures, for the time budget (whole suite within 10
minutes on 2 CPU cores) and stability, all flags of ``ToyArgs``: minibatches of ``batch_size`` (128)
drawn with replacement instead of the full 10,000 actions per step; 1500 steps for the
implicit trust-region policy (``tr_implicit_steps``; the Gaussian gets the paper's 3500) and
4000 + 1000 + 1000 for KL (``kl_bc_steps`` + ``kl_pretrain_steps`` + ``kl_steps``); the KL
generator and fake model at ``kl_lr`` = 3e-4 (at 3e-3 the generator collapsed to one point
within 50 steps in our runs).
``MAX_ACTION`` = 15 bounds the Gaussian policy, a = tanh(.) * 15: both datasets lie within it.

Outputs of the suite (``run_toy`` without ``scenario``), in ``out``:
``fig1_trust_region_loss.png``, ``fig2_kl_no_q.png``, ``fig3_tr_vs_kl.png`` (Figures 3 and 6),
``fig_tr_implicit.png``, ``metrics.json`` (settings, definitions, one record per run) and
``metrics.md`` (the table).

Modules, each importing only toylab modules listed above it:

- ``scenarios``: the scenarios, variants, a scenario's data (``Problem``) and constants
- ``args``: ``ToyArgs`` (the flags of `dtql toy`) and their check
- ``training``: configs and training through ``dtql.algos``, policy samples
- ``metrics``: what the policy samples are measured by, and the table
- ``figures``: Figure 1's trust-region loss map and the matplotlib drawings
- ``suite``: the runner (one run, one scenario, the suite) and the entry point ``run_toy``
"""

from dtql.toylab.suite import run_toy
from dtql.toylab.toy_args import ToyArgs

__all__ = ["ToyArgs", "run_toy"]
