"""The PyTorch side of bench/gpu/check.sh: a BertForSequenceClassification training loop (AdamW with
HF Trainer's no-decay groups, gradient clipping at 1.0, dropout on) at the same shapes as
`mixup-bert bench`, baseline and embedding mixup (word embeddings mixed, passed as inputs_embeds so
positions, types and LayerNorm apply once; union mask; λ-weighted loss), in three precisions:

  fp32  TF32 off, torch.optim.AdamW's default implementation;
  tf32  TF32 GEMMs, the same optimizer;
  bf16  what a practitioner runs today (issue 12's peer): torch.autocast(bfloat16), TF32 on for what
        autocast leaves in fp32, attn_implementation="sdpa", AdamW(fused=True); fp32 master weights.

Inference runs under torch.inference_mode (and autocast for bf16). GPU memory is reported two ways
per precision: the driver's view (torch.cuda.mem_get_info: total - free, what nvidia-smi shows and
what mixup-bert bench reports) and the caching allocator's peak reservation."""
import argparse, json, statistics, time
import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, BertConfig

p = argparse.ArgumentParser()
p.add_argument("--config", required=True)
p.add_argument("--batch-size", type=int, default=32)
p.add_argument("--seq-len", type=int, default=128)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--warmup", type=int, default=5)
p.add_argument("--precisions", default="fp32,tf32,bf16")
p.add_argument("--json")
a = p.parse_args()

cfg = BertConfig.from_json_file(a.config)
cfg.num_labels = 2
B, T = a.batch_size, a.seq_len
ids = torch.randint(0, cfg.vocab_size, (B, T), device="cuda")
mask = torch.ones(B, T, dtype=torch.long, device="cuda")
labels = torch.arange(B, device="cuda") % 2
beta = torch.distributions.Beta(torch.tensor(1.0), torch.tensor(1.0))


def build(precision):
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(cfg, attn_implementation="sdpa").cuda().train()
    assert model.config._attn_implementation == "sdpa", model.config._attn_implementation
    no_decay = [n for n, _ in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    groups = [{"params": [q for n, q in model.named_parameters() if n not in no_decay], "weight_decay": 0.01},
              {"params": [q for n, q in model.named_parameters() if n in no_decay], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=1e-5, betas=(0.9, 0.999), eps=1e-8, fused=precision == "bf16")
    return model, opt


def run_precision(precision):
    torch.backends.cuda.matmul.allow_tf32 = precision != "fp32"
    torch.backends.cudnn.allow_tf32 = precision != "fp32"
    model, opt = build(precision)
    autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16")

    def step(mode):
        opt.zero_grad(set_to_none=True)
        with autocast():
            if mode == "baseline":
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            else:
                perm = torch.randperm(B, device="cuda")
                lam = beta.sample().item()
                emb = model.bert.embeddings.word_embeddings(ids)
                mixed = lam * emb + (1 - lam) * emb[perm]
                logits = model(inputs_embeds=mixed, attention_mask=torch.maximum(mask, mask[perm])).logits.float()
                loss = lam * F.cross_entropy(logits, labels) + (1 - lam) * F.cross_entropy(logits, labels[perm])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()  # a host read per step, as mixup-bert reads its loss

    def infer():
        model.eval()
        with torch.inference_mode(), autocast():
            out = model(input_ids=ids, attention_mask=mask).logits.float().softmax(-1).cpu()
        model.train()
        return out

    out = {}
    for name, fn in (("train baseline", lambda: step("baseline")), ("train mixup", lambda: step("mixup")), ("inference", infer)):
        times = []
        for i in range(a.warmup + a.steps):
            torch.cuda.synchronize(); t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            if i >= a.warmup: times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        out[f"{name} {precision}"] = {"median_s": med, "min_s": min(times), "max_s": max(times), "samples_per_s": B / med}
        print(f"{name:<16} {precision:<5} median {med * 1000:8.2f} ms  ({min(times) * 1000:.2f}..{max(times) * 1000:.2f})  {B / med:9.1f} samples/s", flush=True)
    free, total = torch.cuda.mem_get_info()
    out[f"memory {precision}"] = {"driver_used_mib": (total - free) // 2**20, "allocator_peak_reserved_mib": torch.cuda.max_memory_reserved() // 2**20}
    print(f"memory {precision}: driver {(total - free) // 2**20} MiB in use, allocator peak reserved {torch.cuda.max_memory_reserved() // 2**20} MiB", flush=True)
    del model, opt
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return out


results = {}
for precision in a.precisions.split(","):
    results.update(run_precision(precision))
print("torch", torch.__version__, "on", torch.cuda.get_device_name(), "attention: sdpa")
if a.json:
    json.dump(results, open(a.json, "w"), indent=1)
