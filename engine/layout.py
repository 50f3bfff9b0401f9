"""Names fixed by the file formats and the choices every layer shows, importable without torch.

The app, the CLI and the engine read these from here, so a file name or a choice list is
written once (the CLI's `--help` and the app start without loading torch).
"""

from __future__ import annotations

from enum import Enum

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


class SkipReason(str, Enum):
    """Why an episode is rejected, as the category prepare counts it: the values are the keys of
    `skipped.by_reason` in dataset_metadata.json, so they are part of the dataset format."""

    NOT_UTF8 = "not valid UTF-8"
    INVALID_JSON = "invalid JSON"
    TOO_DEEP = "JSON nested too deeply"
    NOT_OBJECT = "not a JSON object"
    NO_MESSAGES = "no messages"
    MALFORMED_MESSAGE = "malformed message"
    UNKNOWN_ROLE = "unknown role"
    MISPLACED_SYSTEM = "misplaced system message"
    MISPLACED_CONTEXT = "misplaced context"
    CONTENT_NOT_STRING = "content is not a string"
    FIELD_NOT_STRING = "field is not a string"
    EMPTY_CONTENT = "empty content"
    TOOL_CALL = "invalid tool call"
    TOOL_CALL_JSON = "invalid tool-call JSON"
    NO_ASSISTANT = "no assistant turn"
    INVALID_ID = "invalid episode_id"
    INVALID_META = "invalid meta"
    NO_SUPERVISED = "no supervised tokens"  # rendered, but the mask trains on nothing (prepare)
    DUPLICATE_ID = "duplicate episode_id"  # found by prepare across the whole input
    OTHER = "other"  # an input that cannot be read at all (prepare refuses it before reading)


# sizes past any model this trainer can hold: a typo (an extra zero or three) in a config or in a
# checkpoint's metadata is refused by name, before anything is allocated; within them a model
# can still be too large as a whole (MAX_PARAMS, and the memory a machine has)
MAX_LAYERS = 1024
MAX_EMBD = 65536
MAX_HEADS = 1024
MAX_BLOCK_SIZE = 2**20
MAX_VOCAB = 2**22
MAX_BATCH = 2**16
MAX_PARAMS = 10**12  # a trillion parameters: 16 TB of weights, gradients and AdamW state

# choices
KINDS = ("chat", "tool")  # what `mypt prepare` makes
TOKENIZATIONS = ("gpt2", "char")
POS_ENCODINGS = ("learned", "rope")
MLP_TYPES = ("gelu", "gelu_tanh", "swiglu")
NORM_TYPES = ("layernorm", "rmsnorm")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PRESET_NAMES = ("chat", "creative", "factual", "code", "deterministic")  # engine.generate.PRESETS
