"""The subset of OpenAI's chat-completions request that the server understands, and its errors.

Requests are validated strictly from the JSON text (a string is not a number, ``1.0`` is not an
integer). Fields the server does not know are ignored, as OpenAI-compatible servers do; fields
it knows but cannot honour in a way that changes the output (tools, logprobs, a JSON response
format, non-zero penalties, logit bias) are refused with 400 rather than silently dropped.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hivethink.engine.hive import HiveConfig


class ApiError(Exception):
    """An answer in OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)

    @classmethod
    def from_validation(cls, err: ValidationError) -> ApiError:
        """400 naming the first invalid field (``messages.0.content``) and what is wrong with it."""
        errors = err.errors(include_url=False)
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        if first["type"] == "json_invalid":
            reason = first.get("ctx", {}).get("error") or first["msg"]
            return cls(400, f"malformed JSON body: {reason}", code="invalid_json")
        loc = ".".join(str(p) for p in first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "model_type" and not loc:
            msg = "the body must be a JSON object"
        return cls(400, f"{loc}: {msg}{more}" if loc else f"{msg}{more}", param=loc or None,
                   code="invalid_value")


def error_body(message: str, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class _Lenient(BaseModel):
    """Unknown fields are ignored (clients send many that change nothing here)."""

    model_config = ConfigDict(strict=True, extra="ignore")


class TextPart(_Lenient):
    type: Literal["text"]
    text: str


class Message(_Lenient):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)

    def as_chat(self) -> dict[str, str]:
        """``{"role", "content"}`` for the tokenizer's template ("developer" is a system message)."""
        return {"role": "system" if self.role == "developer" else self.role, "content": self.text()}


class StreamOptions(_Lenient):
    include_usage: bool = False


class JsonSchemaFormat(_Lenient):
    name: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


class ResponseFormat(_Lenient):
    """``{"type": "text"}`` or ``{"type": "json_schema", "json_schema": {"schema": {...}}}``."""

    type: str
    json_schema: JsonSchemaFormat | None = None

    def constraint(self) -> dict[str, Any] | None:
        return self.json_schema.schema_ if self.type == "json_schema" and self.json_schema else None


class ChatCompletionRequest(_Lenient):
    model: str
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    # known, but only their neutral values are accepted
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    logit_bias: dict[str, float] | None = None
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    response_format: ResponseFormat | None = None
    # the extension field: run the request as a multi-worker hive job. Fields the client leaves
    # out come from the request (max_steps: max_tokens; temperature, top_p, seed) or the defaults.
    hivethink: HiveConfig | None = None

    def unsupported(self) -> tuple[str, str] | None:
        """(param, reason) for the first field set to something the server cannot do."""
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name):
                return name, f"{name} is not supported (only 0)"
        if self.logprobs or self.top_logprobs:
            return "logprobs", "logprobs are not supported"
        if self.logit_bias:
            return "logit_bias", "logit_bias is not supported"
        if self.tools or self.functions:
            return "tools", "tools and functions are not supported"
        fmt = self.response_format
        if fmt is not None and not (fmt.type == "text" or (fmt.type == "json_schema" and fmt.json_schema)):
            return "response_format", ('only response_format {"type": "text"} or {"type": "json_schema", '
                                       '"json_schema": {"schema": ...}} is supported')
        return None
