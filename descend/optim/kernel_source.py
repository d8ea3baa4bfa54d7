"""Inductor's generated C++, adjusted before it is compiled: 0-d inputs read once, every
stream the vector loop reads prefetched ahead, a second entry point that makes many
calls of the kernel in one C++ loop, and (:mod:`descend.optim.kernel_prefix`) a slim
prelude in place of Inductor's.

:func:`kernels_adjusted` is active while :func:`descend.optim.backend.hoisted_inductor`
compiles; :func:`generated_code_key` keeps kernels cached with and without the rewrites
apart in Inductor's on-disk cache.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator
from typing import Any

import torch

from descend.optim import kernel_prefix
from descend.optim.kernel_prefix import with_slim_prefix

# A read of a 0-d input in Inductor's C++ loops.
_SCALAR_READ = "[static_cast<int64_t>(0L)]"


def hoist_scalar_loads(src: str) -> str:
    """Inductor's C++ kernel ``src`` with every 0-d input read once before its loops.

    Inductor reads a 0-d input (a bias correction, the learning rate) inside the loop,
    and the vector stores (``_mm512_storeu_ps``, through types that may alias anything)
    stop the C++ compiler from moving the read out: one load, conversion and broadcast
    per input per 16 elements. Measured on Adam at 10.5M parameters: 7.05 ms with the
    reads in the loop, 6.58 ms hoisted (torch's fused kernel 6.56 ms). A pointer is
    hoisted only when its element type differs from every output's, so no store of the
    kernel can change the value it points to (a float32 model's float64 scalars);
    anything else is left as it was.
    """
    start = src.find('extern "C"')
    end = src.find(")", start)
    body = src.find("{", end)
    if start < 0 or end < 0 or body < 0:
        return src
    params = [p.strip() for p in src[src.find("(", start) + 1 : end].split(",")]
    outputs = set()
    inputs: dict[str, str] = {}
    for param in params:
        match = re.fullmatch(r"(const )?(\w+)\s*\*\s*(\w+)", param)
        if match is None:
            continue
        const, element, name = match.groups()
        if const:
            inputs[name] = element
        else:
            outputs.add(element)
    rest = src[body + 1 :]
    hoisted = []
    for name, element in inputs.items():
        uses = re.findall(rf"\b{name}\b(\[static_cast<int64_t>\(0L\)\])?", rest)
        if element not in outputs and uses and all(uses):
            hoisted.append((name, element))
    if not hoisted:
        return src
    lines = "".join(f"\n    const {e} {n}_value = {n}[0];" for n, e in hoisted)
    for name, _ in hoisted:
        rest = rest.replace(f"{name}{_SCALAR_READ}", f"{name}_value")
    return src[: body + 1] + lines + rest


# How far ahead of the vector loop :func:`prefetch_vector_loads` asks for memory, in bytes.
PREFETCH_BYTES = 4096

# The prefetch as the kernel calls it: GCC's builtin where the compiler has it (GCC,
# Clang), nothing elsewhere (MSVC).
_PREFETCH = "DESCEND_PREFETCH"
_PREFETCH_MACRO = f"""#if defined(__GNUC__) || defined(__clang__)
#define {_PREFETCH}(address) __builtin_prefetch(address)
#else
#define {_PREFETCH}(address) ((void)0)
#endif
"""

# A full-width vector load in Inductor's C++ loop: ``at::vec::Vectorized<T>::loadu(ptr +
# static_cast<int64_t>(x0), static_cast<int64_t>(16))`` (the tail's loads pass a computed
# count, not a literal, and are left alone).
_VECTOR_LOAD = re.compile(
    r"^(?P<indent>[ \t]*)auto \w+ = at::vec::Vectorized<\w+>::loadu\("
    r"(?P<pointer>\w+) \+ static_cast<int64_t>\((?P<index>x\d+)\), "
    r"static_cast<int64_t>\(\d+\)\);$",
    re.MULTILINE,
)


def prefetch_vector_loads(src: str, distance: int = PREFETCH_BYTES) -> str:
    """Inductor's C++ kernel ``src`` with a software prefetch, ``distance`` bytes ahead,
    before every full-width vector load of its loops.

    An optimizer's loop reads a few long streams once each, and on the 2-core machine
    the hardware prefetcher alone keeps too few reads in flight: plain SGD over one
    50.5M-element buffer, Inductor's loop 15.29 ms, with a prefetch 4 KiB ahead of each
    stream 13.44 ms, torch's ``add_`` 13.76 ms (31 interleaved rounds; 1 KiB and 8 KiB
    ahead: 13.81, 13.67 ms). An AVX-512 vector of float32 is one cache line, so each line
    is asked for once (twice with AVX2's half-line vectors: harmless). The address is computed as an integer: a prefetch past the end of a buffer
    is harmless, forming the pointer would not be. Compilers without GCC's builtin
    (MSVC) get the source without prefetches.
    """

    def prefetched(match: re.Match[str]) -> str:
        address = f"reinterpret_cast<uintptr_t>({match['pointer']} + {match['index']}) + {distance}"
        return (
            f"{match['indent']}{_PREFETCH}(reinterpret_cast<const void*>({address}));\n"
            + match.group(0)
        )

    out = _VECTOR_LOAD.sub(prefetched, src)
    if out == src:
        return src
    # After the first line (Inductor's #include, which may be a precompiled header).
    first = out.find("\n") + 1
    return out[:first] + _PREFETCH_MACRO + out[first:]


# The entry point :func:`with_call_table` adds to a kernel's library.
CALLS_SYMBOL = "descend_kernel_calls"

_CALLS = """

// descend: every row of `table` holds one call's arguments (pointers and lengths as
// int64); the calls run in this loop instead of one Python call each.
extern "C" void {symbol}(const int64_t* table, const int64_t calls)
{{
    for (int64_t c = 0; c < calls; ++c, table += {width})
    {{
        {name}({arguments});
    }}
}}
"""


def with_call_table(src: str) -> str:
    """Inductor's C++ kernel ``src`` with a second entry point,
    ``descend_kernel_calls(table, calls)``, which calls the kernel once per row of an
    int64 ``table`` (row ``c``: call ``c``'s arguments, pointers as addresses).

    A param group's step calls the same kernel once per large parameter. From Python each
    call costs ~20 us once the previous one has streamed the caches out (its binding, the
    interpreter's state, all cold); in one C++ loop the calls cost what the kernel costs
    (measured: 49 calls over 1M-element pieces, 14.77 ms from Python, 13.70 ms in C++,
    13.69 ms for one call over all 49M elements). Left as it is when the kernel takes
    anything but pointers and 64-bit integers.
    """
    # The kernel's name is a placeholder (``Placeholder.KERNEL_NAME``) that Inductor
    # replaces everywhere in the source, the call below included.
    match = re.search(r'extern "C"\s+void\s+([\w.]+)\s*\(([^)]*)\)', src)
    if match is None or not match.group(2).strip():
        return src
    name, params = match.groups()
    arguments = []
    for i, param in enumerate(p.strip() for p in params.split(",")):
        pointer = re.fullmatch(r"((?:const\s+)?\w+\s*\*)\s*\w+", param)
        if pointer is not None:
            arguments.append(f"reinterpret_cast<{pointer.group(1)}>(table[{i}])")
        elif re.fullmatch(r"(?:const\s+)?int64_t\s+\w+", param):
            arguments.append(f"table[{i}]")
        else:
            return src
    return src + _CALLS.format(
        symbol=CALLS_SYMBOL, width=len(arguments), name=name, arguments=", ".join(arguments)
    )


@functools.cache
def generated_code_key() -> Any:
    """A graph pass that changes nothing and puts this file in Inductor's cache key, as
    :func:`hoist_scalar_loads`, :func:`prefetch_vector_loads` and :func:`with_call_table`
    change the code Inductor generates (a kernel cached without them is not reused). Made
    on first use: importing Inductor takes ~1 s."""
    from torch._inductor.custom_graph_pass import CustomGraphPass, get_hash_for_files

    class GeneratedCodeKey(CustomGraphPass):
        def __call__(self, graph: torch.fx.Graph) -> None:
            return None

        def uuid(self) -> bytes:
            return get_hash_for_files((__file__, kernel_prefix.__file__))

    return GeneratedCodeKey()


@contextlib.contextmanager
def kernels_adjusted(slim: bool = False) -> Iterator[None]:
    """While compiling, pass each C++ kernel Inductor defines through
    :func:`hoist_scalar_loads`, :func:`prefetch_vector_loads` and :func:`with_call_table`,
    and with ``slim`` (the kernels are compiled for AVX-512 or AVX2 by GCC or Clang)
    through :func:`descend.optim.kernel_prefix.with_slim_prefix`."""
    from torch._inductor.codegen.cpp import CppScheduling

    original = CppScheduling.define_kernel

    def define_kernel(self: Any, src_code: str, *args: Any, **kwargs: Any) -> Any:
        src_code = with_call_table(prefetch_vector_loads(hoist_scalar_loads(src_code)))
        if slim:
            src_code = with_slim_prefix(src_code)
        return original(self, src_code, *args, **kwargs)

    CppScheduling.define_kernel = define_kernel  # type: ignore[method-assign]
    try:
        yield
    finally:
        CppScheduling.define_kernel = original  # type: ignore[method-assign]
