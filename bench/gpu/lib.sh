# lib.sh: what the bench/gpu scripts share; each sources it right after `set`. It moves to the repository
# root and names the tool that bench/gpu/prepare.sh publishes into .devcheck.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
tool=.devcheck/tool/mixup-bert

# require_tool [HINT]: stop (exit 2) unless the published tool is here; HINT says what to run first
require_tool() {
  [ -x "$tool" ] || { echo "no $tool: ${1:-run bench/gpu/prepare.sh first and carry .devcheck}" >&2; exit 2; }
}

# use_cublas: put cuBLAS on LD_LIBRARY_PATH, the system toolkit's or the one PyTorch's wheels bring;
# CUBLAS_DIR says which (empty: neither, the loader's own search remains)
use_cublas() {
  local d
  CUBLAS_DIR=
  for d in /usr/local/cuda/lib64 $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, s, "lib") for p in nvidia.__path__ for s in ("cu13", "cublas")))' 2>/dev/null); do
    if ls "$d"/libcublas.so.1[123] >/dev/null 2>&1; then export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"; CUBLAS_DIR=$d; return; fi
  done
}

# cuda_tool NAME: the path of one of the CUDA toolkit's tools (ncu, nsys, compute-sanitizer), or nothing
cuda_tool() {
  command -v "$1" || ls /usr/local/cuda/bin/"$1" /opt/nvidia/nsight-systems/*/bin/"$1" 2>/dev/null | head -1 || true
}
