#!/usr/bin/env python3
"""Train a LoRA adapter for pith from the installed GGUF model; write it as a GGUF LoRA.

Run by `pith tune` inside the virtual environment it creates from requirements.txt beside this
file (it can be run by hand the same way):

    python tune.py --model MODEL.gguf --data DATA_DIR --work WORK_DIR --out ADAPTER.gguf \
        [--max-steps N] [--epochs E] [--rank R] [--lr LR] [--seq-len T] [--checkpoint-every N] \
        [--resume]

- The model is loaded from the GGUF with transformers (`from_pretrained(dir, gguf_file=...)`,
  dequantized to float32): no download.
- Examples: fill-in-the-middle lines from DATA_DIR/code.jsonl (`{"path","text"}`, the training
  files, scrubbed) laid out as pith prompts the model, and the Alpaca records of
  DATA_DIR/train.jsonl in the model's chat template. Only the answer's tokens are trained on.
- LoRA (peft) on the attention's q and v projections. CPU by default, CUDA when present.
- Progress on stderr: step, loss, seconds per step, ETA. A checkpoint (adapter weights,
  optimizer, step) is written to WORK_DIR/checkpoint.pt every N steps and on Ctrl-C;
  `--resume` continues from it.
- The adapter is written in llama.cpp's layout (as scripts/make_test_lora.py writes it):
  general.type = "adapter", adapter.type = "lora", adapter.lora.alpha, and per adapted weight
  `blk.N.attn_q.weight.lora_a` [r, n_in] and `.lora_b` [n_out, r] (numpy shapes); it names its
  base model (general.base_model.0.name, pith.base_model.file).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import signal
import sys
import time
from pathlib import Path

SEED = 20250607
TARGETS = {"q_proj": "attn_q", "v_proj": "attn_v"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def duration(seconds: float) -> str:
    s = int(round(max(seconds, 0)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def fim_examples(files: list[dict], seq_len: int, rng: random.Random) -> list[tuple[str, str]]:
    """(prompt, answer) pairs: a code line removed from its file, as pith asks for it."""
    out = []
    budget = seq_len * 3  # characters for prefix + suffix: ~4 per token, room for the answer
    for f in files:
        lines = f["text"].split("\n")
        rows = [i for i, l in enumerate(lines) if len(l.strip()) >= 8 and not l.strip().startswith(("#", "//"))]
        # About one example per 6 code lines, at least one per file.
        for row in sorted(rng.sample(rows, max(1, len(rows) // 6))) if rows else []:
            line = lines[row]
            indent = line[: len(line) - len(line.lstrip())]
            prefix = "\n".join(lines[:row]) + ("\n" if row else "") + indent
            suffix = "\n" + "\n".join(lines[row + 1:])
            prefix = prefix[-(budget * 3 // 4):]
            suffix = suffix[: budget // 4]
            prompt = f"<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>"
            out.append((prompt, line.strip()))
    return out


def chat_examples(records: list[dict], tokenizer) -> list[tuple[str, str]]:
    out = []
    for r in records:
        question = r["instruction"] + (("\n\n" + r["input"]) if r.get("input") else "")
        messages = [{"role": "user", "content": question}]
        try:
            prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:  # a GGUF without a chat template
            prompt = f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
        out.append((prompt, r["output"]))
    return out


def encode(tokenizer, prompt: str, answer: str, seq_len: int, eos: int):
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    a = tokenizer(answer, add_special_tokens=False)["input_ids"] + [eos]
    a = a[: max(8, seq_len // 2)]
    p = p[-(seq_len - len(a)):] if len(p) + len(a) > seq_len else p
    return p + a, [-100] * len(p) + a


def write_adapter(path: Path, architecture: str, base_name: str, base_file: str, state: dict,
                  rank: int, alpha: float) -> int:
    """The adapter as llama.cpp's convert_lora_to_gguf.py lays it out (the model's GGUF is not
    read again here: parsing its 150k-token vocabulary in Python takes minutes on a busy Pi)."""
    from gguf import GGUFWriter

    tmp = path.with_name(path.name + ".partial")
    writer = GGUFWriter(str(tmp), architecture)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(alpha))
    writer.add_uint32("general.base_model.count", 1)
    writer.add_string("general.base_model.0.name", base_name)
    writer.add_string("pith.base_model.file", base_file)
    pattern = re.compile(r".*layers\.(\d+)\.self_attn\.(\w+)\.lora_([AB])(?:\.default)?\.weight$")
    pairs: dict[str, dict[str, object]] = {}
    for key, tensor in state.items():
        m = pattern.match(key)
        if m and m.group(2) in TARGETS:
            name = f"blk.{m.group(1)}.{TARGETS[m.group(2)]}.weight"
            pairs.setdefault(name, {})[m.group(3)] = tensor.detach().float().cpu().numpy()
    count = 0
    for name in sorted(pairs, key=lambda n: (int(n.split(".")[1]), n)):
        a, b = pairs[name]["A"], pairs[name]["B"]  # numpy [r, n_in] and [n_out, r]
        if a.shape[0] != rank or b.shape[1] != rank:
            raise SystemExit(f"error: {name}: LoRA shapes {a.shape}, {b.shape} are not of rank {rank}")
        writer.add_tensor(f"{name}.lora_a", a)
        writer.add_tensor(f"{name}.lora_b", b)
        count += 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, path)
    return count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--arch", default="qwen2", help="the model's general.architecture")
    ap.add_argument("--base-name", help="the model's general.name (default: the file's stem)")
    ap.add_argument("--max-steps", type=int)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--checkpoint-every", type=int, default=20)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()

    if not args.model.is_file():
        log(f"error: no model at {args.model}")
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    checkpoint = args.work / "checkpoint.pt"
    if args.resume and not checkpoint.exists():
        log(f"error: --resume: no checkpoint at {checkpoint}")
        return 2

    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(SEED)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    started = time.monotonic()
    log(f"loading {args.model} with transformers (dequantized to float32, {device}) ...")
    directory, name = str(args.model.parent), args.model.name
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32)
    model.to(device)
    log(f"loaded in {time.monotonic() - started:.0f}s: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters")

    rng = random.Random(SEED)
    examples = fim_examples(read_jsonl(args.data / "code.jsonl"), args.seq_len, rng)
    examples += chat_examples(read_jsonl(args.data / "train.jsonl"), tokenizer)
    if not examples:
        log(f"error: no training examples in {args.data} (code.jsonl, train.jsonl)")
        return 2
    rng.shuffle(examples)
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    if not isinstance(eos, int) or eos < 0:
        eos = tokenizer.eos_token_id
    total = args.max_steps or max(1, math.ceil(args.epochs * len(examples)))
    log(f"{len(examples)} examples; {total} steps of one sequence of <= {args.seq_len} tokens")

    alpha = 2 * args.rank
    lora = LoraConfig(r=args.rank, lora_alpha=alpha, lora_dropout=0.05,
                      target_modules=list(TARGETS), bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    warmup = max(1, min(20, total // 10))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    step, losses = 0, []
    if args.resume:
        saved = torch.load(checkpoint, map_location=device, weights_only=False)
        if saved.get("rank") != args.rank or saved.get("model") != str(args.model):
            log(f"error: the checkpoint at {checkpoint} is for another model or rank: start without --resume")
            return 2
        set_peft_model_state_dict(model, saved["adapter"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        step, losses = saved["step"], saved["losses"]
        log(f"resumed at step {step} from {checkpoint}")

    def save():
        tmp = checkpoint.with_name("checkpoint.pt.partial")
        torch.save({"adapter": get_peft_model_state_dict(model), "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(), "step": step, "losses": losses,
                    "rank": args.rank, "model": str(args.model)}, tmp)
        os.replace(tmp, checkpoint)

    interrupted = False

    def on_signal(signum, frame):
        nonlocal interrupted
        interrupted = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    loop_started, first_step = time.monotonic(), step
    while step < total:
        prompt, answer = examples[step % len(examples)]
        ids, labels = encode(tokenizer, prompt, answer, args.seq_len, eos)
        input_ids = torch.tensor([ids], device=device)
        out = model(input_ids=input_ids, labels=torch.tensor([labels], device=device))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        losses.append(round(out.loss.item(), 4))
        per_step = (time.monotonic() - loop_started) / (step - first_step)
        recent = losses[-20:]
        log(f"step {step}/{total} loss {losses[-1]:.3f} (mean of last {len(recent)}: {sum(recent) / len(recent):.3f}) "
            f"{per_step:.1f} s/step ETA {duration(per_step * (total - step))}")
        if step % args.checkpoint_every == 0 or interrupted:
            save()
        if interrupted:
            log(f"interrupted at step {step}/{total}; checkpoint kept at {checkpoint}: "
                f"run again with --resume to continue")
            return 130

    save()
    written = write_adapter(args.out, args.arch, args.base_name or args.model.stem, args.model.name,
                            get_peft_model_state_dict(model), args.rank, alpha)
    (args.work / "losses.json").write_text(json.dumps(losses))
    log(f"wrote {args.out}: {written} adapted weights, rank {args.rank}, alpha {alpha}; "
        f"{step} steps in {duration(time.monotonic() - started)}")
    try:
        import resource
        log(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024:.2f} GB")
    except ImportError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
