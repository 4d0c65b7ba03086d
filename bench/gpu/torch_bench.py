"""The PyTorch side of bench/gpu/check.sh: a BertForSequenceClassification training loop (AdamW with
HF Trainer's no-decay groups, gradient clipping at 1.0, dropout on) at the same shapes as
`mixup-bert bench`, baseline and embedding mixup (word embeddings mixed, passed as inputs_embeds so
positions, types and LayerNorm apply once; union mask; λ-weighted loss), fp32 and TF32.
transformers' default attention implementation (SDPA) is used: what a user of it gets."""
import argparse, json, statistics, time
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForSequenceClassification

p = argparse.ArgumentParser()
p.add_argument("--config", required=True)
p.add_argument("--batch-size", type=int, default=32)
p.add_argument("--seq-len", type=int, default=128)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--warmup", type=int, default=5)
p.add_argument("--json")
a = p.parse_args()

torch.manual_seed(0)
cfg = BertConfig.from_json_file(a.config)
cfg.num_labels = 2
model = BertForSequenceClassification(cfg).cuda().train()
no_decay = [n for n, _ in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
groups = [{"params": [q for n, q in model.named_parameters() if n not in no_decay], "weight_decay": 0.01},
          {"params": [q for n, q in model.named_parameters() if n in no_decay], "weight_decay": 0.0}]
opt = torch.optim.AdamW(groups, lr=1e-5, betas=(0.9, 0.999), eps=1e-8)
B, T = a.batch_size, a.seq_len
ids = torch.randint(0, cfg.vocab_size, (B, T), device="cuda")
mask = torch.ones(B, T, dtype=torch.long, device="cuda")
labels = torch.arange(B, device="cuda") % 2
beta = torch.distributions.Beta(torch.tensor(1.0), torch.tensor(1.0))

def step(mode):
    opt.zero_grad(set_to_none=True)
    if mode == "baseline":
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    else:
        perm = torch.randperm(B, device="cuda")
        lam = beta.sample().item()
        emb = model.bert.embeddings.word_embeddings(ids)
        mixed = lam * emb + (1 - lam) * emb[perm]
        logits = model(inputs_embeds=mixed, attention_mask=torch.maximum(mask, mask[perm])).logits
        loss = lam * F.cross_entropy(logits, labels) + (1 - lam) * F.cross_entropy(logits, labels[perm])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()  # a host read per step, as mixup-bert reads its loss

def infer():
    model.eval()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask).logits.softmax(-1).cpu()
    model.train()
    return out

results = {}
for tf32 in ("off", "on"):
    torch.backends.cuda.matmul.allow_tf32 = tf32 == "on"
    torch.backends.cudnn.allow_tf32 = tf32 == "on"
    for name, fn in (("train baseline", lambda: step("baseline")), ("train mixup", lambda: step("mixup")), ("inference", infer)):
        times = []
        for i in range(a.warmup + a.steps):
            torch.cuda.synchronize(); t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            if i >= a.warmup: times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        r = {"median_s": med, "min_s": min(times), "max_s": max(times), "samples_per_s": B / med}
        results[f"{name} tf32={tf32}"] = r
        print(f"{name:<16} tf32={tf32:<3} median {med * 1000:8.2f} ms  ({min(times) * 1000:.2f}..{max(times) * 1000:.2f})  {B / med:9.1f} samples/s")
print("torch", torch.__version__, "on", torch.cuda.get_device_name(), "attention:", model.config._attn_implementation)
if a.json:
    json.dump(results, open(a.json, "w"), indent=1)
