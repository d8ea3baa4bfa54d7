"""The few vector types an optimizer's kernel uses, in place of Inductor's C++ prelude.

Every kernel Inductor generates starts with ``#include <torch/csrc/inductor/cpp_prefix.h>``,
which pulls in ATen's whole vector library (every dtype, Sleef, quantized types): parsing
it is 1.4-1.8 s of the ~2 s ``g++`` spends on an optimizer's kernel, and more when the
headers are not yet in the page cache (``g++`` took 3.1-3.5 s in the first process after
the cache was emptied). An optimizer's update is a float32 pointwise loop that uses a
dozen of those operations. :func:`with_slim_prefix` replaces the include with
:data:`PREFIX`, which defines exactly those, each with the instructions ATen's AVX-512
and AVX2 ``Vectorized<float>`` use (the loop compiles to the same instructions, up to
GCC's register choices, runs as fast and gives the same bits), when the kernel uses
nothing else; any other kernel keeps Inductor's prelude.
"""

from __future__ import annotations

import re

# Inductor's prelude, as the first line of the kernels it generates.
_INCLUDE = re.compile(r'\A#include [<"][^>"]*torch/csrc/inductor/cpp_prefix\.h[>"]\n')

PREFIX = r"""// descend: the part of Inductor's cpp_prefix.h an optimizer's float32 loop uses.
#include <cstdint>
#include <immintrin.h>
#include <omp.h>

#if defined(__GNUC__) || defined(__clang__)
#define C10_LIKELY(expr) (__builtin_expect(static_cast<bool>(expr), 1))
#define C10_UNLIKELY(expr) (__builtin_expect(static_cast<bool>(expr), 0))
#else
#define C10_LIKELY(expr) (expr)
#define C10_UNLIKELY(expr) (expr)
#endif

namespace c10 {
inline namespace descend_prefix {
template <typename To, typename From>
inline To convert(From f) {
  return static_cast<To>(f);
}
// c10::div_floor_integer, statement for statement (the same code around the loop):
// floor division, 0 for a zero divisor.
inline int64_t div_floor_integer(int64_t a, int64_t b) {
  if (C10_UNLIKELY(b == 0)) {
    return 0;
  }
  if (C10_UNLIKELY(a == INT64_MIN && b == -1)) {
    return a;
  }
  if ((a < 0) != (b < 0)) {
    const int64_t quot = a / b;
    const int64_t rem = a % b;
    return rem ? quot - 1 : quot;
  }
  return a / b;
}
}  // namespace descend_prefix
}  // namespace c10

namespace at {
namespace vec {
inline namespace descend_prefix {
template <typename T>
struct Vectorized;

#if defined(CPU_CAPABILITY_AVX512)
template <>
struct Vectorized<float> {
  __m512 values;
  static constexpr int size() { return 16; }
  Vectorized() : values(_mm512_setzero_ps()) {}
  Vectorized(__m512 v) : values(v) {}
  Vectorized(float v) : values(_mm512_set1_ps(v)) {}
  operator __m512() const { return values; }
  static Vectorized all_ones() { return _mm512_castsi512_ps(_mm512_set1_epi32(-1)); }
  static Vectorized loadu(const void* ptr, int64_t count = size()) {
    if (count == size()) return _mm512_loadu_ps(reinterpret_cast<const float*>(ptr));
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1ULL << count) - 1), ptr);
  }
  void store(void* ptr, int64_t count = size()) const {
    if (count == size()) {
      _mm512_storeu_ps(reinterpret_cast<float*>(ptr), values);
    } else if (count > 0) {
      _mm512_mask_storeu_ps(
          reinterpret_cast<float*>(ptr), static_cast<__mmask16>((1ULL << count) - 1), values);
    }
  }
  // Lanes where `mask` is all ones take b, the others a (masks are all ones or zero).
  static Vectorized blendv(const Vectorized& a, const Vectorized& b, const Vectorized& mask) {
    const __mmask16 m = _mm512_cmp_epi32_mask(
        _mm512_castps_si512(mask.values), _mm512_set1_epi32(-1), _MM_CMPINT_EQ);
    return _mm512_mask_blend_ps(m, a.values, b.values);
  }
  static Vectorized from_mask(__mmask16 m) {
    return _mm512_castsi512_ps(_mm512_mask_set1_epi32(_mm512_setzero_si512(), m, -1));
  }
  Vectorized sqrt() const { return _mm512_sqrt_ps(values); }
  Vectorized neg() const { return _mm512_xor_ps(_mm512_set1_ps(-0.f), values); }
  Vectorized operator==(const Vectorized& o) const {
    return from_mask(_mm512_cmp_ps_mask(values, o.values, _CMP_EQ_OQ));
  }
  Vectorized operator!=(const Vectorized& o) const {
    return from_mask(_mm512_cmp_ps_mask(values, o.values, _CMP_NEQ_UQ));
  }
  Vectorized operator<(const Vectorized& o) const {
    return from_mask(_mm512_cmp_ps_mask(values, o.values, _CMP_LT_OQ));
  }
  Vectorized operator<=(const Vectorized& o) const {
    return from_mask(_mm512_cmp_ps_mask(values, o.values, _CMP_LE_OQ));
  }
  Vectorized operator>(const Vectorized& o) const {
    return from_mask(_mm512_cmp_ps_mask(values, o.values, _CMP_GT_OQ));
  }
  Vectorized operator>=(const Vectorized& o) const {
    return from_mask(_mm512_cmp_ps_mask(values, o.values, _CMP_GE_OQ));
  }
};
using VF = Vectorized<float>;
inline VF operator+(const VF& a, const VF& b) { return _mm512_add_ps(a, b); }
inline VF operator-(const VF& a, const VF& b) { return _mm512_sub_ps(a, b); }
inline VF operator*(const VF& a, const VF& b) { return _mm512_mul_ps(a, b); }
inline VF operator/(const VF& a, const VF& b) { return _mm512_div_ps(a, b); }
inline VF operator&(const VF& a, const VF& b) { return _mm512_and_ps(a, b); }
inline VF operator|(const VF& a, const VF& b) { return _mm512_or_ps(a, b); }
inline VF operator^(const VF& a, const VF& b) { return _mm512_xor_ps(a, b); }
// IEEE 754-2019 maximum and minimum: a NaN in either operand gives NaN (all ones).
inline VF maximum(const VF& a, const VF& b) {
  return _mm512_or_ps(_mm512_max_ps(a, b), VF::from_mask(_mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q)));
}
inline VF minimum(const VF& a, const VF& b) {
  return _mm512_or_ps(_mm512_min_ps(a, b), VF::from_mask(_mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q)));
}
#elif defined(CPU_CAPABILITY_AVX2)
template <>
struct Vectorized<float> {
  __m256 values;
  static constexpr int size() { return 8; }
  Vectorized() : values(_mm256_setzero_ps()) {}
  Vectorized(__m256 v) : values(v) {}
  Vectorized(float v) : values(_mm256_set1_ps(v)) {}
  operator __m256() const { return values; }
  static Vectorized all_ones() { return _mm256_castsi256_ps(_mm256_set1_epi32(-1)); }
  static __m256i lanes_below(int64_t count) {
    return _mm256_cmpgt_epi32(
        _mm256_set1_epi32(static_cast<int32_t>(count)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Vectorized loadu(const void* ptr, int64_t count = size()) {
    if (count >= size()) return _mm256_loadu_ps(reinterpret_cast<const float*>(ptr));
    return _mm256_maskload_ps(reinterpret_cast<const float*>(ptr), lanes_below(count));
  }
  void store(void* ptr, int64_t count = size()) const {
    if (count >= size()) {
      _mm256_storeu_ps(reinterpret_cast<float*>(ptr), values);
    } else if (count > 0) {
      _mm256_maskstore_ps(reinterpret_cast<float*>(ptr), lanes_below(count), values);
    }
  }
  static Vectorized blendv(const Vectorized& a, const Vectorized& b, const Vectorized& mask) {
    return _mm256_blendv_ps(a.values, b.values, mask.values);
  }
  Vectorized sqrt() const { return _mm256_sqrt_ps(values); }
  Vectorized neg() const { return _mm256_xor_ps(_mm256_set1_ps(-0.f), values); }
  Vectorized operator==(const Vectorized& o) const { return _mm256_cmp_ps(values, o.values, _CMP_EQ_OQ); }
  Vectorized operator!=(const Vectorized& o) const { return _mm256_cmp_ps(values, o.values, _CMP_NEQ_UQ); }
  Vectorized operator<(const Vectorized& o) const { return _mm256_cmp_ps(values, o.values, _CMP_LT_OQ); }
  Vectorized operator<=(const Vectorized& o) const { return _mm256_cmp_ps(values, o.values, _CMP_LE_OQ); }
  Vectorized operator>(const Vectorized& o) const { return _mm256_cmp_ps(values, o.values, _CMP_GT_OQ); }
  Vectorized operator>=(const Vectorized& o) const { return _mm256_cmp_ps(values, o.values, _CMP_GE_OQ); }
};
using VF = Vectorized<float>;
inline VF operator+(const VF& a, const VF& b) { return _mm256_add_ps(a, b); }
inline VF operator-(const VF& a, const VF& b) { return _mm256_sub_ps(a, b); }
inline VF operator*(const VF& a, const VF& b) { return _mm256_mul_ps(a, b); }
inline VF operator/(const VF& a, const VF& b) { return _mm256_div_ps(a, b); }
inline VF operator&(const VF& a, const VF& b) { return _mm256_and_ps(a, b); }
inline VF operator|(const VF& a, const VF& b) { return _mm256_or_ps(a, b); }
inline VF operator^(const VF& a, const VF& b) { return _mm256_xor_ps(a, b); }
inline VF maximum(const VF& a, const VF& b) {
  return _mm256_or_ps(_mm256_max_ps(a, b), _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
}
inline VF minimum(const VF& a, const VF& b) {
  return _mm256_or_ps(_mm256_min_ps(a, b), _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
}
#endif

#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
template <typename T, int N>
struct VecMask;
// A mask of one vector: every lane all ones (true) or zero. From a flag, or lane by lane
// from a vector (nonzero, NaN included, is true), as ATen's; a pointer (ATen reads an
// array there) does not compile rather than convert to a flag.
template <>
struct VecMask<float, 1> {
  VF mask;
  static VecMask from(bool b) { return VecMask{b ? VF::all_ones() : VF(0.f)}; }
  static VecMask from(const VF& v) { return VecMask{v != VF(0.f)}; }
  template <typename U>
  static VecMask from(U*) = delete;
  template <typename U, int L>
  VF cast() const { return mask; }
};
#endif  // Without a vector ISA (Inductor's scalar loops), no vector types.
}  // namespace descend_prefix
}  // namespace vec
}  // namespace at
"""

# Inductor's integer-division error flag: set only by its helpers for integer tensor
# division, which a kernel admitted here does not call (its one division is of the length
# by the vector width, c10::div_floor_integer, which notes nothing).
_DIV_ERROR = re.compile(
    r"^[ \t]*(std::atomic<int> inductor_cpu_integer_div_error\{0\};"
    r"|inductor_cpu_integer_div_error_flag = &inductor_cpu_integer_div_error;"
    r"|inductor_cpu_integer_div_error_flag = nullptr;"
    r"|inductor_cpu_throw_if_integer_div_error\(inductor_cpu_integer_div_error\);)\n",
    re.MULTILINE,
)

# Names a kernel may use besides its own variables: C++ keywords and types, what PREFIX
# defines, the prefetch macro, and the names of descend's call table.
_KNOWN = frozenset(
    """
    auto bool const decltype double extern float for if int int64_t reinterpret_cast return
    static_cast template uintptr_t void
    at vec Vectorized VecMask c10 convert div_floor_integer loadu store blendv sqrt neg
    maximum minimum from cast C10_LIKELY C10_UNLIKELY omp_get_thread_num tid left right
    DESCEND_PREFETCH Placeholder KERNEL_NAME descend_kernel_calls table calls c
    """.split()  # noqa: SIM905 (a word list reads better than 46 quoted strings)
)
_VARIABLE = re.compile(r"(tmp|in_ptr|out_ptr|ks|x)\d+(_value)?")
_PREPROCESSOR = frozenset(
    [
        "#pragma omp parallel",
        "#pragma omp for",
        "#if defined(__GNUC__) || defined(__clang__)",
        "#define DESCEND_PREFETCH(address) __builtin_prefetch(address)",
        "#else",
        "#define DESCEND_PREFETCH(address) ((void)0)",
        "#endif",
    ]
)
# Template arguments PREFIX has: float vectors and one-vector float masks only.
_TEMPLATE = re.compile(r"\b(Vectorized|VecMask|convert|cast)<([^>]*)>")
_TEMPLATE_ARGS = {
    "Vectorized": "float",
    "VecMask": "float,1",
    "convert": "float",
    "cast": "float,1",
}
_NUMBER = re.compile(r"(?<![\w.])(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFlLuU]*")
_NAME = re.compile(r"[A-Za-z_]\w*")


def uses_only_prefix(src: str) -> bool:
    """Whether the kernel ``src`` (Inductor's prelude line and the division-error lines
    removed) uses nothing but what :data:`PREFIX` defines."""
    code = []
    for line in src.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            if stripped not in _PREPROCESSOR:
                return False
        elif not stripped.startswith("//"):
            code.append(line)
    body = re.sub(r'"[^"\n]*"', "", "\n".join(code))
    for name, args in _TEMPLATE.findall(body):
        if args.replace(" ", "") != _TEMPLATE_ARGS[name]:
            return False
    names = _NAME.findall(_NUMBER.sub(" ", body))
    return all(n in _KNOWN or _VARIABLE.fullmatch(n) for n in names)


def with_slim_prefix(src: str) -> str:
    """Inductor's C++ kernel ``src`` with :data:`PREFIX` in place of its prelude, when
    the kernel uses nothing else; otherwise ``src`` as it was.

    Measured with ``g++`` as Inductor runs it on an Adam kernel (the page cache warm):
    2.05 s with the prelude, 0.77 s with :data:`PREFIX` (most of which is the
    ``<immintrin.h>`` it needs and the ``<Python.h>`` binding Inductor appends).
    """
    match = _INCLUDE.match(src)
    if match is None:
        return src
    body = _DIV_ERROR.sub("", src[match.end() :])
    # Any other use of the division flag is a name PREFIX lacks: refused below.
    if not uses_only_prefix(body):
        return src
    return PREFIX + body
