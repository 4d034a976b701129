"""Breeze's streaming inference engine: no UI and no model library is imported here."""

from .bridge import Emit, iterate_blocking
from .cancel import Cancelled, CancelToken
from .engine import Engine, Handle
from .errors import ERROR_CODES, BreezeError, RunnerError
from .jsonl import result_to_dict, result_to_json
from .params import ParamSchema, ParamSpec
from .registry import Registry
from .retry import RetryPolicy
from .routing import route
from .runner import BlockingRunner, Runner, RunnerInfo, Support
from .settings import EngineSettings
from .types import Capability, InferenceRequest, InferenceResult

__version__ = "0.1.0"

__all__ = [
    "ERROR_CODES",
    "BlockingRunner",
    "BreezeError",
    "CancelToken",
    "Cancelled",
    "Capability",
    "Emit",
    "Engine",
    "EngineSettings",
    "Handle",
    "InferenceRequest",
    "InferenceResult",
    "ParamSchema",
    "ParamSpec",
    "Registry",
    "RetryPolicy",
    "Runner",
    "RunnerError",
    "RunnerInfo",
    "Support",
    "iterate_blocking",
    "result_to_dict",
    "result_to_json",
    "route",
]
