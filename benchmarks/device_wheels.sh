#!/usr/bin/env bash
# Wheels for the packages dtql needs on the lent H200 machine that its image lacks, so that a
# session lent one spends its device minutes on the check, not on a missing import:
#   bash benchmarks/device_wheels.sh        (here, from the repository root; writes .whl/)
# The image's Python is 3.12 and holds jax with its CUDA plugin, flax, optax, numpy, h5py,
# safetensors, onnx, onnx-ir, onnxruntime, sympy, torch, tqdm, rich and matplotlib (the device
# notes, KINDS.md). What it lacks is below, with what each needs that it lacks too; the versions
# are this repo's pins or, for the dependencies, the ones its tests run with. About 24 MB, most
# of it mujoco. benchmarks/device_check.sh installs .whl/ there (name .whl in the run's carry).
set -euo pipefail
WANTED=(
    gymnasium==1.4.0 farama-notifications==0.0.6 # the simulators' API
    mujoco==3.11.0 glfw==2.11.0 pyopengl==3.1.10 # Hopper-v5 for the evaluation episodes
    tyro==1.0.17 docstring-parser==0.18.0 typeguard==4.6.1 # the CLI
    tensorboardX==2.6.5 # the run's TensorBoard log
    jax2onnx==0.17.1 # `dtql export` and the ONNX row of `dtql bench`
)
rm -rf .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "${WANTED[@]}"
ls -l .whl
du -sh .whl
