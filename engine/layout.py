"""Names fixed by the file formats and the choices every layer shows, importable without torch.

The app, the CLI and the engine read these from here, so a file name or a choice list is
written once (the CLI's `--help` and the app start without loading torch).
"""

from __future__ import annotations

# a run folder: checkpoints/<run>/
RUN_FILE = "run.json"  # how the run was started
CONFIG_FILE = "config.toml"  # the resolved config
EVENTS_FILE = "events.jsonl"  # the event stream
AUDIT_FILE = "audit.jsonl"  # which episode trained at which step
CONSOLE_LOG = "console.log"  # a detached run's stdout and stderr
BEST_DIR = "best"  # the checkpoint with the lowest val loss
STEP_PREFIX = "step_"  # step_000500/: a checkpoint per save

# a checkpoint folder
WEIGHTS_FILE = "model.safetensors"
META_FILE = "meta.json"
TRAIN_STATE_FILE = "train_state.pt"

# a prepared dataset (episode_indexed_sft_v1)
DATASET_FORMAT = "episode_indexed_sft_v1"
STREAM_FORMAT = "token_stream_v1"  # a pretraining dataset: documents as one stream of tokens, in shards
SPLITS = ("train", "val")
TOKENS_FILE = "tokens.bin"
MASK_FILE = "mask.bin"
INDEX_FILE = "episodes.idx"
EPISODES_FILE = "episodes.jsonl"
METADATA_FILE = "dataset_metadata.json"
TOKENIZER_FILE = "tokenizer_state.json"
TEMP_PREFIX = ".mypt-tmp-"  # folders and files being written beside their final name

# choices
KINDS = ("chat", "tool")  # what `mypt prepare` makes
TOKENIZATIONS = ("gpt2", "char")
POS_ENCODINGS = ("learned", "rope")
MLP_TYPES = ("gelu", "gelu_tanh", "swiglu")
NORM_TYPES = ("layernorm", "rmsnorm")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PRESET_NAMES = ("chat", "creative", "factual", "code", "deterministic")  # engine.generate.PRESETS
