"""The registry of model kinds: each kind declared once, with its role, its
parameters (type, default, bounds) and where its trainer and loader live.

Everything else reads it. The SQL side reads the table vk.model_kinds, which
`sync` fills from here at every upgrade: vk.train and vk.schedule_train check
parameters against it (vk._train_params), vk.reembed, vk.add_model and
vk.activate check roles against it. The workers import a kind's trainer and
loader from the dotted paths here, on first use (they pull in torch, gensim
and scikit-learn). The command line takes its choices and help from here.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import psycopg
from psycopg.types.json import Jsonb

from vectorkeep.sql import query

Role = Literal["encoder", "inverter", "map", "next-vector", "vectors"]
ParamType = Literal["integer", "number", "string", "boolean", "integers", "object", "model", "gates"]

ROLES: dict[Role, str] = {
    "encoder": "turns text into vectors: collections are embedded and searched with it",
    "inverter": "turns vectors back into text (vk.recover_adopted)",
    "map": "places a collection's vectors on a 2-D map (vk.coordinates, vk.map_gaps)",
    "next-vector": "predicts the next vector of an ordered group (vk.predict_next)",
    "vectors": "vectors made elsewhere and adopted (vk.adopt): searchable, never computed here",
}


@dataclass(frozen=True)
class Param:
    """One parameter of a kind. A `model` parameter names a version (name or name@version)
    whose kind must have one of `roles`; `gates` is {"metric": min or {"min", "max"}}."""

    name: str
    type: ParamType
    default: Any = None
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    roles: tuple[Role, ...] = ()
    kinds: tuple[str, ...] = ()

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "help": self.help}
        for key in ("default", "min", "max"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.choices:
            out["choices"] = list(self.choices)
        if self.roles:
            out["roles"] = list(self.roles)
        if self.kinds:
            out["kinds"] = list(self.kinds)
        return out

    def describe(self) -> str:
        """One line of help: `epochs (integer 1..1000, default 15): passes over the data`."""
        what: str = self.type
        if self.choices:
            what = "|".join(map(str, self.choices))
        elif self.min is not None or self.max is not None:
            what += f" {_number(self.min)}..{_number(self.max)}"
        default = "" if self.default is None else f", default {self.default}"
        return f"{self.name} ({what}{default}): {self.help}"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


@dataclass(frozen=True)
class Kind:
    name: str
    role: Role
    help: str
    params: tuple[Param, ...] = ()
    # "module:function" taking a workers.training.TrainingRun, returning a Trained; None: not trained here.
    trainer: str | None = None
    # "module:function" taking (params, artifact), returning an Encoder; None: nothing to load as an encoder.
    loader: str | None = None
    # "module:function" taking (version, artifact, encoder, options), returning a
    # workers.inverter.Inverter; for kinds of role inverter.
    inverter: str | None = None

    @property
    def trainable(self) -> bool:
        return self.trainer is not None

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params if p.default is not None}

    def with_defaults(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The params with every default filled in (a job queued before defaults were recorded)."""
        return {**self.defaults(), **params}

    def describe(self) -> str:
        lines = [f"{self.name} ({self.role}): {self.help}"]
        lines += [f"  {p.describe()}" for p in self.params]
        return "\n".join(lines)


def _int(name: str, default: int | None, lo: int, hi: int, help_: str) -> Param:
    return Param(name, "integer", default, help_, lo, hi)


def _num(name: str, default: float | None, lo: float, hi: float, help_: str) -> Param:
    return Param(name, "number", default, help_, lo, hi)


SEED = _int("seed", 42, 0, 2**31 - 1, "random seed: the same data and seed give the same model")
LR = _num("lr", 1e-3, 1e-7, 1.0, "learning rate")
HOLDOUT = _num("holdout", 0.1, 0.0, 0.5, "fraction of rows held out of training, for the evaluation")
ACTIVATE = Param(
    "activate",
    "gates",
    None,
    'activate for search once re-embedded if these metrics pass, e.g. {"agreement@10": 0.5}',
)
GATES = Param(
    "gates",
    "gates",
    None,
    'gates vk.activate checks whenever this version is activated, e.g. {"latency_ms": {"max": 5}}',
)
KEEP = _int(
    "keep",
    None,
    1,
    100,
    "after training, keep the newest N versions of this name embedded in the collection and retire older ones "
    "(never the search default)",
)
# Every job that trains an encoder takes these.
TRAIN_JOB = (HOLDOUT, ACTIVATE, KEEP)
STORAGE = Param(
    "storage",
    "string",
    None,
    "precision of the version's HNSW index and searches: vector (the default) or halfvec (half the index size)",
    choices=("vector", "halfvec"),
)
MAX_FEATURES = _int("max_features", 4096, 16, 200_000, "largest vocabulary kept (most frequent terms)")
MIN_DF = _int("min_df", 2, 1, 1_000_000, "a term must occur in at least this many rows")
SOURCE_ENCODER = Param(
    "source",
    "model",
    None,
    "the version whose vectors it learns from (default: the collection's search model)",
    roles=("encoder", "vectors"),
)
HIDDEN = Param("hidden", "integers", [256, 128], "sizes of the hidden layers", 1, 8192)

# vec2text's T5s (inverter and corrector): where they start from ...
T5_START = (
    Param("t5", "string", None, "a local T5 to start from (default: a tiny T5 trained from scratch)"),
    Param("t5_config", "object", None, "overrides of the tiny T5's configuration"),
)
# ... what they learn from beyond the collection, and where.
VEC2TEXT_DATA = (
    Param(
        "extra_text",
        "string",
        "none",
        "offline texts added to the collection's pairs (embedded with the same encoder): standard-library "
        "docstring lines, or the sample corpus' sentences",
        choices=("none", "docstrings", "sentences"),
    ),
    _int("max_extra", 2000, 1, 1_000_000, "extra texts at most"),
    Param(
        "device",
        "string",
        "auto",
        "where it trains: auto (a GPU when the worker has one, else the CPU), cpu or cuda",
        choices=("auto", "cpu", "cuda"),
    ),
)


def _api_kind(
    name: str,
    help_: str,
    *,
    base_url: str,
    key_env: str | None,
    limits: tuple[int, int, int, int, int],
    extra: tuple[Param, ...] = (),
) -> Kind:
    """An encoder behind an HTTP API (workers/families/text/api.py). limits: the provider's published
    requests and tokens a minute for a first paid tier, inputs and tokens a request, tokens a text."""
    rpm, tpm, max_inputs, max_request_tokens, max_input_tokens = limits
    key = (
        (
            Param(
                "api_key_env",
                "string",
                key_env,
                "the variable the worker reads the API key from (never stored in the database); empty: no key",
            ),
            Param(
                "api_key_file",
                "string",
                None,
                "a file holding the key (a Docker or Kubernetes secret), read instead of api_key_env",
            ),
        )
        if key_env
        else ()
    )
    return Kind(
        name,
        "encoder",
        help_,
        (
            Param("model", "string", None, "the provider's model name"),
            Param("base_url", "string", base_url, "the API's base URL"),
            _int("dimensions", None, 1, 65_536, "dimensions to ask for (models that shorten vectors)"),
            *key,
            _int("requests_per_minute", rpm, 0, 100_000_000, "requests a minute at most (0: no limit): your account's"),
            _int("tokens_per_minute", tpm, 0, 10_000_000_000, "tokens a minute at most (0: no limit): your account's"),
            _int("max_inputs", max_inputs, 1, 100_000, "texts a request"),
            _int("max_request_tokens", max_request_tokens, 0, 100_000_000, "tokens a request (0: no limit)"),
            _int(
                "max_input_tokens",
                max_input_tokens,
                0,
                10_000_000,
                "the model's window: longer texts are cut (at 3 characters a token) and flagged truncated",
            ),
            _int("concurrency", 4, 1, 64, "requests in flight at most; halves on a 429, grows back after 20 successes"),
            _num("timeout", 30.0, 0.1, 600.0, "seconds a request may take"),
            _num("max_wait", 2.0, 0.0, 60.0, "longest wait for the per-minute budgets in a batch (else: deferred)"),
            _int("retries", 2, 0, 10, "quick retries of a failed request before its rows are deferred"),
            *extra,
            STORAGE,
        ),
        loader=f"vectorkeep.workers.families.text.api:load_{name}",
    )


API_KINDS: tuple[Kind, ...] = (
    _api_kind(
        "openai",
        "any OpenAI-compatible embeddings endpoint (OpenAI, Azure, vLLM, LiteLLM, ...), POST {base_url}/embeddings",
        base_url="https://api.openai.com/v1",
        key_env="OPENAI_API_KEY",
        limits=(3_000, 1_000_000, 2048, 300_000, 8191),
    ),
    _api_kind(
        "voyage",
        "Voyage AI embeddings, POST {base_url}/embeddings",
        base_url="https://api.voyageai.com/v1",
        key_env="VOYAGE_API_KEY",
        limits=(2_000, 3_000_000, 1000, 120_000, 32_000),
        extra=(
            Param(
                "input_type",
                "string",
                "document",
                "what Voyage is told the texts are",
                choices=("document", "query"),
            ),
        ),
    ),
    _api_kind(
        "ollama",
        "a model served by Ollama, POST {base_url}/api/embed (no key)",
        base_url="http://localhost:11434",
        key_env=None,
        limits=(0, 0, 64, 0, 2048),
    ),
)
# Names a parameter holding a key would have: refused, the key belongs in the worker's environment.
SECRET_PARAMS = ("api_key", "key", "token", "secret", "password", "authorization")

KINDS: tuple[Kind, ...] = (
    Kind(
        "sentence-transformers",
        "encoder",
        "a sentence-transformers model, a Hugging Face name or a local path (vectorkeep models register)",
        (Param("source", "string", None, "Hugging Face name or local path"),),
        loader="vectorkeep.workers.families.text.sentence_transformers:load",
    ),
    Kind(
        "hf-mean-pool",
        "encoder",
        "any Hugging Face encoder, mean of its last hidden states (vectorkeep models register)",
        (
            Param("source", "string", None, "Hugging Face name or local path"),
            _int("max_length", 256, 8, 8192, "tokens per text (longer texts are chunked)"),
            _int("batch_size", 8, 1, 4096, "texts per forward pass"),
        ),
        loader="vectorkeep.workers.families.text.hf_mean_pool:load",
    ),
    Kind(
        "tfidf",
        "encoder",
        "TF-IDF, projected to a dense space by an uncentred SVD or PCA, trained here",
        (
            MAX_FEATURES,
            MIN_DF,
            Param("reduce", "string", "svd", "projection to a dense space", choices=("svd", "pca", "none")),
            _int("dim", 128, 2, 2000, "dimensions after the projection (at most the vocabulary)"),
            _int("batch_size", 512, 16, 100_000, "rows per pass batch"),
            *TRAIN_JOB,
            STORAGE,
        ),
        trainer="vectorkeep.workers.families.tfidf.trainer:train",
        loader="vectorkeep.workers.families.tfidf.encoder:load",
    ),
    Kind(
        "doc2vec",
        "encoder",
        "gensim Doc2Vec, trained here",
        (
            _int("vector_size", 64, 8, 2000, "dimensions"),
            _int("epochs", 20, 1, 1000, "passes over the text"),
            _int("min_count", 2, 1, 1_000_000, "a word must occur this often to be learnt"),
            _int("window", 5, 1, 50, "context window in words"),
            Param("dm", "integer", 1, "1: distributed memory, 0: distributed bag of words", choices=(0, 1)),
            SEED,
            _int("infer_epochs", 20, 1, 1000, "passes when encoding a new text"),
            *TRAIN_JOB,
            STORAGE,
        ),
        trainer="vectorkeep.workers.families.doc2vec.trainer:train",
        loader="vectorkeep.workers.families.doc2vec.encoder:load",
    ),
    Kind(
        "tfidf-mlp",
        "encoder",
        "TF-IDF into a small torch network distilled from a teacher's vectors; its dimension is the teacher's",
        (
            MAX_FEATURES,
            MIN_DF,
            HIDDEN,
            _int("epochs", 15, 1, 1000, "passes over the (text, vector) pairs"),
            _int("batch_size", 64, 1, 100_000, "pairs per step"),
            LR,
            SEED,
            _int("shuffle_buffer", 2048, 1, 10_000_000, "pairs shuffled together"),
            Param(
                "teacher",
                "model",
                None,
                "the encoder whose vectors it learns (default: the collection's search model)",
                roles=("encoder",),
            ),
            *TRAIN_JOB,
            STORAGE,
        ),
        trainer="vectorkeep.workers.families.tfidf.mlp_trainer:train",
        loader="vectorkeep.workers.families.tfidf.mlp_encoder:load",
    ),
    Kind(
        "vec2text-inverter",
        "inverter",
        "a vec2text inverter (a T5 decoder) for one Hugging Face encoder version, trained here or registered",
        (
            _int("epochs", 5, 1, 1000, "passes over the (text, vector) pairs"),
            _int("batch_size", 16, 1, 4096, "pairs per step"),
            LR,
            _int("max_length", 32, 4, 512, "tokens generated"),
            _int("num_repeat_tokens", 4, 1, 64, "length of the vector's prefix to the decoder"),
            SEED,
            *T5_START,
            Param(
                "encoder",
                "model",
                None,
                "the encoder version it inverts (default: the collection's search model)",
                roles=("encoder",),
                kinds=("sentence-transformers", "hf-mean-pool"),
            ),
            *VEC2TEXT_DATA,
            HOLDOUT,
        ),
        trainer="vectorkeep.workers.families.vec2text.trainer:train",
        inverter="vectorkeep.workers.families.vec2text.inverter:load_vec2text",
    ),
    # Role inverter for want of a better one: a corrector only rewrites its inverter's guesses, so its
    # artifact carries that inverter's, and a version inverts on its own (method vec2text-corrector).
    Kind(
        "vec2text-corrector",
        "inverter",
        "a vec2text corrector (a T5) for one vec2text inverter: rewrites the inverter's guess from the target "
        "vector and the guess's own, step after step; trained here or registered",
        (
            _int("epochs", 5, 1, 1000, "passes over the (text, vector) pairs, the inverter guessing each anew"),
            _int("batch_size", 16, 1, 4096, "pairs per step"),
            LR,
            _int("num_repeat_tokens", 4, 1, 64, "length of each vector's prefix to the corrector"),
            _int("steps", 4, 0, 1000, "correction steps when recovering (a recovery's steps option overrides)"),
            SEED,
            *T5_START,
            Param(
                "inverter",
                "model",
                None,
                "the vec2text inverter it corrects (default: the best ready one for the collection's search model)",
                roles=("inverter",),
                kinds=("vec2text-inverter",),
            ),
            *VEC2TEXT_DATA,
            HOLDOUT,
        ),
        trainer="vectorkeep.workers.families.vec2text.corrector_trainer:train",
        inverter="vectorkeep.workers.families.vec2text.corrector:load_inverter",
    ),
    Kind(
        "edit-search",
        "inverter",
        "text for a vector by editing the nearest stored texts with the encoder as the judge, guided by a "
        "network that predicts the vector's words; works with any encoder, on CPU",
        (
            _int("vocabulary", 4000, 10, 200_000, "the most frequent words the network predicts"),
            _int("hidden", 1024, 8, 16_384, "the network's hidden size"),
            _int("epochs", 40, 1, 1000, "passes over the (text, vector) pairs"),
            LR,
            _int("max_pairs", 50_000, 10, 5_000_000, "training pairs held in memory at most"),
            _num("seconds", 8.0, 0.1, 600.0, "time box a vector"),
            _int("beam", 4, 1, 64, "texts kept between steps"),
            _int("candidates", 96, 1, 4096, "edits tried a step (one encoder batch)"),
            _num("prior", 0.15, 0.0, 10.0, "weight of the words' probability beside the cosine"),
            _int("neighbours", 40, 1, 1000, "nearest stored texts to edit and draw words from"),
            SEED,
            Param(
                "encoder",
                "model",
                None,
                "the encoder version it inverts (default: the collection's search model)",
                roles=("encoder",),
            ),
            HOLDOUT,
        ),
        trainer="vectorkeep.workers.families.edit_search.trainer:train",
        inverter="vectorkeep.workers.families.edit_search.inverter:load_edit_search",
    ),
    Kind(
        "umap",
        "map",
        "a parametric UMAP map of a collection's vectors (a torch network and its inverse)",
        (
            _int("n_neighbors", 15, 2, 200, "neighbours in the graph"),
            _num("min_dist", 0.1, 0.0, 1.0, "how tightly points pack"),
            _int("epochs", 60, 1, 10_000, "passes of the map network"),
            _int("batch_size", 256, 8, 100_000, "edges per step"),
            LR,
            HIDDEN,
            _int("negative_samples", 5, 1, 50, "negative edges per positive one"),
            _int("decoder_epochs", 200, 0, 10_000, "passes of the inverse network"),
            _num("validation", 0.1, 0.0, 0.5, "fraction of rows held out"),
            SEED,
            SOURCE_ENCODER,
            ACTIVATE,
            GATES,
        ),
        trainer="vectorkeep.workers.families.umap.trainer:train",
    ),
    *(
        Kind(
            f"lvm-{arch}",
            "next-vector",
            f"a next-vector model ({arch}) over the vectors of ordered groups (vk.set_order)",
            (
                _int("context", 4, 1, 64, "vectors of context"),
                _int("hidden", 256, 8, 4096, "hidden size"),
                _int("layers", 1, 1, 8, "layers"),
                _int("heads", 4, 1, 32, "attention heads (transformer)"),
                _int("epochs", 30, 1, 10_000, "passes over the windows"),
                _int("batch_size", 64, 1, 100_000, "windows per step"),
                LR,
                _num("validation", 0.15, 0.0, 0.5, "fraction of groups for validation"),
                _num("test", 0.15, 0.0, 0.5, "fraction of groups for the test"),
                SEED,
                SOURCE_ENCODER,
                ACTIVATE,
                GATES,
            ),
            trainer="vectorkeep.workers.families.next_vector.trainer:train",
        )
        for arch in ("lstm", "gru", "transformer")
    ),
    *API_KINDS,
    Kind("external", "vectors", "vectors adopted from a table (vk.adopt); there is no encoder for them here"),
)

BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}


def kind(name: str) -> Kind:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown model kind {name!r} (known: {', '.join(BY_NAME)})") from None


def check_params(kind_name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The params of a version registered by hand, checked against its kind (names, types, bounds,
    choices) with the defaults filled in; ValueError says what is wrong and what is expected."""
    k = kind(kind_name)
    for name in params:
        if name.lower() in SECRET_PARAMS:
            raise ValueError(
                f"{name}: an API key is never stored in the database; put it in the worker's environment "
                "and name the variable with api_key_env"
            )
        if k.param(name) is None:
            raise ValueError(f"{kind_name} has no parameter {name!r}; it takes:\n{k.describe()}")
    for p in k.params:
        value = params.get(p.name)
        if value is None:
            continue
        ok = {
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "string": isinstance(value, str),
            "boolean": isinstance(value, bool),
        }.get(p.type, True)
        if not ok:
            raise ValueError(f"{kind_name}: {p.name} must be of type {p.type}, got {value!r}: {p.describe()}")
        if p.choices and value not in p.choices:
            raise ValueError(f"{kind_name}: {p.name} must be one of {', '.join(map(str, p.choices))}, got {value!r}")
        if p.type in ("integer", "number") and (
            (p.min is not None and value < p.min) or (p.max is not None and value > p.max)
        ):
            raise ValueError(f"{kind_name}: {p.name}={value} is out of range: {p.describe()}")
    key_env = params.get("api_key_env")
    # Empty: an endpoint that takes no key (a local OpenAI-compatible server).
    if isinstance(key_env, str) and key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key_env):
        raise ValueError(
            "api_key_env names an environment variable (e.g. OPENAI_API_KEY), it does not hold the key itself"
        )
    base_url = params.get("base_url")
    if isinstance(base_url, str):
        parts = urlsplit(base_url)
        if parts.username or parts.password or re.search(r"(key|token|secret|signature)=", parts.query, re.I):
            raise ValueError(
                "base_url holds a credential (user:password@ or a key in its query), and vk.models.params is "
                "readable by every vk role: give the key with api_key_env or api_key_file instead"
            )
    if k.param("model") is not None and not params.get("model"):
        raise ValueError(f"{kind_name} needs the provider's model name: model=...")
    return k.with_defaults(params)


def names(*, role: Role | None = None, trainable: bool | None = None) -> list[str]:
    return [
        k.name for k in KINDS if (role is None or k.role == role) and (trainable is None or k.trainable == trainable)
    ]


def describe(kinds: Iterable[Kind] = KINDS) -> str:
    return "\n".join(k.describe() for k in kinds)


def sync(conn: psycopg.Connection) -> None:
    """Make vk.model_kinds what this registry declares (run by every upgrade)."""
    rows = [
        {
            "kind": k.name,
            "role": k.role,
            "trainable": k.trainable,
            "loadable": k.loader is not None,
            "params": Jsonb({p.name: p.schema() for p in k.params}),
            "description": k.help,
        }
        for k in KINDS
    ]
    with conn.cursor() as cur:
        cur.executemany(query("sync_model_kind"), rows)
        cur.execute(query("drop_other_model_kinds"), {"kinds": [k.name for k in KINDS]})
