"""MyPT's weighted loss masks (`--weighted_mask`): a loss weight per token, stored beside the 0/1 mask
as `mask_weighted.bin` (float32, MyPT's file name, so MyPT's loader reads it too).

The tokens that steer a reply weigh more (MyPT's pipeline guide, section 14): the closing
`</myPT_assistant>` and `<myPT_eot>` 2.0 (stopping), `<myPT_toolcall>` / `</myPT_toolcall>` 2.0
(acting), `<myPT_think>`, `<myPT_cite>` and their closing tags 1.5; any other trained token 1.0;
a token the mask does not train 0. (MyPT's own prepare applies the weights only together with
--enable_packing; mypt applies them whenever they are asked for.)
"""

from __future__ import annotations

import numpy as np

from ..tokenizer import Tokenizer

WEIGHTS = {"/assistant": 2.0, "eot": 2.0, "toolcall": 2.0, "/toolcall": 2.0,
           "think": 1.5, "/think": 1.5, "cite": 1.5, "/cite": 1.5}


class LossWeights:
    """The weight of every token id under a tokenizer: 1.0, or the tag's weight."""

    def __init__(self, tok: Tokenizer) -> None:
        ids = [tok.tag_id(name) for name in WEIGHTS]
        self.table = np.ones(max(ids) + 1, dtype=np.float32)
        self.table[ids] = list(WEIGHTS.values())

    def of(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """float32 weights of the tokens: the table's weight where the mask trains, 0 elsewhere."""
        ids = np.asarray(ids, dtype=np.int64)
        w = np.ones(len(ids), dtype=np.float32)
        special = ids < len(self.table)
        w[special] = self.table[ids[special]]
        return np.where(np.asarray(mask) != 0, w, np.float32(0))
