"""The provider clients, driven through the real SDKs (google-genai, openai) against FakeAPIServer.

Every test sends real HTTP through the SDK to a local server that answers in each API's
documented shape, so request building, response parsing and the SDKs' error classes are
the ones a paid run meets. Only the diffusers plumbing test replaces something (the
pipeline's from_pretrained), and its name says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import sys
import time
from types import SimpleNamespace

import pytest
from PIL import Image

from ggt_dataset.errors import GGTError
from ggt_dataset.synth.backend import (
    Backend,
    BackendError,
    EditRequest,
    TransientError,
    VisionModel,
)
from ggt_dataset.synth.backends import make_backend, make_vision
from ggt_dataset.synth.backends._common import parse_retry_after
from ggt_dataset.synth.fake_server import FakeAPIServer


def _sdks() -> None:
    """Skip unless both SDKs are installed (the test extra brings them; the diffusers tests need neither)."""
    pytest.importorskip("google.genai")
    pytest.importorskip("openai")

# google-genai subclasses aiohttp.ClientSession, which aiohttp warns about; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")

KEY = "test-key"
PROVIDERS = ["gemini", "openai"]


def _png(width: int = 64, height: int = 48, shade: int = 0) -> bytes:
    im = Image.linear_gradient("L").resize((width, height)).point(lambda v: 90 + (v + shade) % 256 // 4)
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


LQ = _png()


def _request(image: bytes = LQ, pair_id: str = "rain/0001") -> EditRequest:
    return EditRequest(pair_id=pair_id, image=image, mime="image/png", prompt="Remove the rain streaks",
                       width=64, height=48, seed=7)


@pytest.fixture
def server():
    _sdks()
    with FakeAPIServer(api_key=KEY, hang_seconds=10) as s:
        yield s


def _backend(provider: str, server: FakeAPIServer, **options):
    base = server.gemini_base_url if provider == "gemini" else server.openai_base_url
    return make_backend(provider, api_key=options.pop("api_key", KEY), base_url=base, **options)


def _vision(provider: str, server: FakeAPIServer, **options):
    base = server.gemini_base_url if provider == "gemini" else server.openai_base_url
    return make_vision(provider, api_key=KEY, base_url=base, **options)


def _edit(backend, request: EditRequest | None = None):
    async def go():
        try:
            return await backend.edit(request or _request())
        finally:
            await backend.aclose()
    return asyncio.run(go())


# -- success -------------------------------------------------------------------------------
@pytest.mark.parametrize("provider, model, cost", [
    # Gemini: (4 text + 258 image) prompt tokens x $0.50/M + 1120 image tokens x $60/M
    ("gemini", "gemini-3.1-flash-image", (262 * 0.50 + 1120 * 60.0) / 1e6),
    # OpenAI: 4 text x $5/M + 258 image x $8/M in, 1120 image tokens x $30/M out
    ("openai", "gpt-image-2", (4 * 5.0 + 258 * 8.0 + 1120 * 30.0) / 1e6),
])
def test_edit_ok_returns_a_decodable_image_the_model_and_a_cost(server, provider, model, cost):
    backend = _backend(provider, server)
    assert isinstance(backend, Backend) and backend.foundation_model
    result = _edit(backend)
    assert result.status == "ok" and result.model == model
    with Image.open(io.BytesIO(result.image)) as im:
        assert im.size == (64, 48)
    assert result.cost == pytest.approx(cost) and result.cost > 0 and result.cost_estimated
    assert json.dumps(result.meta)                           # JSON-able, no bytes
    (sent,) = server.requests
    assert sent.model == model and sent.prompt == "Remove the rain streaks"
    assert sent.image_sha256 == hashlib.sha256(LQ).hexdigest()


def test_gemini_asks_for_an_image_in_the_lq_aspect_ratio(server):
    backend = _backend("gemini", server, image_size="1K")
    _edit(backend, EditRequest("a", _png(160, 90), "image/png", "restore", 160, 90))
    assert server.requests[0].path == "/v1/models/gemini-3.1-flash-image:generateContent"


# -- transient failures --------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_is_transient_with_retry_after_and_the_sdk_does_not_retry(server, provider):
    # OpenAI's delay comes in the Retry-After header, Gemini's in the body's google.rpc.RetryInfo.
    server.add_fault("429", request=1, retry_after=2)
    with pytest.raises(TransientError) as err:
        _edit(_backend(provider, server))
    assert err.value.status == 429 and err.value.retry_after == pytest.approx(2.0)
    assert len(server.requests) == 1                  # the engine retries, not the SDK


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status", ["500", "503"])
def test_5xx_is_transient(server, provider, status):
    server.add_fault(status, request=1)
    with pytest.raises(TransientError) as err:
        _edit(_backend(provider, server))
    assert err.value.status == int(status)
    assert len(server.requests) == 1


@pytest.mark.slow
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_hung_request_times_out_as_transient(server, provider):
    server.add_fault("hang", request=1)
    started = time.monotonic()
    with pytest.raises(TransientError):
        _edit(_backend(provider, server, timeout=0.5))
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("provider", PROVIDERS)
def test_connection_refused_is_transient(provider):
    _sdks()
    with FakeAPIServer() as gone:
        base = gone.gemini_base_url if provider == "gemini" else gone.openai_base_url
    backend = make_backend(provider, api_key=KEY, base_url=base, timeout=2)
    with pytest.raises(TransientError):
        _edit(backend)


# -- refusals are results ------------------------------------------------------------------
@pytest.mark.parametrize("provider, fault, reason", [
    ("gemini", "refuse", "IMAGE_SAFETY"),
    ("gemini", "block_prompt", "prompt blocked: PROHIBITED_CONTENT"),
    ("openai", "refuse", "moderation_blocked"),
])
def test_a_safety_refusal_is_a_refused_result_with_the_reason(server, provider, fault, reason):
    server.add_fault(fault, request=1)
    result = _edit(_backend(provider, server))
    assert result.status == "refused" and result.image is None
    assert reason in result.detail


def test_gemini_text_without_an_image_is_an_error_not_a_refusal(server):
    server.add_fault("text_only", request=1)
    with pytest.raises(BackendError, match="without an image and without a safety refusal .*STOP") as e:
        _edit(_backend("gemini", server))
    assert e.value.cost > 0                                   # billed: the journal records it


def test_estimates_are_upper_bounds_of_the_answered_cost(server):
    for provider in PROVIDERS:
        backend = _backend(provider, server)
        estimate = backend.estimate_cost(_request())
        assert _edit(backend).cost <= estimate < 10 * _edit(_backend(provider, server)).cost
    assert _backend("gemini", server, model="gemini-9-image").estimate_cost(_request()) is None


@pytest.mark.parametrize("provider, size", [("gemini", (1184, 864)), ("openai", (1456, 1088))])
def test_provider_sizes_of_a_4_3_photo_pass_validity(provider, size):
    """With each service's fixed output sizes (Gemini per aspect, OpenAI as asked), a 4:3 LQ passes."""
    _sdks()
    import numpy as np

    from ggt_dataset.synth.inputs import decode_rgb
    from ggt_dataset.synth.qc import Validity, check_validity

    with FakeAPIServer(api_key=KEY, provider_sizes=True) as s:
        result = _edit(_backend(provider, s))
        with Image.open(io.BytesIO(result.image)) as im:
            assert im.size == size
        verdict, hq = check_validity(Validity(), decode_rgb(LQ, "lq"), decode_rgb(result.image, "hq"))
        assert verdict.verdict == "pass" and hq.shape == (48, 64, 3)
        assert check_validity(Validity(aspect_tolerance=0.01), np.zeros((48, 64, 3), np.uint8) + 9,
                              decode_rgb(result.image, "hq"))[0].verdict == ("fail" if provider == "gemini" else "pass")
    with FakeAPIServer(api_key=KEY, provider_sizes=True) as s:      # size=auto: a standard size
        result = _edit(_backend("openai", s, size="auto"))
        with Image.open(io.BytesIO(result.image)) as im:
            assert im.size == (1536, 1024)


# -- final failures ------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_malformed_image_is_a_backend_error_that_carries_its_cost(server, provider):
    server.add_fault("malformed", request=1)
    with pytest.raises(BackendError, match="malformed image") as err:
        _edit(_backend(provider, server))
    ok = _edit(_backend(provider, server))          # the same usage, a good image: the same bill
    assert err.value.cost == pytest.approx(ok.cost) and err.value.cost > 0


@pytest.mark.parametrize("provider, pattern", [("gemini", "HTTP 400.*API key"), ("openai", "HTTP 401.*OPENAI_API_KEY")])
def test_a_bad_key_is_a_backend_error(server, provider, pattern):
    with pytest.raises(BackendError, match=pattern):
        _edit(_backend(provider, server, api_key="wrong-key"))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_bad_request_is_a_backend_error(server, provider):
    server.add_fault("400", request=1)
    with pytest.raises(BackendError, match="HTTP 400"):
        _edit(_backend(provider, server))


@pytest.mark.parametrize("provider, env", [("gemini", ("GEMINI_API_KEY", "GOOGLE_API_KEY")),
                                           ("openai", ("OPENAI_API_KEY",))])
def test_no_key_anywhere_names_the_environment_variables(monkeypatch, provider, env):
    _sdks()
    for name in env:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(BackendError, match=env[0]):
        make_backend(provider)


# -- the server's script and log, as the engine's tests and bench use them ------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_faults_by_image_and_counts_by_image(server, provider):
    other = _png(shade=40)
    server.add_fault("503", image=other, times=1)

    async def go():
        backend = _backend(provider, server)
        try:
            first = await backend.edit(_request(LQ))
            with pytest.raises(TransientError):
                await backend.edit(_request(other, "rain/0002"))
            again = await backend.edit(_request(other, "rain/0002"))
            return first, again
        finally:
            await backend.aclose()

    first, again = asyncio.run(go())
    assert first.status == again.status == "ok"
    assert server.counts_by_image() == {hashlib.sha256(LQ).hexdigest(): 1, hashlib.sha256(other).hexdigest(): 2}
    assert [r.fault for r in server.requests] == [None, "503", None]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_concurrent_calls_overlap_against_a_fixed_latency(provider):
    _sdks()
    n, latency = 6, 0.3
    images = [_png(shade=i * 10) for i in range(n)]
    with FakeAPIServer(latency=latency) as server:
        async def go():
            backend = _backend(provider, server)
            try:
                return await asyncio.gather(*(backend.edit(_request(im, f"p/{i}")) for i, im in enumerate(images)))
            finally:
                await backend.aclose()
        started = time.monotonic()
        results = asyncio.run(go())
        elapsed = time.monotonic() - started
    assert all(r.status == "ok" for r in results)
    assert server.max_in_flight == n and elapsed < n * latency / 2


def test_parse_retry_after_reads_seconds_milliseconds_and_dates():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0   # in the past
    assert parse_retry_after({}) is None


# -- VLMs ----------------------------------------------------------------------------------
SCHEMA = {"type": "object", "properties": {"degradations": {"type": "array", "items": {"type": "string"}},
                                           "severity": {"type": "number", "minimum": 0, "maximum": 1},
                                           "category": {"type": "string", "enum": ["rain", "haze"]}},
          "required": ["degradations", "severity", "category"]}


def _ask(vision, schema=None):
    async def go():
        try:
            return await vision.ask(LQ, "image/png", "Describe the degradations.", json_schema=schema)
        finally:
            await vision.aclose()
    return asyncio.run(go())


@pytest.mark.parametrize("provider, model", [("gemini", "gemini-3.5-flash"), ("openai", "gpt-5.4-mini")])
def test_vision_answers_text(server, provider, model):
    vision = _vision(provider, server)
    assert isinstance(vision, VisionModel)
    reply = _ask(vision)
    assert reply.text and reply.model == model and reply.cost > 0 and reply.cost_estimated
    assert server.requests[0].image_sha256 == hashlib.sha256(LQ).hexdigest()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_vision_with_a_schema_answers_json_that_fits_it(server, provider):
    reply = _ask(_vision(provider, server), SCHEMA)
    answer = json.loads(reply.text)
    assert set(answer) == {"degradations", "severity", "category"} and answer["category"] == "rain"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_vision_refusal_and_429_follow_the_contract(server, provider):
    server.add_fault("refuse", request=1)
    with pytest.raises(BackendError, match="no (text|answer)") as err:
        _ask(_vision(provider, server))
    assert err.value.cost > 0                       # the tokens of a declined answer are billed too
    server.add_fault("429", request=2, retry_after=1)
    with pytest.raises(TransientError) as err:
        _ask(_vision(provider, server))
    assert err.value.retry_after == pytest.approx(1.0)


# -- registry ------------------------------------------------------------------------------
def test_registry_names_what_it_knows():
    with pytest.raises(GGTError, match="unknown backend 'dalle'.*classical, diffusers, gemini, openai"):
        make_backend("dalle")
    with pytest.raises(GGTError, match="unknown vision model"):
        make_vision("classical")


def test_registry_builds_the_classical_baseline_by_name():
    pytest.importorskip("ggt_dataset.synth.backends.classical")
    backend = make_backend("classical")
    assert isinstance(backend, Backend) and backend.name == "classical" and not backend.foundation_model


@pytest.mark.parametrize("provider, module, extra", [("gemini", "google.genai", "gemini"),
                                                     ("openai", "openai", "openai")])
def test_a_missing_sdk_names_the_pip_extra(monkeypatch, provider, module, extra):
    _sdks()
    monkeypatch.setitem(sys.modules, module, None)      # makes `import module` fail
    with pytest.raises(GGTError, match=rf"pip install 'ggt-100k\[{extra}\]'"):
        make_backend(provider, api_key=KEY)


# -- diffusers (no weights, no GPU here) -------------------------------------------------
def test_diffusers_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(GGTError, match=r"pip install 'ggt-100k\[diffusers\]'"):
        make_backend("diffusers", device="cpu")


@pytest.mark.slow      # importing diffusers and torch takes seconds
def test_diffusers_without_cuda_says_so():
    torch = pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(GGTError, match="no CUDA device"):
        make_backend("diffusers")


@pytest.mark.slow
def test_diffusers_missing_weights_offline_names_the_repo_and_the_download(monkeypatch, tmp_path):
    pytest.importorskip("diffusers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(GGTError, match=r"'Qwen/Qwen-Image-Edit-2509' are not in .*hf download Qwen/Qwen-Image-Edit-2509"):
        make_backend("diffusers", device="cpu", cache_dir=str(tmp_path))


@pytest.mark.slow
def test_diffusers_plumbing_unit_with_from_pretrained_monkeypatched(monkeypatch, tmp_path):
    """Unit test: only diffusers' from_pretrained is replaced; arguments and the call are checked."""
    diffusers = pytest.importorskip("diffusers")
    loaded, calls = {}, []

    class FakePipe:
        def to(self, device):
            loaded["device"] = device
            return self

        def __call__(self, **kw):
            calls.append(kw)
            return SimpleNamespace(images=[kw["image"].transpose(Image.Transpose.FLIP_LEFT_RIGHT)])

    def from_pretrained(repo, **kw):
        loaded.update(repo=repo, **kw)
        return FakePipe()

    monkeypatch.setattr(diffusers.QwenImageEditPlusPipeline, "from_pretrained", from_pretrained)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    device = "cuda" if sys.modules["torch"].cuda.is_available() else "cpu"   # the GPU path where there is one
    backend = make_backend("diffusers", device=device, steps=8, cache_dir=str(tmp_path))
    result = _edit(backend)
    assert loaded["repo"] == "Qwen/Qwen-Image-Edit-2509" and loaded["device"] == device
    assert loaded["local_files_only"] is False and str(loaded["dtype"]) == "torch.bfloat16"
    (call,) = calls
    assert call["prompt"] == "Remove the rain streaks" and call["num_inference_steps"] == 8
    assert call["generator"].initial_seed() == 7 and call["generator"].device.type == device
    assert call["image"].size == (64, 48)
    assert result.status == "ok" and result.cost == 0.0 and not result.cost_estimated
    with Image.open(io.BytesIO(result.image)) as im:
        assert im.format == "PNG" and im.size == (64, 48)
