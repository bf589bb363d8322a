"""Test oracles for the engine: plain attention over keys placed at explicit view positions, and
scenarios of blocks and rows that any attention backend must get right."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hivethink.engine.attention import RowSpec, reserve_rows
from hivethink.engine.attention_backends import attention_backend
from hivethink.engine.cache import KVCache
from hivethink.engine.rope import RopeTable, apply_rotation
from hivethink.models.config import ModelConfig


def reference_attention(q: torch.Tensor, q_pos: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                        k_pos: torch.Tensor, rope: RopeTable) -> torch.Tensor:
    """Plain attention of one query per row: q [R, Hq, D] at view positions q_pos [R] over
    unrotated keys/values [R, T, Hkv, D] placed at explicit view positions k_pos [R, T]
    (padding: k_pos = -1) -> [R, Hq * D], in fp32."""
    R, Hq, D = q.shape
    Hkv = keys.shape[2]
    qc, qs = rope.lookup(q_pos)
    qr = apply_rotation(q.float(), qc[:, None], qs[:, None])
    kc, ks = rope.lookup(k_pos.clamp(min=0))
    kr = apply_rotation(keys.float(), kc[:, :, None], ks[:, :, None]).repeat_interleave(Hq // Hkv, dim=2)
    vv = values.float().repeat_interleave(Hq // Hkv, dim=2)
    s = torch.einsum("rhd,rthd->rht", qr, kr) * D**-0.5
    s = s.masked_fill((k_pos < 0)[:, None, :], float("-inf"))
    return torch.einsum("rht,rthd->rhd", s.softmax(-1), vv).reshape(R, Hq * D)


def cfg(n_heads: int = 6, n_kv: int = 2, d: int = 16) -> ModelConfig:
    return ModelConfig(family="llama", vocab_size=10, hidden_size=n_heads * d, n_layers=1, n_heads=n_heads,
                       n_kv_heads=n_kv, head_dim=d, intermediate_size=8, rms_eps=1e-6, tie_embeddings=True,
                       attention_bias=False, qk_norm=False, rope_type="default", rope_theta=10000.0,
                       rope_scaling=None, max_positions=4096)


def inv_freq(d: int) -> torch.Tensor:
    return 1.0 / (10000.0 ** (torch.arange(0, d, 2).double() / d))


def fill(cache: KVCache, rope: RopeTable, block, raw_k: torch.Tensor, raw_v: torch.Tensor) -> None:
    """Write raw (unrotated) keys into a block, rotated to block-local positions."""
    n = raw_k.shape[0]
    page, off = cache.slots(block, block.length, n)
    cos, sin = rope.lookup(torch.arange(block.length, block.length + n, device=cache.device))
    cache.k[0][page, :, off] = apply_rotation(raw_k, cos[:, None], sin[:, None])
    cache.v[0][page, :, off] = raw_v
    cache.commit(block, [0] * n, self_contained=False)


@dataclass
class Scenario:
    """Blocks of given lengths, rows (view by block names, new tokens, group), random tensors."""

    lengths: dict[str, int]
    views: list[list[str]]
    n_new: list[int]
    groups: list[int]
    heads: tuple[int, int] = (6, 2)
    d: int = 16

    def run(self, backend: str, visibility: str, *, device: str = "cpu", dtype: torch.dtype = torch.float32,
            seed: int = 0, page_size: int = 8, **plan_kw) -> torch.Tensor:
        """The backend's output for every new token, in row order [T, Hq * D] (fp32, on CPU)."""
        t = self.tensors(seed)
        Hq, Hkv = self.heads
        c = cfg(Hq, Hkv, self.d)
        be = attention_backend(torch.device(device), backend)
        rope = RopeTable(inv_freq(self.d), 1.0, dtype, torch.device(device))
        cache = KVCache(c, dtype=dtype, device=device, page_size=page_size, pages=4, head_major=be.head_major)
        blocks = {}
        for name, n in self.lengths.items():  # same order in every cache: same pages
            blocks[name] = cache.new_block(name)
            if n:
                fill(cache, rope, blocks[name], t["k"][name].to(device, dtype), t["v"][name].to(device, dtype))
        rows = [RowSpec([blocks[n] for n in v], k, g, visibility)
                for v, k, g in zip(self.views, self.n_new, self.groups, strict=True)]
        T = sum(self.n_new)
        reserve_rows(cache, rows)
        plan = be.plan(cache, rope, rows, T, **plan_kw)
        self.last_plan = plan  # for tests of the plan's shape
        out = be.attend(cache, 0, plan, t["q"].to(device, dtype), t["k_new"].to(device, dtype),
                        t["v_new"].to(device, dtype))
        return out.float().cpu()

    def tensors(self, seed: int) -> dict:
        Hq, Hkv = self.heads
        g = torch.Generator().manual_seed(seed)
        T = sum(self.n_new)
        return {"k": {n: torch.randn(L, Hkv, self.d, generator=g) for n, L in self.lengths.items()},
                "v": {n: torch.randn(L, Hkv, self.d, generator=g) for n, L in self.lengths.items()},
                "q": torch.randn(T, Hq, self.d, generator=g), "k_new": torch.randn(T, Hkv, self.d, generator=g),
                "v_new": torch.randn(T, Hkv, self.d, generator=g)}

    def reference(self, visibility: str, seed: int = 0) -> torch.Tensor:
        """Every new token over its view's keys placed explicitly: own block causal; another
        row's block with that row's new tokens (instant) or without them (lagged)."""
        t = self.tensors(seed)
        Hq, Hkv = self.heads
        first, at = [], 0
        for n in self.n_new:
            first.append(at)
            at += n
        writer = {v[-1]: r for r, v in enumerate(self.views)}
        qs, qpos, keys, vals = [], [], [], []
        for r, view in enumerate(self.views):
            for m in range(self.n_new[r]):
                kk, vv = [], []
                for name in view:
                    kk.append(t["k"][name])
                    vv.append(t["v"][name])
                    w = writer.get(name)
                    if w is None:
                        continue
                    if w == r:  # own block: own new tokens up to this one
                        kk.append(t["k_new"][first[r] : first[r] + m + 1])
                        vv.append(t["v_new"][first[r] : first[r] + m + 1])
                    elif visibility == "instant" and self.groups[w] == self.groups[r]:
                        kk.append(t["k_new"][first[w] : first[w] + self.n_new[w]])
                        vv.append(t["v_new"][first[w] : first[w] + self.n_new[w]])
                k_cat, v_cat = torch.cat(kk), torch.cat(vv)
                keys.append(k_cat)
                vals.append(v_cat)
                qs.append(t["q"][first[r] + m])
                qpos.append(k_cat.shape[0] - 1)
        L = max(k.shape[0] for k in keys)
        K = torch.zeros(len(keys), L, Hkv, self.d)
        V = torch.zeros(len(keys), L, Hkv, self.d)
        P = torch.full((len(keys), L), -1)
        for i, (k, v) in enumerate(zip(keys, vals, strict=True)):
            K[i, : k.shape[0]], V[i, : v.shape[0]], P[i, : k.shape[0]] = k, v, torch.arange(k.shape[0])
        rope = RopeTable(inv_freq(self.d), 1.0, torch.float32, torch.device("cpu"))
        return reference_attention(torch.stack(qs), torch.tensor(qpos), K, V, P, rope)


LENGTHS = {"common": 37, "h1": 5, "a": 13, "b": 1, "c": 22, "h2": 3, "d": 0, "x": 9, "y": 0, "z": 0, "p": 21}
SCENARIOS = {
    # 4 workers of one hive: different orders and subsets, unequal blocks, an empty one, GQA 3
    "hive": Scenario(LENGTHS, [["common", "h1", "b", "c", "h2", "a"], ["common", "h1", "a", "c", "h2", "b"],
                               ["common", "a", "b", "c"], ["common", "a", "b", "d"]], [1, 1, 1, 1], [0, 0, 0, 0]),
    # contiguous views, GQA 4
    "contiguous": Scenario(LENGTHS, [["common", "b", "c", "d", "a"], ["common", "a", "c", "d", "b"],
                                     ["common", "a", "b", "d", "c"], ["common", "a", "b", "c", "d"]],
                           [1, 1, 1, 1], [0, 0, 0, 0], heads=(8, 2)),
    # several new tokens per row (headers and checks), causal in the own block, no GQA
    "chunks": Scenario(LENGTHS, [["common", "h1", "b", "a"], ["common", "h1", "a", "b"], ["common", "c", "d"]],
                       [3, 9, 1], [0, 0, 0], heads=(4, 4)),
    # two jobs in one pass: a hive of two and a plain generation; they must not see each other
    "two-jobs": Scenario(LENGTHS, [["common", "h1", "b", "h2", "a"], ["common", "h1", "a", "h2", "b"],
                                   ["x", "y"]], [2, 1, 4], [0, 0, 7]),
    # a 40-token chunk beside three decoding jobs and a hive: groups of very different shapes,
    # which the blocks backend computes in separate parts; and a prompt chunk (20 tokens after 21
    # in a one-block view), which it attends densely
    "prefill-beside-decodes": Scenario(LENGTHS, [["common", "a"], ["h1", "b"], ["c", "d"], ["x", "y"],
                                                 ["common", "h2", "z"], ["common", "z", "h2"], ["p"]],
                                       [1, 1, 1, 40, 1, 2, 20], [1, 2, 3, 7, 4, 4, 9]),
    # plain generations decoding (one-row groups over one-block views, attended densely: one
    # token, a few tokens, an empty block) beside a hive
    "decodes": Scenario(LENGTHS, [["common", "h1", "a"], ["common", "a", "h1"], ["p"], ["c"], ["x"], ["y"]],
                        [1, 1, 1, 3, 2, 1], [0, 0, 1, 2, 3, 4]),
}


def explicit_logits(runner, view, visible: list[int], token: int) -> torch.Tensor:
    """The model's logits for one new ``token`` of a row, computed plainly: at every layer its
    query attends to the first ``visible[i]`` keys of each block ``view[i]`` as the cache holds
    them, each re-rotated to its explicit view position, then to its own fresh key (the row's own
    block is ``view[-1]``; ``visible[-1]`` of its tokens come before this one). fp32."""
    from hivethink.engine.rope import apply_rotation

    cache, rope, dec = runner.cache, runner.rope, runner.decoder
    offsets, o = [], 0
    for n in visible:
        offsets.append(o)
        o += n
    pos = o  # the new token's view position

    def attend(layer, q, k, v):
        ks, vs = [], []
        for block, start, n in zip(view, offsets, visible, strict=True):
            if n == 0:
                continue
            kb, vb = cache.read(block, layer)
            cos, sin = rope.lookup(torch.full((n,), start), scaled=False)
            ks.append(apply_rotation(kb[:n].float(), cos[:, None], sin[:, None]))
            vs.append(vb[:n].float())
        qc, qs = rope.lookup(torch.tensor([pos]))
        kq = apply_rotation(k.float(), qc[:, None], qs[:, None])
        keys = torch.cat(ks + [kq])  # [T, Hkv, D]
        vals = torch.cat(vs + [v.float()])
        qr = apply_rotation(q.float(), qc[:, None], qs[:, None])  # [1, Hq, D]
        G = q.shape[1] // keys.shape[1]
        keys, vals = keys.repeat_interleave(G, dim=1), vals.repeat_interleave(G, dim=1)
        s = torch.einsum("qhd,thd->qht", qr, keys) * q.shape[-1] ** -0.5
        out = torch.einsum("qht,thd->qhd", s.softmax(-1), vals)
        return out.reshape(1, -1).to(q.dtype)

    hidden = dec.forward(torch.tensor([token]), attend)
    return dec.logits(hidden[0])
