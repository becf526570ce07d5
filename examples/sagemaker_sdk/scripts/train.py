"""A SageMaker script-mode training script: fine-tune a Hugging Face checkpoint as a sentiment classifier on
CSV channels (`text,label` columns), the same on zeroserve and on SageMaker.

Reads what the training toolkit provides: hyperparameters as `--key value` arguments, the channels in
SM_CHANNEL_TRAIN / SM_CHANNEL_TEST, and saves with `save_pretrained` into SM_MODEL_DIR, which becomes the
job's model.tar.gz. Plain PyTorch, no Trainer, so it needs nothing beyond torch and transformers.
"""

import argparse
import csv
import glob
import json
import os
import random
import time

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def read_csv_channel(folder: str, limit: int) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for path in sorted(glob.glob(os.path.join(folder, "**", "*.csv"), recursive=True)):
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                texts.append(row["text"])
                labels.append(int(row["label"]))
    return texts[:limit], labels[:limit]


def batches(texts, labels, size, tokenizer, max_length, shuffle=False):
    order = list(range(len(texts)))
    if shuffle:
        random.shuffle(order)
    for start in range(0, len(order), size):
        chosen = order[start : start + size]
        encoded = tokenizer(
            [texts[i] for i in chosen],
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        )
        yield encoded, torch.tensor([labels[i] for i in chosen])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model_name", type=str, required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train_batch_size", type=int, default=32)
    parser.add_argument("--eval_batch_size", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--max_length", type=int, default=64)
    parser.add_argument("--max_train_examples", type=int, default=100_000)
    parser.add_argument("--max_test_examples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model_dir", type=str, default=os.environ.get("SM_MODEL_DIR", "model"))
    parser.add_argument("--train", type=str, default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--test", type=str, default=os.environ.get("SM_CHANNEL_TEST"))
    parser.add_argument("--output_data_dir", type=str, default=os.environ.get("SM_OUTPUT_DATA_DIR", "output"))
    args, _ = parser.parse_known_args()

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    train_texts, train_labels = read_csv_channel(args.train, args.max_train_examples)
    test_texts, test_labels = read_csv_channel(args.test, args.max_test_examples) if args.test else ([], [])
    print(f"loaded {len(train_texts)} training and {len(test_texts)} test reviews", flush=True)

    tokenizer = AutoTokenizer.from_pretrained(args.model_name)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model_name,
        num_labels=2,
        id2label={0: "LABEL_0", 1: "LABEL_1"},
        label2id={"LABEL_0": 0, "LABEL_1": 1},
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate)

    started = time.time()
    model.train()
    step = 0
    for epoch in range(args.epochs):
        for encoded, labels in batches(
            train_texts, train_labels, args.train_batch_size, tokenizer, args.max_length, shuffle=True
        ):
            loss = model(**encoded, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            if step % 5 == 0:
                print(f"epoch={epoch} step={step} train_loss={loss.item():.4f}", flush=True)
    print(f"trained {step} steps in {time.time() - started:.1f} s", flush=True)

    model.eval()
    correct = 0
    with torch.no_grad():
        for encoded, labels in batches(
            test_texts, test_labels, args.eval_batch_size, tokenizer, args.max_length
        ):
            correct += int((model(**encoded).logits.argmax(-1) == labels).sum())
    accuracy = correct / max(1, len(test_texts))
    print(f"eval_accuracy={accuracy:.4f}", flush=True)

    os.makedirs(args.output_data_dir, exist_ok=True)
    with open(os.path.join(args.output_data_dir, "eval.json"), "w") as f:
        json.dump({"eval_accuracy": accuracy, "test_examples": len(test_texts)}, f)
    model.save_pretrained(args.model_dir)
    tokenizer.save_pretrained(args.model_dir)


if __name__ == "__main__":
    main()
