#!/usr/bin/env python3
"""References for attend --surprisal and prune --policy qppl on the two
real GGUF models (SmolLM2-135M-Instruct Q4_1, Gemma 3 270M Q4_K_M),
checked by tests/analysis/surprisal_test.py.  Needs torch, transformers, gguf and
llama-cpp-python (CI has none: the output is committed).  Rerun with

    /work/refpy/bin/python tests/analysis/make_surprisal_ref.py [MODELS_DIR]

Writes tests/analysis/surprisal_ref.npz with, per model M (smollm2, gemma3):
  M.ids            a short real text's token ids (the tokenizer's own, BOS
                   included where it adds one)
  M.surprisal      -log p(ids[i] | ids[<i]) in nats, 0 for token 0, from
                   transformers' float32 logits (the GGUF dequantized by
                   transformers itself), log-softmax in float64
  M.logit_max      max |logit| over those rows (the scale the logits'
                   tolerance in tests/model/gguf_model_test.py is relative to)
  M.llama_surprisal  the same from llama.cpp (quantized matrix products:
                   an independent engine, looser)
  M.piece_ids      the ids of the prompt's 3 blocks and question,
                   concatenated; M.piece_len their lengths; M.piece_off
                   [n, 2] byte offsets into qppl_text; M.bos (-1: none)
  M.qppl           [3] per block: sum over the question's tokens of
                   log p(q_i | BOS, block, q_<i) - log p(q_i | BOS, q_<i)
                   (from q_1 when there is no BOS), transformers
  M.llama_qppl     the same with llama.cpp
  qppl_text        the prompt (the blocks and the question joined by "\\n")
"""
import os
import sys

import numpy as np
import torch
import transformers as tf

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = {
    "smollm2": ("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3": ("gemma3", "gemma-3-270m-q4_k_m.gguf"),
}
# Real text: the opening of Darwin's "On the Origin of Species" (1859).
TEXT = ("When on board H.M.S. 'Beagle,' as naturalist, I was much struck with certain "
        "facts in the distribution of the inhabitants of South America, and in the "
        "geological relations of the present to the past inhabitants of that continent.")
PIECES = [
    "The Eiffel Tower in Paris was completed in 1889 for the World's Fair and stands "
    "about 330 metres tall.",
    "Bananas are elongated yellow fruit that grow in large hanging clusters in tropical "
    "regions.",
    "The weather forecast for tomorrow says light rain in the morning and sun later on.",
    "Question: In which year was the Eiffel Tower completed?",
]


def logprobs(logits, ids):
    """log p(ids[i+1] | ..i) for the rows of logits [n, V] (float64)."""
    x = np.asarray(logits, np.float64)
    x = x - x.max(1, keepdims=True)
    ls = x - np.log(np.exp(x).sum(1, keepdims=True))
    return ls[np.arange(len(ids) - 1), ids[1:]]


def main():
    torch.set_num_threads(2)
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", ".cache", "models")
    import llama_cpp
    out = {"qppl_text": np.frombuffer("\n".join(PIECES).encode(), np.uint8)}
    for short, (sub, fname) in MODELS.items():
        d = os.path.join(root, sub)
        tok = tf.AutoTokenizer.from_pretrained(d, gguf_file=fname)
        model = tf.AutoModelForCausalLM.from_pretrained(d, gguf_file=fname, dtype=torch.float32)
        model.eval()
        llm = llama_cpp.Llama(model_path=os.path.join(d, fname), logits_all=True, n_ctx=256,
                              n_threads=2, verbose=False)

        def hf_lp(ids):
            with torch.no_grad():
                lg = model(input_ids=torch.tensor([ids])).logits[0].numpy()
            return logprobs(lg, np.array(ids)), lg

        def ll_lp(ids):
            llm.reset()
            llm.eval(ids)
            lg = np.array(llm.scores[:len(ids)], np.float32)
            return logprobs(lg, np.array(ids))

        ids = tok(TEXT)["input_ids"]
        lp, lg = hf_lp(ids)
        out[short + ".ids"] = np.array(ids, np.int32)
        out[short + ".surprisal"] = np.r_[0.0, -lp]
        out[short + ".logit_max"] = np.array(np.abs(lg[:-1]).max())
        out[short + ".llama_surprisal"] = np.r_[0.0, -ll_lp(ids)]

        with_bos = tok("x")["input_ids"]
        bos = tok.bos_token_id if tok.bos_token_id is not None and with_bos[0] == tok.bos_token_id else -1
        pieces, offs, pos = [], [], 0
        for p in PIECES:
            enc = tok(p, add_special_tokens=False, return_offsets_mapping=True)
            pieces.append(enc["input_ids"])
            offs += [[a + pos, b + pos] for a, b in enc["offset_mapping"]]
            pos += len(p.encode()) + 1
        assert all(len(p.encode()) == len(p) for p in PIECES)   # ASCII: char offsets are bytes
        pre = [bos] if bos >= 0 else []
        q = pieces[-1]
        first = 0 if pre else 1

        def qppl(lpf):
            base = lpf(pre + q)[len(pre) + first - 1:].sum()
            return np.array([lpf(pre + b + q)[len(pre) + len(b) + first - 1:].sum() - base
                             for b in pieces[:3]])

        out[short + ".piece_ids"] = np.array(sum(pieces, []), np.int32)
        out[short + ".piece_len"] = np.array([len(p) for p in pieces], np.int32)
        out[short + ".piece_off"] = np.array(offs, np.int64)
        out[short + ".bos"] = np.array(bos, np.int32)
        out[short + ".qppl"] = qppl(lambda ids: hf_lp(ids)[0])
        out[short + ".llama_qppl"] = qppl(ll_lp)
        print(short, "bos", bos, "qppl", out[short + ".qppl"], "llama", out[short + ".llama_qppl"],
              "surprisal |hf - llama| max",
              np.abs(out[short + ".surprisal"] - out[short + ".llama_surprisal"]).max())
    np.savez_compressed(os.path.join(HERE, "surprisal_ref.npz"), **out)


if __name__ == "__main__":
    main()
