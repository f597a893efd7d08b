"""Hardware choices on faked CPUs: bf16 where the CPU computes it natively, fp32 where it cannot, a cached
measurement where the flags do not say; explicit precisions pass through; the explainer's attention kernel."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from sentiment import runtime
from sentiment.errors import SentimentError

CPU = torch.device("cpu")


def cpuinfo(header: str, flags: str, cores: int = 2) -> str:
    """/proc/cpuinfo text with `cores` identical processor blocks, as Linux prints it."""
    return "\n\n".join(f"processor\t: {core}\n{header}\n{flags}" for core in range(cores)) + "\n"


X86_BASE = "flags\t\t: fpu vme de pse tsc msr pae sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2"
XEON_AMX = cpuinfo("vendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+",
                   X86_BASE + " avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8")
EPYC_AVX512_BF16 = cpuinfo("vendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9654 96-Core Processor",
                           X86_BASE + " avx512f avx512bw avx512_vnni avx512_bf16")
EPYC_AVX2 = cpuinfo("vendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7763 64-Core Processor", X86_BASE)
XEON_AVX512 = cpuinfo("vendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz",
                      X86_BASE + " avx512f avx512bw avx512_vnni")
XEON_AVX512_OTHER = XEON_AVX512.replace("Gold 6248", "Platinum 8380")
ARM_FEATURES = "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm sve"
NEOVERSE_V1 = cpuinfo("BogoMIPS\t: 2100.00", ARM_FEATURES + " svebf16 i8mm bf16 dgh rng\nCPU implementer\t: 0x41"
                      "\nCPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: 0xd40\nCPU revision\t: 1")
NEOVERSE_N1 = cpuinfo("BogoMIPS\t: 243.75", ARM_FEATURES.replace(" sve", "") + "\nCPU implementer\t: 0x41"
                      "\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1")

KINDS = [  # (cpuinfo, capability, what "auto" picks without a probe)
    pytest.param(XEON_AMX, "native", "bf16", id="amx-xeon"),
    pytest.param(EPYC_AVX512_BF16, "native", "bf16", id="avx512-bf16-epyc"),
    pytest.param(NEOVERSE_V1, "native", "bf16", id="arm-neoverse-v1"),
    pytest.param(EPYC_AVX2, "none", "fp32", id="avx2-only"),
    pytest.param(NEOVERSE_N1, "none", "fp32", id="arm-without-bf16"),
]


@pytest.fixture(autouse=True)
def fresh_probe_cache():
    runtime.probed_cpu_precision.cache_clear()
    runtime.probed_explain_attention.cache_clear()
    yield
    runtime.probed_cpu_precision.cache_clear()
    runtime.probed_explain_attention.cache_clear()


@pytest.fixture
def on_cpu(monkeypatch):
    """Make this machine look like the CPU whose /proc/cpuinfo text is passed."""
    def fake(text: str) -> None:
        monkeypatch.setattr(runtime, "read_cpuinfo", lambda: text)
    return fake


@pytest.fixture
def probe(monkeypatch):
    """Replace the measurement with one answering `probe.answer`; `probe.calls` counts its runs."""
    class Probe:
        answer: str | Exception = "bf16"
        calls = 0

        def __call__(self) -> str:
            self.calls += 1
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

    fake = Probe()
    monkeypatch.setattr(runtime, "probe_cpu_precision", fake)
    return fake


@pytest.mark.parametrize(("text", "support", "precision"), KINDS)
def test_auto_precision_follows_the_cpus_bf16_capability_without_probing(text, support, precision, on_cpu, probe,
                                                                         tmp_path):
    assert runtime.cpu_bf16_support(text) == support
    on_cpu(text)
    assert runtime.resolve_precision("auto", CPU, cache_dir=tmp_path) == precision
    assert probe.calls == 0 and not list(tmp_path.iterdir())


@pytest.mark.parametrize("text", [XEON_AVX512, ""], ids=["avx512-without-bf16", "no-cpuinfo"])
@pytest.mark.parametrize("answer", ["bf16", "fp32"])
def test_where_the_flags_are_unclear_the_probe_decides(text, answer, on_cpu, probe):
    assert runtime.cpu_bf16_support(text) == "unclear"
    on_cpu(text)
    probe.answer = answer
    assert runtime.resolve_precision("auto", CPU) == answer
    assert runtime.resolve_precision("auto", CPU) == answer
    assert probe.calls == 1  # once per process even without a cache folder


def test_the_probes_answer_is_kept_on_disk_per_cpu_model(on_cpu, probe, tmp_path):
    on_cpu(XEON_AVX512)
    assert runtime.resolve_precision("auto", CPU, cache_dir=tmp_path / "cache") == "bf16"
    stored = json.loads((tmp_path / "cache" / runtime.PROBE_CACHE_FILE).read_text())
    assert stored == {f"Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz | torch {torch.__version__}": "bf16"}

    runtime.probed_cpu_precision.cache_clear()  # a new process: only the file remembers
    probe.answer = "fp32"
    assert runtime.resolve_precision("auto", CPU, cache_dir=tmp_path / "cache") == "bf16"
    assert probe.calls == 1

    on_cpu(XEON_AVX512_OTHER)  # another CPU model is measured for itself, and kept beside the first
    assert runtime.resolve_precision("auto", CPU, cache_dir=tmp_path / "cache") == "fp32"
    assert probe.calls == 2
    assert sorted(json.loads((tmp_path / "cache" / runtime.PROBE_CACHE_FILE).read_text()).values()) == [
        "bf16", "fp32"]


def test_a_corrupt_cache_file_is_measured_again_and_rewritten(on_cpu, probe, tmp_path):
    (tmp_path / runtime.PROBE_CACHE_FILE).write_text("{not json")
    on_cpu(XEON_AVX512)
    assert runtime.resolve_precision("auto", CPU, cache_dir=tmp_path) == "bf16"
    assert probe.calls == 1
    assert list(json.loads((tmp_path / runtime.PROBE_CACHE_FILE).read_text()).values()) == ["bf16"]


def test_a_failing_probe_warns_once_and_falls_back_to_fp32(on_cpu, probe, tmp_path, caplog):
    on_cpu(XEON_AVX512)
    probe.answer = RuntimeError("oneDNN has no bf16 kernel here")
    with caplog.at_level(logging.WARNING, logger="sentiment.runtime"):
        assert runtime.resolve_precision("auto", CPU, cache_dir=tmp_path) == "fp32"
        assert runtime.resolve_precision("auto", CPU, cache_dir=tmp_path) == "fp32"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and probe.calls == 1
    assert "bf16 probe failed" in warnings[0].getMessage() and "using fp32" in warnings[0].getMessage()
    assert not list(tmp_path.iterdir())  # a failure is not a measurement: the next run tries again


def test_the_real_probe_answers_quickly_with_a_precision():
    assert runtime.probe_cpu_precision(repeats=2) in ("bf16", "fp32")


@pytest.mark.parametrize("device", [CPU, torch.device("cuda")], ids=["cpu", "cuda"])
@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_explicit_precisions_pass_through(precision, device, probe):
    assert runtime.resolve_precision(precision, device) == precision
    assert probe.calls == 0


def test_an_unknown_precision_names_the_flag():
    with pytest.raises(SentimentError, match="--precision must be one of auto, bf16, fp16, fp32, not 'int8'"):
        runtime.resolve_precision("int8", CPU)


def test_cpu_model_names():
    assert runtime.cpu_model_name(EPYC_AVX512_BF16) == "AMD EPYC 9654 96-Core Processor"
    assert runtime.cpu_model_name(NEOVERSE_V1) == "arm 0x41:0xd40"
    assert runtime.cpu_model_name("") == "unknown cpu"


def test_every_run_records_its_cpu(on_cpu):
    on_cpu(EPYC_AVX512_BF16)
    info = runtime.describe(CPU, "bf16")
    assert info["cpu"] == "AMD EPYC 9654 96-Core Processor" and info["cpu_bf16"] == "native"
    assert info["cpu_flags"] == ["avx512_bf16", "avx512_vnni"]
    on_cpu(NEOVERSE_V1)
    assert runtime.describe(CPU, "bf16")["cpu_flags"] == ["bf16", "svebf16"]


@pytest.mark.parametrize(("device", "precision", "cpu", "expected"), [
    (CPU, "bf16", XEON_AMX, "eager"), (CPU, "fp32", XEON_AMX, "sdpa"), (CPU, "fp32", EPYC_AVX512_BF16, "sdpa"),
    (CPU, "fp32", EPYC_AVX2, "sdpa"), (torch.device("cuda"), "bf16", EPYC_AVX2, "flash_attention_2"),
])
def test_the_explainers_attention_kernel_where_it_was_measured(device, precision, cpu, expected, monkeypatch):
    monkeypatch.setattr(runtime, "probe_explain_attention", lambda *a, **kw: pytest.fail("measured: no probe"))
    assert runtime.explain_attention(device, precision, "flash_attention_2", cpuinfo=cpu) == expected


@pytest.mark.parametrize("cpu", [EPYC_AVX512_BF16, NEOVERSE_V1])
@pytest.mark.parametrize("answer", ["eager", "sdpa"])
def test_bf16_without_amx_probes_the_explainers_kernel_once_per_cpu(cpu, answer, monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(runtime, "probe_explain_attention", lambda precision: calls.append(precision) or answer)
    monkeypatch.setattr(runtime, "PROBE_CACHE", tmp_path)
    assert runtime.explain_attention(CPU, "bf16", "sdpa", cpuinfo=cpu) == answer
    runtime.probed_explain_attention.cache_clear()  # a new process: the answer comes from the cache file
    assert runtime.explain_attention(CPU, "bf16", "sdpa", cpuinfo=cpu) == answer
    assert calls == ["bf16"]
    assert list(json.loads((tmp_path / runtime.ATTENTION_PROBE_FILE).read_text()).values()) == [answer]


def test_a_failing_kernel_probe_means_sdpa_and_is_not_kept(monkeypatch, tmp_path, caplog):
    def broken(precision):
        raise RuntimeError("no kernel")

    monkeypatch.setattr(runtime, "probe_explain_attention", broken)
    monkeypatch.setattr(runtime, "PROBE_CACHE", tmp_path)
    assert runtime.explain_attention(CPU, "bf16", "eager", cpuinfo=EPYC_AVX512_BF16) == "sdpa"
    assert "IG attention probe failed" in caplog.text and not (tmp_path / runtime.ATTENTION_PROBE_FILE).exists()


def test_the_kernel_probe_measures_both_kernels_on_this_machine(caplog):
    caplog.set_level("INFO", logger="sentiment.runtime")
    assert runtime.probe_explain_attention("fp32", tokens=32, rows=1, repeats=1) in ("eager", "sdpa")
    assert "IG attention probe (fp32): eager" in caplog.text


def test_entry_points_take_the_probe_cache_folder_from_the_environment(tmp_path):
    assert runtime.probe_cache_from({"SENTIMENT_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert runtime.probe_cache_from({"SENTIMENT_CACHE_DIR": ""}) is None
    assert runtime.probe_cache_from({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "sentiment"
    assert runtime.probe_cache_from({}) == Path.home() / ".cache" / "sentiment"
