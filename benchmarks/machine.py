"""What the benchmark ran on (standard library only: no TF, no torch)."""

import datetime
import os
import platform
import socket

ENV_PREFIXES = ("TF_", "MALLOC_", "OMP_", "KMP_", "KERAS_", "CUDA_")
ENV_NAMES = ("LD_PRELOAD",)
#: The /proc/cpuinfo flags that decide fp32 convolution and matmul speed.
SIMD_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni")
SIMD_FLAGS += ("avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (or the platform's)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags():
    """The `SIMD_FLAGS` this CPU has, in `SIMD_FLAGS` order (Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in SIMD_FLAGS if flag in present]
    except OSError:
        pass
    return []


def memory_bytes():
    """Total memory from /proc/meminfo, or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def load_average():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def portable(value):
    """`value`, or a path's file name: results name no local paths."""
    return os.path.basename(value) if os.path.isabs(value) else value


def environment():
    """The benchmark-relevant environment variables of the coordinator."""
    return {
        name: portable(value)
        for name, value in sorted(os.environ.items())
        if name.startswith(ENV_PREFIXES) or name in ENV_NAMES
    }


def machine_info():
    """Host, CPU, cores, memory, load, environment and start time."""
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores(),
        "memory_bytes": memory_bytes(),
        "load_average_start": load_average(),
        "python": platform.python_version(),
        "environment": environment(),
        "started": datetime.datetime.now()
        .astimezone()
        .isoformat(timespec="seconds"),
    }
