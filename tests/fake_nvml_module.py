"""The fake NVML as an importable module (a fresh simulated GPU at a steady 250 W), so the
sampler *process* can load it on the CPU CI the way it loads pynvml on a GPU."""

from fake_nvml import FakeNvml

_fake = FakeNvml(idle_w=250.0)
globals().update({name: getattr(_fake, name) for name in dir(_fake) if name.startswith("nvml")})
