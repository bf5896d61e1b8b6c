"""Where one DTQL update's time goes on CPU (issue 13): a `jax.profiler` trace of a chunk of
updates, each XLA operation's time put under what it is, with the FLOPs of every matrix product
read from the compiled program.

    taskset -c 0 python benchmarks/update_profile.py [--steps 50]

The halfcheetah-medium-v2 preset as `dtql bench` builds it, synthetic data (100k rows), the
compiled `run_steps` program that training runs. One untraced call of ``--steps`` updates is
timed first (tracing adds a few percent). Printed, per update:
- time by kind: YNNPACK matrix products, XLA's own dot kernels, other fusions (elementwise work,
  reductions, Adam), loops (the random draws' hash rounds), copies; products with their GFLOP/s;
- the other fusions' time by network, pass (forward / backward) and operation (LayerNorm, exp,
  add, ...), from each fusion's op_name in the compiled program;
- XLA's own matrix products one by one, with their shapes and GFLOP/s (the ones YNNPACK does
  not take: the weight gradients, which contract over the batch).
On a GPU (through the `device` tool) it prints instead the kernels one update launches: their
count, how much of the update's wall time they fill, and the ones that take the most time.
"""

from __future__ import annotations

import argparse
import collections
import re
import tempfile
import time
from pathlib import Path

import jax
from jax.profiler import ProfileData

from dtql.algos import get_algorithm
from dtql.algos.common import run_steps_jit
from dtql.bench.bench_command import BenchArgs, learner_config
from dtql.bench.timing import machine
from dtql.bench.training_speed import DATA_ROWS, synthetic_data
from dtql.envs.registry import get_task

NETWORKS = ("TwinQ", "ValueNetwork", "DiffusionNetwork", "GaussianPolicyNetwork")
# name = shape opcode(operands), ...; a tuple shape has spaces but no "word(" inside.
INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%(\S+) = (.+?) ([a-z][\w-]*)\(")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    task = get_task(BenchArgs().task)
    cfg = learner_config(BenchArgs(), "dtql")
    algo = get_algorithm("dtql")
    data = synthetic_data(DATA_ROWS, task.obs_dim, task.act_dim)
    init = algo.init(jax.random.key(0), cfg, task.obs_dim, task.act_dim, 1.0)
    state = algo.start_main_phase(init, cfg)

    def call(seed: int) -> float:
        nonlocal state
        started = time.perf_counter()
        state, metrics = run_steps_jit(
            algo.train_step, state, data, jax.random.key(seed), cfg, args.steps
        )
        jax.block_until_ready(metrics)
        return (time.perf_counter() - started) / args.steps

    call(1)  # compiles
    untraced = call(2)
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder):
            traced = call(3)
        profile = ProfileData.from_file(str(next(Path(folder).rglob("*.xplane.pb"))))
    where = machine()
    print(
        f"DTQL update, {task.name} preset; {where['device']}, {where['cpu_threads_usable']} "
        f"usable CPU thread(s), jax {where['versions']['jax']}, XLA_FLAGS "
        f"'{where['xla_flags']}', compiled with {where['compiler_options']}; one call of "
        f"{args.steps} updates: {1e3 * untraced:.2f} ms per update untraced, "
        f"{1e3 * traced:.2f} traced"
    )
    if jax.default_backend() == "cpu":
        compiled = run_steps_jit.lower(
            algo.train_step, state, data, jax.random.key(0), cfg, args.steps
        ).compile()
        print_cpu_breakdown(profile, parse_hlo(compiled.as_text()), args.steps)
    else:
        print_accelerator_kernels(profile, args.steps, traced)


def print_cpu_breakdown(profile: ProfileData, instructions: dict, steps: int) -> None:
    """XLA:CPU: each operation's time by kind, the elementwise time by network, pass and
    operation, and XLA's own products one by one."""
    op_ns = collections.Counter()
    for plane in profile.planes:
        for line in plane.lines:
            if line.name.startswith("tf_XLAEigen"):  # XLA:CPU's executor threads
                for event in line.events:
                    if not event.name.startswith("ThunkExecutor"):
                        op_ns[event.name] += event.duration_ns
    per_step = 1e6 * steps  # ns in the trace -> ms per update
    kinds: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    parts: collections.Counter = collections.Counter()
    for name, ns in op_ns.items():
        opcode, flops, op_name, _ = instructions.get(name, ("", 0.0, "", ""))
        kind = kind_of(name, opcode, flops)
        kinds[kind][0] += ns / per_step
        kinds[kind][1] += flops
        if kind in ("other fusions", "YNNPACK reductions"):
            parts[part_of(op_name)] += ns / per_step
    print("\n| kind | ms per update | GFLOP per update | GFLOP/s |\n| --- | --- | --- | --- |")
    for kind, (ms, flops) in sorted(kinds.items(), key=lambda kv: -kv[1][0]):
        rate = f"{flops / 1e6 / ms:.0f}" if flops else "-"
        print(f"| {kind} | {ms:.2f} | {flops / 1e9:.3f} | {rate} |")
    print(f"| all | {sum(ms for ms, _ in kinds.values()):.2f} | | |")
    print(
        "\n| other fusions and reductions: network, pass, operation | ms per update |"
        "\n| --- | --- |"
    )
    for part, ms in parts.most_common(15):
        print(f"| {part} | {ms:.2f} |")
    print("\n| XLA's own product | shape | ms per update | GFLOP/s |\n| --- | --- | --- | --- |")
    own = [name for name in op_ns if instructions.get(name, ("",))[0] == "dot"]
    for name in sorted(own, key=lambda n: -op_ns[n])[:12]:
        _, flops, _, shape = instructions[name]
        ms = op_ns[name] / per_step
        print(f"| {name} | {shape} | {ms:.3f} | {flops / 1e6 / ms:.0f} |")


def print_accelerator_kernels(profile: ProfileData, steps: int, traced: float) -> None:
    """A GPU: how many kernels one update launches, how much of its wall time they fill, and
    the kernels that take the most time (what limits a small-batch update there: kernel count
    and loop overhead, or the kernels themselves)."""
    kernels: collections.Counter = collections.Counter()
    counts: collections.Counter = collections.Counter()
    for plane in profile.planes:
        if not plane.name.startswith("/device:"):
            continue
        print(
            f"{plane.name}: "
            + ", ".join(f"{line.name} ({len(list(line.events))} events)" for line in plane.lines)
        )
        for line in plane.lines:
            if line.name.startswith("Stream"):  # the device's kernels and copies, by stream
                for event in line.events:
                    kernels[event.name] += event.duration_ns
                    counts[event.name] += 1
    if not counts:
        print("no kernel events in the trace (is CUPTI available?)")
        return
    busy_ms = sum(kernels.values()) / 1e6 / steps
    print(
        f"\nper update: {sum(counts.values()) / steps:.0f} kernels and copies "
        f"({len(counts)} distinct), {busy_ms:.3f} ms of them (summed over streams) against "
        f"{1e3 * traced:.3f} ms of wall time ({busy_ms / (1e3 * traced):.0%})"
    )
    print("\n| kernel | per update | ms per update |\n| --- | --- | --- |")
    for name, ns in kernels.most_common(15):
        print(f"| {name[:90]} | {counts[name] / steps:.1f} | {ns / 1e6 / steps:.4f} |")


def parse_hlo(text: str) -> dict[str, tuple[str, float, str, str]]:
    """Each instruction's opcode, the FLOPs of its matrix product (its own, or the one inside
    the fusion it calls), its op_name and, for a dot, its operands' shapes and contraction."""
    shapes: dict[str, list[int]] = {}
    computations: dict[str, list[str]] = collections.defaultdict(list)
    current = ""
    for line in text.splitlines():
        header = re.match(r"^(?:ENTRY )?%?(\S+) .*\{$", line)
        if header and not line.startswith(" "):
            current = header.group(1)
            continue
        computations[current].append(line)
        match = INSTRUCTION.match(line)
        array = match and re.match(r"\w+\[([\d,]*)\]", match.group(2))
        if array:
            shapes[match.group(1)] = [int(d) for d in array.group(1).split(",") if d]

    def dot_flops(line: str) -> float:
        out, lhs = re.search(r"= (\S+) dot\(%(\S+), %\S+\)", line).groups()
        contracted = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", line).group(1)
        size = 1
        for d in re.search(r"\[([\d,]*)\]", out).group(1).split(","):
            size *= int(d) if d else 1
        for d in contracted.split(","):
            size *= shapes[lhs][int(d)]
        return 2.0 * size

    out = {}
    for lines in computations.values():
        for line in lines:
            match = INSTRUCTION.match(line)
            if not match:
                continue
            name, opcode = match.group(1), match.group(3)
            op_name = re.search(r'op_name="([^"]*)"', line)
            flops = dot_flops(line) if opcode == "dot" else 0.0
            called = re.search(r"calls=%?([\w.\-]+)", line)
            if opcode == "fusion" and called:
                inner = [x for x in computations.get(called.group(1), []) if " dot(" in x]
                flops = dot_flops(inner[0]) if inner else 0.0
            shape = ""
            if opcode == "dot":
                lhs, rhs = re.search(r"dot\(%(\S+), %([^,)]+)\)", line).groups()
                contracting = re.findall(r"[lr]hs_contracting_dims=\{([\d,]*)\}", line)
                shape = f"{shapes[lhs]} x {shapes[rhs]}, contracting {' and '.join(contracting)}"
            out[name] = (opcode, flops, op_name.group(1) if op_name else "", shape)
    return out


def kind_of(name: str, opcode: str, flops: float) -> str:
    if name.startswith("ynn_fusion"):
        return "YNNPACK matrix products" if flops else "YNNPACK reductions"
    if opcode == "dot":
        return "XLA's own matrix products"
    if opcode == "fusion":
        return "other fusions"
    if opcode == "while":
        return "loops (random draws)"
    if opcode == "copy":
        return "copies"
    return "other"


def part_of(op_name: str) -> str:
    network = next((n for n in NETWORKS if n in op_name), "optimizer, targets, sampling")
    direction = "backward" if "transpose(" in op_name else "forward"
    operation = "LayerNorm" if "LayerNorm" in op_name else op_name.rsplit("/", 1)[-1]
    return f"{network}, {direction}, {operation}"


if __name__ == "__main__":
    main()
