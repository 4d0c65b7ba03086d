"""Loads a checkpoint written by mixup-bert with Python transformers' BertForSequenceClassification
and fails unless every tensor is found and none is left over or mismatched."""
import logging, sys
import torch
from transformers import BertForSequenceClassification

path = sys.argv[1]
records = []
handler = logging.Handler()
handler.emit = lambda r: records.append(r) if r.levelno >= logging.WARNING else None
logging.getLogger("transformers").addHandler(handler)
model, info = BertForSequenceClassification.from_pretrained(path, output_loading_info=True)
problems = {k: v for k, v in info.items() if v}
print("loading info:", {k: list(v) for k, v in info.items()})
print("warnings:", [r.getMessage() for r in records])
print("num_labels:", model.config.num_labels, "id2label:", model.config.id2label)
with torch.no_grad():
    logits = model(input_ids=torch.tensor([[1, 5, 7, 2]]), attention_mask=torch.ones(1, 4, dtype=torch.long)).logits
print("logits:", logits.tolist())
ok = not problems and not records and model.config.num_labels == 2 and model.config.id2label[1] == "pos"
print("HF LOAD", "OK" if ok else "FAILED")
sys.exit(0 if ok else 1)
