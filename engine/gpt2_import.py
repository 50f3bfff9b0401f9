"""GPT-2 weights from a Hugging Face folder -> a mypt checkpoint (how to start from real weights).

The folder is what `save_pretrained` writes: `config.json` and `model.safetensors` (or a
sharded `model.safetensors.index.json`, or `pytorch_model.bin`, read with weights_only).
Hugging Face's GPT-2 stores its matmuls as Conv1D, (in, out): they are transposed to Linear's
(out, in). Key names otherwise match ours (nanoGPT took them from GPT-2).

The vocabulary grows from GPT-2's 50,257 rows to 50,304: the 19 myPT tags (50257-50275) and the
unused padding rows. New rows start at the mean of GPT-2's embedding rows plus small noise
(a tenth of each dimension's spread, fixed seed): a tag then looks like an "average token" to
the model, so its logit is ordinary rather than huge or zero, and the noise tells the tags
apart so fine-tuning can give each its own meaning (Hewitt, "Initializing New Word
Embeddings for Pretrained Language Models", 2021).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint.native import CheckpointError, _read_json, _safe_torch_load, check_fits, save_checkpoint
from .errors import shown
from .model import GPT, GPTConfig
from .tokenizer import GPT2_BASE_VOCAB, GPT2_MODEL_VOCAB, gpt2

CONV1D = (".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight")
ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh", "gelu": "gelu"}
NEW_ROW_NOISE = 0.1  # noise std of a new row, as a fraction of each dimension's std over GPT-2's rows


class GPT2ImportError(CheckpointError):
    """A folder that is not a GPT-2 model mypt can take over."""


def read_hf_config(folder: Path) -> GPTConfig:
    """Our config for a Hugging Face GPT-2 config.json; what we cannot reproduce is an error."""
    f = folder / "config.json"
    if not f.is_file():
        raise GPT2ImportError(f"{folder} has no config.json: expected a Hugging Face GPT-2 folder")
    hf = _read_json(f)

    def need(ok: bool, why: str) -> None:
        if not ok:
            raise GPT2ImportError(f"{f}: {why}")

    need(hf.get("model_type", "gpt2") == "gpt2", f"model_type is {shown(hf.get('model_type'))}, expected 'gpt2'")
    need(hf.get("vocab_size") == GPT2_BASE_VOCAB,
         f"vocab_size is {shown(hf.get('vocab_size'))}, expected GPT-2's {GPT2_BASE_VOCAB} (mypt's gpt2 tokenizer)")
    for key, default in (("layer_norm_epsilon", 1e-5), ("resid_pdrop", 0.1), ("n_embd", 768), ("n_inner", None)):
        value = hf.get(key, default)
        need(value is None or type(value) in (int, float), f"{key} must be a number, got {shown(value)}")
    act = hf.get("activation_function", "gelu_new")
    need(isinstance(act, str) and act in ACTIVATIONS,
         f"activation_function {shown(act)} is not supported (use one of {', '.join(ACTIVATIONS)})")
    need(abs(hf.get("layer_norm_epsilon", 1e-5) - 1e-5) < 1e-12, "layer_norm_epsilon must be 1e-05")
    need(hf.get("scale_attn_weights", True), "scale_attn_weights = false is not supported")
    need(not hf.get("scale_attn_by_inverse_layer_idx", False), "scale_attn_by_inverse_layer_idx is not supported")
    n_embd = hf.get("n_embd", 768)
    need(hf.get("n_inner") in (None, 4 * n_embd), f"n_inner must be 4 * n_embd ({4 * n_embd})")
    try:
        return GPTConfig(n_layer=hf.get("n_layer", 12), n_head=hf.get("n_head", 12), n_embd=n_embd,
                         block_size=hf.get("n_positions", hf.get("n_ctx", 1024)), vocab_size=GPT2_MODEL_VOCAB,
                         dropout=float(hf.get("resid_pdrop", 0.1)), bias=True, mlp_type=ACTIVATIONS[act],
                         tie_weights=bool(hf.get("tie_word_embeddings", True)))
    except (TypeError, ValueError) as e:
        raise GPT2ImportError(f"{f}: {e}") from None


def read_hf_weights(folder: Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The state dict and the file(s) it came from; .bin files only through weights_only loading."""
    single, binary = folder / "model.safetensors", folder / "pytorch_model.bin"
    index = folder / "model.safetensors.index.json"
    if single.is_file():
        return _load_safetensors(folder, single.name), [single.name]
    if index.is_file():
        weight_map = _read_json(index).get("weight_map", {})
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise GPT2ImportError(f'{index}: "weight_map" must map each weight to a file name')
        files = sorted(set(weight_map.values()))
        sd: dict[str, torch.Tensor] = {}
        for name in files:
            sd.update(_load_safetensors(folder, name))
        return sd, files
    if binary.is_file():
        sd = _safe_torch_load(binary)
        if not isinstance(sd, dict):
            raise GPT2ImportError(f"{binary}: expected a state dict")
        return sd, [binary.name]
    raise GPT2ImportError(f"{folder} has no model.safetensors (nor model.safetensors.index.json, pytorch_model.bin)")


def _load_safetensors(folder: Path, name: str) -> dict[str, torch.Tensor]:
    """One safetensors file of the model folder (GPT2ImportError naming it when it cannot be read)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    f = folder / name
    if folder.resolve() not in f.resolve().parents:  # a weight_map naming ../ or an absolute path
        raise GPT2ImportError(f"{folder}: the weights file {name!r} is not inside the model folder")
    try:
        with open(f, "rb"):  # safetensors words a file it may not open as missing
            pass
        return load_file(str(f))
    except OSError as e:
        raise GPT2ImportError(f"{f} cannot be read: {e.strerror or e}") from None
    except SafetensorError as e:
        raise GPT2ImportError(f"{f} cannot be read: {e}") from None


def convert_hf_state(hf: dict[str, torch.Tensor], cfg: GPTConfig, *, seed: int = 0) -> dict[str, torch.Tensor]:
    """Hugging Face GPT-2 keys and shapes -> ours, with the vocabulary grown to vocab_size rows."""
    out: dict[str, torch.Tensor] = {}
    for key, value in hf.items():
        key = key.removeprefix("transformer.")
        if key.endswith((".attn.bias", ".attn.masked_bias")):  # causal-mask buffers of old checkpoints
            continue
        if key == "lm_head.weight":
            if cfg.tie_weights:
                continue  # the same matrix as wte
            out[key] = value.float()
            continue
        value = value.float()
        if key.endswith(CONV1D):
            value = value.t()
        out["transformer." + key] = value.contiguous()
    g = torch.Generator().manual_seed(seed)
    out["transformer.wte.weight"] = grow_rows(out["transformer.wte.weight"], cfg.vocab_size, g)
    if "lm_head.weight" in out:
        out["lm_head.weight"] = grow_rows(out["lm_head.weight"], cfg.vocab_size, g)
    return out


def grow_rows(table: torch.Tensor, rows: int, generator: torch.Generator) -> torch.Tensor:
    """Add rows at the mean of the existing ones plus noise at a tenth of each dimension's spread."""
    extra = rows - table.shape[0]
    if extra <= 0:
        return table
    mean, std = table.mean(0), table.std(0)
    new = mean + torch.randn(extra, table.shape[1], generator=generator) * std * NEW_ROW_NOISE
    return torch.cat([table, new.to(table.dtype)])


def import_gpt2(src: str | Path, out: str | Path, *, seed: int = 0) -> Path:
    """Convert a Hugging Face GPT-2 folder into a mypt checkpoint folder at `out` (step 0)."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise GPT2ImportError(f"{src} is not a folder")
    if out.exists():
        raise GPT2ImportError(f"{out} already exists: choose another --output or remove it first")
    cfg = read_hf_config(src)
    hf, files = read_hf_weights(src)
    try:
        state = convert_hf_state(hf, cfg, seed=seed)
    except (KeyError, ValueError, RuntimeError) as e:
        raise GPT2ImportError(f"{src}: the weights do not match its config.json: {e}") from None
    try:
        check_fits(cfg, state, src / "config.json", src / files[0])  # before a model of that size is allocated
    except CheckpointError as e:
        raise GPT2ImportError(f"{src}: the weights do not match its config.json: {e}") from None
    model = GPT(cfg)
    try:
        model.load_weights(state)
    except ValueError as e:
        raise GPT2ImportError(f"{src}: the weights do not match its config.json: {e}") from None
    source = {"kind": "huggingface_gpt2", "folder": str(src.resolve()), "files": files,
              "new_rows": f"{GPT2_BASE_VOCAB}-{cfg.vocab_size - 1}: mean of GPT-2's rows + N(0, "
                          f"({NEW_ROW_NOISE} * per-dimension std)^2), seed {seed}"}
    return save_checkpoint(out, model, tokenizer_state=gpt2().state(), step=0, extra={"imported_from": source})

