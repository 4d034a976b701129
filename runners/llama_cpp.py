"""llama.cpp runner (LLM): any GGUF model, streamed token by token, cancellable at once.

Prompt evaluation and sampling are driven here rather than through
`create_chat_completion`, so that cancellation is checked between evaluation chunks and
between tokens, the KV cache of a shared prefix is reused across turns, and each token
costs little Python work: llama.cpp's own samplers, built once a reply (greedy without
penalties: an argmax of the logits), one prepared batch decoding each token, and a stop
string looked for only where the newest piece could complete one. Every decode runs on a
thread of its own (see `_on_own_thread`).
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from breeze.engine import (
    BlockingRunner,
    BreezeError,
    Cancelled,
    CancelToken,
    Capability,
    Emit,
    InferenceRequest,
    InferenceResult,
    ParamSchema,
    ParamSpec,
    Support,
)
from breeze.engine.models import entry_for, resolve
from breeze.engine.text import SentenceStream, Utf8Stream, stop_hold_back

from ._chat_formats import FORMATS, ChatFormat, choose
from ._native_log import python_stderr_to_log

log = logging.getLogger("breeze.runners.llama_cpp")
native_log = logging.getLogger("breeze.native.llama")

EVAL_CHUNK = 64  # prompt tokens evaluated between two cancellation checks
# Text longer than n_ctx * this cannot fit, so it is not tokenized: the longest tokens of the
# embedded models' vocabularies are runs of 31-32 spaces or punctuation (prose: 3-5 chars).
_CHARS_PER_TOKEN_MAX = 32
_TURN_TOKENS = 8  # what the chat template adds around one message, at most (ChatML: 5)


class LlamaCppRunner(BlockingRunner):
    name = "llama_cpp"
    capabilities = frozenset({Capability.LLM})
    priority = 100
    continues_replies = True

    def __init__(self) -> None:
        self._llm: Any = None
        self._key: tuple[str, int, int, bool] | None = None
        self._loaded_for: tuple[Any, ...] = ()  # the params `_key` was resolved from
        self._formatter: Any = None
        self._format: ChatFormat | None = None
        self._system_prompt = ""  # the catalog's, for a chat that brings none
        self._lock = threading.Lock()

    # -- set-up --------------------------------------------------------------------------

    def is_supported(self) -> Support:
        if importlib.util.find_spec("llama_cpp") is None:
            return Support(False, "llama-cpp-python is missing: pip install llama-cpp-python")
        return Support(True)

    def param_schema(self) -> ParamSchema:
        cores = os.cpu_count() or 1
        return ParamSchema(
            [
                ParamSpec("temperature", float, 0.7, 0.0, 2.0, description="0 is greedy"),
                ParamSpec("top_p", float, 0.95, 0.0, 1.0),
                ParamSpec("top_k", int, 40, 0, 1000),
                ParamSpec("min_p", float, 0.05, 0.0, 1.0),
                ParamSpec("repeat_penalty", float, 1.1, 0.0, 10.0),
                ParamSpec("max_tokens", int, 512, 0, 131072, description="0 generates nothing"),
                ParamSpec("seed", int, None, -1, 2**31 - 1, description="fixed sampling seed"),
                ParamSpec("stop", list, None, description="strings that end the reply"),
                ParamSpec("n_ctx", int, 4096, 64, 131072, description="context window, tokens"),
                ParamSpec("n_threads", int, cores, 1, 512, description="CPU threads"),
                ParamSpec("flash_attn", bool, True, description="flash attention: faster "
                          "replies on a CPU too (llama.cpp turns it off where unsupported)"),
            ]
        )

    @property
    def model_name(self) -> str | None:
        return Path(self._key[0]).name if self._key else None

    def is_loaded(self, params: Mapping[str, Any]) -> bool:
        return self._key is not None and self._loaded_for == _load_params(params)

    def load(self, params: Mapping[str, Any]) -> None:
        path = resolve(params.get("model"), "LLM")
        key = (str(path), int(params.get("n_ctx", 4096)), int(params.get("n_threads", 1)),
               bool(params.get("flash_attn", True)))
        if self._key == key:  # loaded: no need to wait for (nor hang behind) a generation
            return
        entry = entry_for(params.get("model"), path)
        with self._lock:
            if self._key == key:
                return
            self._unload_locked()
            self._llm = _open_model(path, *key[1:])
            self._format = choose(self._llm.metadata, entry.chat_format if entry else None)
            self._formatter = _chat_formatter(self._llm, self._format)
            self._system_prompt = entry.system_prompt if entry else ""
            self._key, self._loaded_for = key, _load_params(params)

    def unload(self) -> None:
        with self._lock:
            self._unload_locked()

    def _unload_locked(self) -> None:
        if self._llm is not None:
            self._llm.close()
        self._llm, self._key, self._formatter, self._format = None, None, None, None
        self._loaded_for, self._system_prompt = (), ""

    # -- generation ----------------------------------------------------------------------

    def generate(self, request: InferenceRequest, token: CancelToken, emit: Emit) -> None:
        while not self._lock.acquire(timeout=0.05):  # behind another request: still cancellable
            token.check()
        try:
            if self._llm is None:
                raise BreezeError("E501", "no model is loaded")
            _on_own_thread(_Generation(self, request, token, emit).run)
        finally:
            self._lock.release()


def _load_params(params: Mapping[str, Any]) -> tuple[Any, ...]:
    """What `load` reads from the params: the same values load the same model."""
    return (params.get("model"), params.get("n_ctx", 4096), params.get("n_threads", 1),
            params.get("flash_attn", True))


class _Generation:
    """One request on a loaded model: fit the prompt, evaluate it, stream the reply."""

    def __init__(
        self, runner: LlamaCppRunner, request: InferenceRequest, token: CancelToken, emit: Emit
    ) -> None:
        self.llm = runner._llm
        self.formatter = runner._formatter
        self.chat_format = runner._format or FORMATS["chatml"]
        self.default_system_prompt = runner._system_prompt
        self.model_name = runner.model_name
        self.params = request.params
        self.request = request
        self.token = token
        self.emit = emit
        self.started = time.perf_counter()
        self.text = ""
        self.continuing = False  # a reply to continue: its first piece may start with a blank
        self.sent = 0  # characters of self.text already emitted
        self.sentences = SentenceStream()  # stream_mode "sentence": what is complete
        self.n_generated = 0
        self.first_token_at: float | None = None
        self.meta: dict[str, Any] = {"model_name": self.model_name}

    def run(self) -> None:
        messages = _messages(self.request, self.default_system_prompt)
        self.continuing = messages[-1]["role"] == "assistant"
        max_tokens = int(self.params.get("max_tokens", 512))
        try:
            tokens = self._fit(messages, max_tokens)
        except Cancelled:
            return self._finish("cancelled")
        budget = min(max_tokens, self.llm.n_ctx() - len(tokens))
        if max_tokens == 0:
            return self._finish("length")
        if not self._evaluate_prompt(tokens):
            return self._finish("cancelled")
        self._sample(budget)

    def _fit(self, messages: list[dict[str, str]], max_tokens: int) -> list[int]:
        """Tokens of the templated conversation: the system prompt, the last message and the
        newest turns before it that fit with room to answer; older turns are dropped.

        Linear in the history: a turn's text is tokenized at most once, newest first, until
        one does not fit; turns beyond what could fit by their length alone are never
        tokenized; the kept conversation is templated and tokenized once. Raises Cancelled
        between steps."""
        check = self.token.check
        n_ctx = self.llm.n_ctx()
        room = min(max_tokens, n_ctx // 4)
        max_chars = n_ctx * _CHARS_PER_TOKEN_MAX
        system = [m for m in messages[:1] if m["role"] == "system"]
        older, last = messages[len(system):-1], messages[-1]
        if sum(len(m["content"]) for m in (*system, last)) > max_chars:
            raise BreezeError(
                "E504", f"the prompt is far longer than the context window ({n_ctx} tokens)"
            )
        check()
        base = self._tokenize([*system, last])
        if len(base) >= n_ctx:
            raise BreezeError(
                "E504",
                f"the prompt needs {len(base)} tokens; the context window holds {n_ctx} "
                "(raise n_ctx or shorten the message)",
            )
        used, chars = len(base) + room, 0
        costs: list[int] = []  # estimated tokens of each kept older turn, newest first
        for message in reversed(older):
            chars += len(message["content"])
            if used >= n_ctx or chars > max_chars:
                break
            check()
            cost = self._count(message["content"]) + _TURN_TOKENS
            if used + cost > n_ctx:
                break
            used += cost
            costs.append(cost)
        tokens = base
        while costs:  # the estimate is checked on the real prompt; if over, drop more
            check()
            tokens = self._tokenize([*system, *older[len(older) - len(costs):], last])
            excess = len(tokens) + room - n_ctx
            if excess <= 0:
                break
            while costs and excess > 0:
                excess -= costs.pop()
            tokens = base
        dropped = len(older) - len(costs)
        self.meta.update(prompt_tokens=len(tokens), turns_dropped=dropped)
        self.meta["prompt_fit_ms"] = round((time.perf_counter() - self.started) * 1000, 3)
        if dropped:
            log.info("dropped the %d oldest turns to fit the context window", dropped)
        return tokens

    def _count(self, text: str) -> int:
        """Tokens of one message's text, outside the template."""
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _tokenize(self, messages: list[dict[str, str]]) -> list[int]:
        """The templated prompt; a last assistant message is a reply to continue: its text
        follows the generation prompt, left open."""
        partial_reply = messages[-1]["content"] if messages[-1]["role"] == "assistant" else None
        if partial_reply is not None:
            messages = messages[:-1]
        formatted = self.formatter(messages=messages)
        prompt = formatted.prompt + (partial_reply or "")
        return list(
            self.llm.tokenize(
                prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
            )
        )

    def _evaluate_prompt(self, tokens: list[int]) -> bool:
        """Evaluate what the KV cache does not already hold, in chunks; False if cancelled."""
        llm = self.llm
        cached = llm.input_ids[: llm.n_tokens]
        reused = 0
        for a, b in zip(cached, tokens, strict=False):
            if a != b:
                break
            reused += 1
        reused = min(reused, len(tokens) - 1)  # the last prompt token is re-evaluated for logits
        llama_cpp = _llama()
        if reused < llm.n_tokens and not llama_cpp.llama_memory_seq_rm(
                llama_cpp.llama_get_memory(llm.ctx), 0, reused, -1):
            reused = 0
        llm.n_tokens = reused
        self.meta["prompt_tokens_reused"] = reused
        total = len(tokens)
        for start in range(reused, total, EVAL_CHUNK):
            if self.token.cancelled:
                return False
            llm.eval(tokens[start:start + EVAL_CHUNK])
            if total - reused > EVAL_CHUNK:  # a long prompt: show its evaluation progress
                done = min(start + EVAL_CHUNK, total)
                self.emit(InferenceResult.success(metadata={
                    **self.meta,
                    "stage": "prompt",
                    "prompt_tokens_evaluated": done,
                    "progress_percent": round(100 * (done - reused) / (total - reused), 1),
                }, partial=True))
        self.meta["prompt_eval_ms"] = round((time.perf_counter() - self.started) * 1000, 3)
        return not self.token.cancelled

    def _sample(self, budget: int) -> None:
        llm = self.llm
        stops = [*(self.params.get("stop") or []), *self.chat_format.stops]
        longest_stop = max(map(len, stops), default=0)
        sentence_mode = self.params.get("stream_mode") == "sentence"
        utf8 = Utf8Stream()
        vocab = _llama().llama_model_get_vocab(llm.model)
        is_eog = _llama().llama_vocab_is_eog
        sampler = _Sampler(llm, self.params)
        decoder = _NextTokenDecoder(llm)
        finish = "length"
        try:
            while True:
                tok = sampler.next_token()
                if is_eog(vocab, tok):
                    finish = "stop"
                    break
                self.n_generated += 1
                if self.first_token_at is None:
                    self.first_token_at = time.perf_counter()
                    self.meta["ttft_ms"] = round((self.first_token_at - self.started) * 1000, 3)
                piece = utf8.feed(llm.detokenize([tok]))
                if not self.text and not self.continuing:
                    piece = piece.lstrip()  # a SentencePiece model's first word comes with one
                self.text += piece
                if stops and self._hit_stop(stops, len(self.text) - len(piece) - longest_stop):
                    finish = "stop"
                    break
                if piece:
                    self._emit_progress(piece, stops, budget, sentence_mode)
                if self.n_generated >= budget:
                    break
                if self.token.cancelled:  # checked before the next token is decoded
                    finish = "cancelled"
                    break
                decoder.decode(tok)
        finally:
            sampler.close()
            decoder.close()
        self.text += utf8.flush()
        self._finish(finish)

    def _hit_stop(self, stops: Sequence[str], since: int) -> bool:
        """Whether a stop string ends in the text's tail from `since` (what the newest piece
        could complete); if so, the text is cut where the first one starts."""
        text, since = self.text, max(0, since)
        cut = min((i for i in (text.find(s, since) for s in stops) if i >= 0), default=-1)
        if cut < 0:
            return False
        self.text = text[:cut]
        return True

    def _emit_progress(self, piece: str, stops: list[str], budget: int, sentences: bool) -> None:
        visible = len(self.text) - stop_hold_back(self.text, stops) if stops else len(self.text)
        if sentences:
            complete = self.sentences.feed(self.text[:visible])
            if not complete:
                return
            visible = self.sentences.end
            self.meta["sentence_index"] = self.meta.get("sentence_index", -1) + len(complete)
        if visible <= self.sent:
            return
        delta = self.text[self.sent:visible]
        self.sent = visible
        elapsed = time.perf_counter() - (self.first_token_at or self.started)
        tps = round((self.n_generated - 1) / elapsed, 2) if self.n_generated > 1 else None
        outputs: dict[str, Any] = {"text": self.text[:visible], "delta": delta}
        if sentences:
            outputs["sentence"] = delta.strip()
        self.emit(
            InferenceResult(
                outputs,
                {
                    **self.meta,
                    "stage": "generate",
                    "tokens_generated": self.n_generated,
                    "current_token": piece,
                    "progress_percent": round(100 * self.n_generated / budget, 1),
                    "estimated_total": budget,
                    "tokens_per_second": tps,
                },
                None,
                True,
            )
        )

    def _finish(self, reason: str) -> None:
        now = time.perf_counter()
        elapsed = now - (self.first_token_at or now)
        tps = round((self.n_generated - 1) / elapsed, 2) if elapsed > 0 else None
        outputs = {"text": self.text, "delta": self.text[self.sent:]}
        self.emit(
            InferenceResult.success(
                outputs,
                {
                    **self.meta,
                    "finish_reason": reason,
                    "tokens_generated": self.n_generated,
                    "completion_tokens": self.n_generated,
                    "tokens_per_second": tps,
                },
            )
        )


class _Sampler:
    """Picks each next token from the last decode's logits as llama-cpp-python's `generate`
    does for the same params and seed: its chain of native samplers, built once a reply. Greedy
    without penalties is the first of the highest logits, found here at a tenth of the cost."""

    def __init__(self, llm: Any, params: Mapping[str, Any]) -> None:
        import numpy

        self.numpy = numpy
        self.ctx = llm.ctx
        self.logits_row = ctypes.c_float * llm.n_vocab()
        temperature = float(params.get("temperature", 0.7))
        repeat_penalty = float(params.get("repeat_penalty", 1.1))
        self.chain: Any = None
        if temperature > 0.0 or repeat_penalty != 1.0:
            self.chain = _sampler_chain(llm, params, temperature, repeat_penalty)

    def next_token(self) -> int:
        llama_cpp = _llama()
        if self.chain is not None:
            return int(llama_cpp.llama_sampler_sample(self.chain, self.ctx, -1))
        logits = llama_cpp.llama_get_logits_ith(self.ctx, -1)
        row = self.logits_row.from_address(ctypes.addressof(logits.contents))
        return int(self.numpy.frombuffer(row, dtype=self.numpy.float32).argmax())

    def close(self) -> None:
        if self.chain is not None:
            _llama().llama_sampler_free(self.chain)
            self.chain = None


class _NextTokenDecoder:
    """Decodes the reply one token at a time, in a batch made once. Unlike `Llama.eval`, no
    KV-cache clean-up before each token (a pass over all of the context's cells): the prompt's
    evaluation cleared what lay beyond it, and each token goes right after the last. The
    Llama object's record of its context (n_tokens, input_ids) is kept as `eval` keeps it."""

    def __init__(self, llm: Any) -> None:
        llama_cpp = _llama()
        self.llm = llm
        self.llama_decode = llama_cpp.llama_decode
        self.batch = llama_cpp.llama_batch_init(1, 0, 1)
        self.batch.n_tokens = 1
        self.batch.n_seq_id[0] = 1
        self.batch.seq_id[0][0] = 0
        self.batch.logits[0] = True

    def decode(self, token: int) -> None:
        llm, batch = self.llm, self.batch
        position = llm.n_tokens
        batch.token[0] = token
        batch.pos[0] = position
        status = self.llama_decode(llm.ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode returned {status}")
        llm.input_ids[position] = token
        llm.n_tokens = position + 1

    def close(self) -> None:
        _llama().llama_batch_free(self.batch)


def _sampler_chain(llm: Any, params: Mapping[str, Any], temperature: float,
                   repeat_penalty: float) -> Any:
    """The samplers of llama-cpp-python's `Llama.generate`, in its order and with its
    settings (typical_p 1, no frequency or presence penalty)."""
    llama_cpp = _llama()
    seed = params.get("seed")
    samplers = [llama_cpp.llama_sampler_init_penalties(
        llm.n_vocab(), llm.last_n_tokens_size, repeat_penalty, 0.0, 0.0)]
    if temperature == 0.0:
        samplers.append(llama_cpp.llama_sampler_init_greedy())
    else:
        samplers += [
            llama_cpp.llama_sampler_init_top_k(int(params.get("top_k", 40))),
            llama_cpp.llama_sampler_init_typical(1.0, 1),
            llama_cpp.llama_sampler_init_top_p(float(params.get("top_p", 0.95)), 1),
            llama_cpp.llama_sampler_init_min_p(float(params.get("min_p", 0.05)), 1),
            llama_cpp.llama_sampler_init_temp(temperature),
            llama_cpp.llama_sampler_init_dist(
                llama_cpp.LLAMA_DEFAULT_SEED if seed is None else int(seed)),
        ]
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    for sampler in samplers:
        llama_cpp.llama_sampler_chain_add(chain, sampler)  # the chain owns and frees them
    return chain


def _on_own_thread(work: Callable[[], None]) -> None:
    """Run `work` on a new thread, and return (or raise) when it ends.

    llama.cpp's OpenMP (libgomp) keeps a team of worker threads for every thread that has
    decoded, until that thread ends; with more of them than cores, every team sleeps at each
    of the hundreds of barriers in a decode, and generation runs several times slower. So
    each decode here runs on a thread that leaves no team behind, whichever thread (a worker
    of the engine, a pool's long-lived one) asked for it."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"{threading.current_thread().name}-decode",
                              daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def _messages(request: InferenceRequest, default_system: str = "") -> list[dict[str, str]]:
    inputs, params = request.inputs, request.params
    if "messages" in inputs:
        messages = [{"role": m["role"], "content": m["content"]} for m in inputs["messages"]]
    else:
        messages = [{"role": "user", "content": str(inputs.get("text", ""))}]
    if not messages or not any(m["content"].strip() for m in messages if m["role"] == "user"):
        raise BreezeError("E400", "the prompt is empty")
    if messages[-1]["role"] == "system":
        raise BreezeError("E400", "the last message must be the user's (or a reply to continue)")
    system = params.get("system_prompt")
    if system:
        messages = [m for m in messages if m["role"] != "system"]
        messages.insert(0, {"role": "system", "content": system})
    elif default_system and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": default_system})
    return messages


def _llama() -> Any:
    import llama_cpp

    return llama_cpp


_log_callback: Any = None
# ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 continuation
_NATIVE_LEVELS = {2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}


def _route_native_log() -> None:
    """Send llama.cpp's log lines to the app's log (once per process)."""
    global _log_callback
    if _log_callback is not None:
        return
    llama_cpp = _llama()

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        message = text.decode("utf-8", "replace").rstrip()
        if message:
            native_log.log(_NATIVE_LEVELS.get(level, logging.DEBUG), "%s", message)

    _log_callback = callback  # a reference must live as long as the library may call it
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def _open_model(path: Path, n_ctx: int, n_threads: int, flash_attn: bool) -> Any:
    llama_cpp = _llama()
    _route_native_log()
    if _magic(path) != b"GGUF":
        raise BreezeError("E502", f"{path} is not a GGUF model file")
    try:
        # verbose: the library's quiet mode points the process's stdout and stderr at
        # /dev/null while it loads, and the app draws its screen through them; what verbose
        # prints from Python goes to the log, the native lines go through the log callback
        with python_stderr_to_log("llama.cpp"):
            llm = llama_cpp.Llama(
                str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                flash_attn=flash_attn,
                verbose=True,
            )
            llm.verbose = False  # no report on stderr after each reply
            # the first decode allocates buffers: do it now, not on the first reply
            _on_own_thread(lambda: llm.eval([max(llm.token_bos(), 0)]))
            llm.reset()
            return llm
    except (ValueError, RuntimeError, OSError) as exc:
        raise BreezeError("E502", f"could not load {path.name}: {exc}") from exc


def _magic(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(4)


def _chat_formatter(llm: Any, chat_format: ChatFormat) -> Any:
    from llama_cpp import llama_chat_format

    eos_id, bos_id = llm.token_eos(), llm.token_bos()
    return llama_chat_format.Jinja2ChatFormatter(
        template=chat_format.template,
        eos_token=_token_text(llm, eos_id),
        bos_token=_token_text(llm, bos_id),
        stop_token_ids=[eos_id],
    )


def _token_text(llm: Any, token: int) -> str:
    if token == -1:
        return ""
    return bytes(llm.detokenize([token], special=True)).decode("utf-8", "replace")


RUNNERS = [LlamaCppRunner]
