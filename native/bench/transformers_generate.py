"""Reference timings for `stepgrpo bench`: transformers eager `generate` (greedy, KV cache) in the shape
of `stepgrpo bench --batch 8 --prompt-len 64 --new-tokens 64`, on the same checkpoint directory.

    python3 transformers_generate.py make DIR         # a random 103 M-parameter Qwen3 checkpoint (f32, tied)
    python3 transformers_generate.py cuda DIR
    python3 transformers_generate.py cpu DIR THREADS
"""
import json, sys, time
import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

mode, d = sys.argv[1], sys.argv[2]
if mode == "make":
    cfg = Qwen3Config(vocab_size=151936, hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
                      num_attention_heads=8, num_key_value_heads=4, head_dim=64, rms_norm_eps=1e-6,
                      rope_theta=1e6, tie_word_embeddings=True, max_position_embeddings=4096)
    torch.manual_seed(0)
    Qwen3ForCausalLM(cfg).to(torch.float32).save_pretrained(d)
    sys.exit()
if mode == "cpu":
    torch.set_num_threads(int(sys.argv[3]))
dev = "cuda" if mode == "cuda" else "cpu"
m = Qwen3ForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").to(dev).eval()
B, P, N = 8, 64, 64
ids = torch.randint(0, 151936, (B, P), generator=torch.Generator().manual_seed(1)).to(dev)

def run(n):
    t = time.perf_counter()
    with torch.no_grad():
        m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                   do_sample=False, use_cache=True, pad_token_id=0)
    if dev == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t

def best(n, k=3):
    run(n)
    return min(run(n) for _ in range(k))

pre, full = best(1), best(N)
print(json.dumps({"impl": "transformers " + __import__("transformers").__version__, "device": dev,
                  "threads": torch.get_num_threads(), "prefill_tokens_per_s": B * P / pre,
                  "decode_tokens_per_s": B * (N - 1) / (full - pre)}))
