#!/usr/bin/env bash
# Build (once) a llama-cpp-python wheel tuned to this CPU and print its path.
#
# OpenMP is off: with libgomp every OS thread that drives llama.cpp gets its own OpenMP
# team, and once a process holds more OpenMP threads than cores every barrier sleeps, so
# all contexts in the process (an LLM and an embedder on two workers) decode ~3x slower.
# ggml's own thread pool per context has no such cliff.
#
# The default native build crashes on CPUs with AMX (a llama.cpp kernel bug), so
# GGML_NATIVE is off and each SIMD extension is switched on only when
# /proc/cpuinfo lists it. pip caches wheels built from an sdist whatever CMAKE_ARGS
# said, hence --no-cache-dir. Wheels are cached under the user's cache directory,
# keyed on the version, the flags and the patches, so a different CPU never reuses a binary
# built for another.
#
# Patches (scripts/patches/*.patch, applied in name order to the sdist before the build):
#   llama-cpp-multirow-kernels.patch  multi-column matrix kernels for x86, each element the row dot
#     product's arithmetic in its order, bit for bit (a token's logits are the same alone and in a batch):
#     - Q4_1 x Q8_1 (AVX2, FMA, F16C): llama.cpp had only a row-at-a-time dot product for Q4_1
#       (SmolLM2's weights), so several sequences decoded together cost almost as much as that many
#       alone, and prompts evaluated at that speed too;
#     - with AVX-512 (F, BW, VNNI), two columns per 512-bit register, for Q4_1 and for Q8_0 (SmolLM2's
#       output matrix; llama.cpp's Q8_0 kernel is 256-bit): half the instructions per element.
set -euo pipefail

version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
python="${1:-python3}"
here=$(cd "$(dirname "$0")" && pwd)
patches=("$here"/patches/*.patch)

flags=(-DGGML_OPENMP=OFF -DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)
cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
has() { [[ "$cpu_flags" == *" $1 "* ]]; }
if [ "$(uname -m)" = "x86_64" ]; then
  has avx && flags+=(-DGGML_AVX=ON)
  has avx2 && flags+=(-DGGML_AVX2=ON)
  has fma && flags+=(-DGGML_FMA=ON)
  has f16c && flags+=(-DGGML_F16C=ON)
  has bmi2 && flags+=(-DGGML_BMI2=ON)
  if has avx512f && has avx512bw; then
    flags+=(-DGGML_AVX512=ON)
    has avx512vbmi && flags+=(-DGGML_AVX512_VBMI=ON)
    has avx512_vnni && flags+=(-DGGML_AVX512_VNNI=ON)
    has avx512_bf16 && flags+=(-DGGML_AVX512_BF16=ON)
  fi
fi

key=$( { printf '%s %s %s\n' "$version" "$("$python" -c 'import sys; print(sys.implementation.cache_tag)')" "${flags[*]}"
         cat "${patches[@]}"; } | sha256sum | cut -c1-16)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/runanywhere/wheels/llama-cpp-python-$key"
wheel=$(ls "$cache"/llama_cpp_python-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
  # Two installs at once (two checkouts) build the wheel once: the second waits for the first.
  mkdir -p "$(dirname "$cache")"
  exec 8>"$cache.lock"
  if ! flock -n 8; then
    echo "waiting for another build of llama-cpp-python ($cache.lock) ..." >&2
    flock 8
  fi
  wheel=$(ls "$cache"/llama_cpp_python-*.whl 2>/dev/null | head -n1 || true)
fi
if [ -z "$wheel" ]; then
  echo "building llama-cpp-python $version with: ${flags[*]} (about 5 minutes on 2 cores)" >&2
  tmp="$cache.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp/sdist" "$tmp/src" "$tmp/dist"
  "$python" -m pip download --no-cache-dir --no-deps --no-binary :all: -d "$tmp/sdist" "llama-cpp-python==$version" >&2
  tar xzf "$tmp"/sdist/llama_cpp_python-"$version".tar.gz -C "$tmp/src"
  src="$tmp/src/llama_cpp_python-$version"
  for p in "${patches[@]}"; do
    echo "applying $(basename "$p")" >&2
    patch --batch --forward -p1 -d "$src" < "$p" >&2
  done
  CMAKE_ARGS="${flags[*]}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$python" -m pip wheel --no-cache-dir --no-deps -w "$tmp/dist" "$src" >&2
  rm -rf "$cache" && mv "$tmp/dist" "$cache" && rm -rf "$tmp"
  wheel=$(ls "$cache"/llama_cpp_python-*.whl | head -n1)
fi
echo "$wheel"
