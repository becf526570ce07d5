"""The naive cold start: a fresh Python process that loads a transformers pipeline and answers one request.

Usage: python naive_cold.py CHECKPOINT_DIR TEXT. Prints the answer as one JSON line; the benchmark times
process start -> that line, which is what a container cold start costs before any server code runs.
"""

import json
import sys

from transformers import pipeline

classifier = pipeline("text-classification", model=sys.argv[1], device=-1)
print(json.dumps(classifier(sys.argv[2])), flush=True)
