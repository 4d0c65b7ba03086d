"""PyTorch's CPU engine as Debian ships it (python3-torch, libtorch 1.13) on a training step shaped
like mixup-bert's: BertForSequenceClassification's computation written out in plain torch (Debian
has no transformers): word + position + type embeddings, LayerNorm, dropout; post-LN encoder layers
with fused QKV, scaled dot-product attention with padding mask and attention dropout, exact GELU;
tanh pooler on [CLS], dropout, classifier, cross-entropy; gradient clipping and AdamW (HF's no-decay
groups). Random weights, every token real, same thread count as mixup-bert.

Run with Debian's interpreter and without the OpenBLAS overrides this machine sets:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/peers/torch_cpu_step.py --preset minilm --batch 32 --seq 64
"""
import argparse, json, math, statistics, time
import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {"minilm": dict(vocab=30522, hidden=384, layers=6, heads=12, inter=1536),
           "bert-base": dict(vocab=28996, hidden=768, layers=12, heads=12, inter=3072)}

class Layer(nn.Module):
    def __init__(s, c, h, i, p):
        super().__init__()
        s.h, s.p = h, p
        s.qkv, s.out, s.ln1 = nn.Linear(c, 3 * c), nn.Linear(c, c), nn.LayerNorm(c, eps=1e-12)
        s.fc1, s.fc2, s.ln2 = nn.Linear(c, i), nn.Linear(i, c), nn.LayerNorm(c, eps=1e-12)
    def forward(s, x, bias):
        B, T, C = x.shape
        q, k, v = s.qkv(x).view(B, T, 3, s.h, C // s.h).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(C // s.h) + bias
        att = F.dropout(att.softmax(-1), s.p, s.training)
        ctx = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = s.ln1(x + F.dropout(s.out(ctx), s.p, s.training))
        return s.ln2(x + F.dropout(s.fc2(F.gelu(s.fc1(x))), s.p, s.training))

class Bert(nn.Module):
    def __init__(s, vocab, hidden, layers, heads, inter, labels=2, p=0.1):
        super().__init__()
        s.word, s.pos, s.types = nn.Embedding(vocab, hidden), nn.Embedding(512, hidden), nn.Embedding(2, hidden)
        s.ln, s.p = nn.LayerNorm(hidden, eps=1e-12), p
        s.layers = nn.ModuleList(Layer(hidden, heads, inter, p) for _ in range(layers))
        s.pool, s.cls = nn.Linear(hidden, hidden), nn.Linear(hidden, labels)
    def forward(s, ids, mask):
        B, T = ids.shape
        x = s.word(ids) + s.pos(torch.arange(T))[None] + s.types(torch.zeros_like(ids))
        x = F.dropout(s.ln(x), s.p, s.training)
        bias = (1.0 - mask[:, None, None, :].float()) * -3.4028234663852886e38  # finfo(float32).min, as HF
        for layer in s.layers: x = layer(x, bias)
        return s.cls(F.dropout(torch.tanh(s.pool(x[:, 0])), s.p, s.training))

a = argparse.ArgumentParser()
a.add_argument("--preset", default="minilm"); a.add_argument("--batch", type=int, default=32); a.add_argument("--seq", type=int, default=64)
a.add_argument("--threads", type=int, default=2); a.add_argument("--steps", type=int, default=5); a.add_argument("--warmup", type=int, default=2)
a.add_argument("--json")
args = a.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)
cfg = PRESETS[args.preset]
model = Bert(**cfg).train()
no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or ".ln" in n or n.startswith("ln.")]
decay = [p for n, p in model.named_parameters() if not any(p is q for q in no_decay)]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-5)
ids = torch.randint(0, cfg["vocab"], (args.batch, args.seq)); mask = torch.ones(args.batch, args.seq, dtype=torch.long)
labels = torch.arange(args.batch) % 2
times = []
for i in range(args.warmup + args.steps):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(ids, mask), labels)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    loss.item()
    if i >= args.warmup: times.append(time.perf_counter() - t0)
C, I, L, T = cfg["hidden"], cfg["inter"], cfg["layers"], args.seq
flops = 3 * L * args.batch * T * (2 * (4 * C * C + 2 * C * I) + 4 * T * C)
med = statistics.median(times)
r = {"preset": args.preset, "batch": args.batch, "seq": T, "threads": args.threads, "torch": torch.__version__,
     "median_s": med, "min_s": min(times), "max_s": max(times), "samples_per_s": args.batch / med, "gflops": flops / med / 1e9}
print(json.dumps(r))
if args.json: json.dump(r, open(args.json, "w"))
