#!/usr/bin/env python3
"""Write small random LoRA adapters (GGUF) for a model, for tests of LoRA loading.

    python3 scripts/make_test_lora.py MODEL.gguf OUT_DIR [--rank 8] [--seed 0]

Writes OUT_DIR/lora-good.gguf, whose tensors match the model's qwen2 attention projections
(`blk.N.attn_q.weight` and `blk.N.attn_v.weight`, shapes read from the model with gguf's
reader), and OUT_DIR/lora-wrong-arch.gguf, the same tensors declared for another architecture,
which a loader must refuse. Needs `pip install gguf numpy`.

Layout (as llama.cpp's convert_lora_to_gguf.py writes it): general.type = "adapter",
adapter.type = "lora", adapter.lora.alpha; for each adapted weight W with ggml dims
[n_in, n_out], `<W>.lora_a` with dims [n_in, r] and `<W>.lora_b` with dims [r, n_out]
(numpy shapes are the reverse).
"""

import argparse
import pathlib
import sys

import numpy as np
from gguf import GGUFReader, GGUFWriter

TARGETS = ("attn_q.weight", "attn_v.weight")


def model_architecture(reader: GGUFReader) -> str:
    field = reader.fields["general.architecture"]
    return bytes(field.parts[field.data[0]]).decode()


def write_adapter(path, architecture, weights, rank, seed, sigma):
    rng = np.random.default_rng(seed)
    writer = GGUFWriter(str(path), architecture)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(rank))
    for name, (n_in, n_out) in weights:
        a = rng.normal(0.0, sigma, size=(rank, n_in)).astype(np.float32)
        b = rng.normal(0.0, sigma, size=(n_out, rank)).astype(np.float32)
        writer.add_tensor(f"{name}.lora_a", a)
        writer.add_tensor(f"{name}.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=pathlib.Path)
    parser.add_argument("out_dir", type=pathlib.Path)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sigma", type=float, default=0.15)
    args = parser.parse_args()

    reader = GGUFReader(str(args.model))
    architecture = model_architecture(reader)
    weights = [
        (t.name, (int(t.shape[0]), int(t.shape[1])))
        for t in reader.tensors
        if t.name.startswith("blk.") and t.name.endswith(TARGETS)
    ]
    if not weights:
        print(f"{args.model}: no {TARGETS} tensors found", file=sys.stderr)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    good = args.out_dir / "lora-good.gguf"
    wrong = args.out_dir / "lora-wrong-arch.gguf"
    other = "llama" if architecture != "llama" else "gpt2"
    write_adapter(good, architecture, weights, args.rank, args.seed, args.sigma)
    write_adapter(wrong, other, weights, args.rank, args.seed, args.sigma)
    print(f"{good} ({architecture}, {len(weights)} weights, rank {args.rank})")
    print(f"{wrong} ({other})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
