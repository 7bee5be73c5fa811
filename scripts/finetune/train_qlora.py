#!/usr/bin/env python3
"""QLoRA fine-tuning of Qwen2.5-Coder-0.5B-Instruct on `pith dataset export` output.

    python3 scripts/finetune/train_qlora.py --data DATA_DIR --out ADAPTER_DIR \
        [--base Qwen/Qwen2.5-Coder-0.5B-Instruct] [--epochs 2] [--rank 16] [--no-4bit]
    python3 scripts/finetune/train_qlora.py --data DATA_DIR --check-data

DATA_DIR holds train.jsonl and validation.jsonl (Alpaca: instruction, input, output). Each
record becomes a chat in the model's own template (system, user = instruction + input,
assistant = output); the loss covers the assistant's tokens only. The base is loaded in 4-bit
NF4 (bitsandbytes, CUDA) unless --no-4bit (CPU or Apple: plain LoRA in float32/bfloat16). The
adapter is saved in PEFT format to ADAPTER_DIR; convert it with llama.cpp's
convert_lora_to_gguf.py (see README.md).
"""

import argparse
import json
import pathlib
import sys

SYSTEM = (
    "You are a coding assistant working inside the user's own project. "
    "Answer briefly and precisely. Use the project's code shown to you; do not invent APIs."
)


def load_records(path: pathlib.Path):
    records = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise SystemExit(f"{path}:{number}: not JSON: {error}")
            for key in ("instruction", "input", "output"):
                if not isinstance(record.get(key), str):
                    raise SystemExit(f"{path}:{number}: `{key}` missing or not a string")
            records.append(record)
    return records


def to_messages(record):
    user = record["instruction"]
    if record["input"].strip():
        user += "\n\n" + record["input"]
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": user},
        {"role": "assistant", "content": record["output"]},
    ]


def tokenize(tokenizer, record, max_length):
    """Token ids and labels; labels are -100 outside the assistant's answer."""
    messages = to_messages(record)
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full, add_special_tokens=False)["input_ids"][:max_length]
    labels = [-100] * min(len(prompt_ids), len(full_ids)) + full_ids[len(prompt_ids):]
    return {"input_ids": full_ids, "attention_mask": [1] * len(full_ids), "labels": labels}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=pathlib.Path, required=True)
    parser.add_argument("--out", type=pathlib.Path)
    parser.add_argument("--base", default="Qwen/Qwen2.5-Coder-0.5B-Instruct")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--no-4bit", action="store_true", help="plain LoRA, no bitsandbytes")
    parser.add_argument("--check-data", action="store_true", help="validate the JSONL and exit")
    args = parser.parse_args()

    train = load_records(args.data / "train.jsonl")
    validation_path = args.data / "validation.jsonl"
    validation = load_records(validation_path) if validation_path.exists() else []
    print(f"{len(train)} train, {len(validation)} validation records", file=sys.stderr)
    if args.check_data:
        return 0
    if not train:
        raise SystemExit("no training records: run `pith dataset export` on a documented codebase")
    if args.out is None:
        raise SystemExit("--out is required for training")

    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
    )

    tokenizer = AutoTokenizer.from_pretrained(args.base)
    quantized = not args.no_4bit and torch.cuda.is_available()
    if quantized:
        from transformers import BitsAndBytesConfig

        model = AutoModelForCausalLM.from_pretrained(
            args.base,
            quantization_config=BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_compute_dtype=torch.bfloat16,
                bnb_4bit_use_double_quant=True,
            ),
            device_map="auto",
        )
        model = prepare_model_for_kbit_training(model)
    else:
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
        model = AutoModelForCausalLM.from_pretrained(args.base, torch_dtype=dtype)
    model = get_peft_model(
        model,
        LoraConfig(
            r=args.rank,
            lora_alpha=args.alpha,
            lora_dropout=0.05,
            bias="none",
            task_type="CAUSAL_LM",
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        ),
    )
    model.print_trainable_parameters()

    def dataset(records):
        return Dataset.from_list([tokenize(tokenizer, r, args.max_length) for r in records])

    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(args.out / "checkpoints"),
            num_train_epochs=args.epochs,
            per_device_train_batch_size=args.batch,
            gradient_accumulation_steps=args.grad_accum,
            learning_rate=args.lr,
            lr_scheduler_type="cosine",
            warmup_ratio=0.05,
            logging_steps=10,
            eval_strategy="epoch" if validation else "no",
            save_strategy="epoch",
            save_total_limit=1,
            bf16=torch.cuda.is_available(),
            report_to=[],
            seed=0,
        ),
        train_dataset=dataset(train),
        eval_dataset=dataset(validation) if validation else None,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
    )
    trainer.train()
    model.save_pretrained(str(args.out))
    tokenizer.save_pretrained(str(args.out))
    print(f"adapter saved to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
