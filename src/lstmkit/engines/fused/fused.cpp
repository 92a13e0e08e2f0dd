// lstmkit's fused CPU engine: one C++ call runs a whole direction of a recurrent layer, forward
// or backward, so no Python runs per time step.
//
// Each step is the recurrent product (BLAS gemm, called directly) and a pointwise update
// (ATen's Vectorized<T>, threaded over batch rows with at::parallel_for). The input projection
// W_ih·x + b of all steps is computed before the call, in Python, as one product.
//
// Sequences are packed: step t holds rows [0, bs[t]) at offset off[t] of every (N, ·) array.
// A padded batch is the case bs[t] = B. Running states live in (B, ·) buffers updated in place:
// a sequence that has ended is simply no longer touched, so its row keeps its final state, and in
// reverse a sequence joins with the initial state already in its row.
//
// The equations are those of lstmkit/cells/{lstm,gru,rnn}.py; the reference engine is the truth
// this file is tested against (tests/engines).

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <dlfcn.h>

#include <cfloat>
#include <cmath>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <vector>

namespace {

using at::Tensor;
using at::vec::Vectorized;

// ---------------------------------------------------------------------------------------------
// gemm: C = alpha * op(A) @ op(B) + beta * C, row-major, through the BLAS that torch ships
// (sgemm_/dgemm_, looked up at run time); at::mm where there is none.

using sgemm_fn = void (*)(const char*, const char*, const int*, const int*, const int*,
                          const float*, const float*, const int*, const float*, const int*,
                          const float*, float*, const int*);
using dgemm_fn = void (*)(const char*, const char*, const int*, const int*, const int*,
                          const double*, const double*, const int*, const double*, const int*,
                          const double*, double*, const int*);

struct Blas {
  sgemm_fn s = nullptr;
  dgemm_fn d = nullptr;
  Blas() {
    s = reinterpret_cast<sgemm_fn>(dlsym(RTLD_DEFAULT, "sgemm_"));
    d = reinterpret_cast<dgemm_fn>(dlsym(RTLD_DEFAULT, "dgemm_"));
  }
};

const Blas& blas() {
  static Blas b;
  return b;
}

template <typename T>
void gemm_fallback(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A,
                   int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  Tensor a = ta ? at::from_blob(const_cast<T*>(A), {k, m}, {lda, 1}, opts).t()
                : at::from_blob(const_cast<T*>(A), {m, k}, {lda, 1}, opts);
  Tensor b = tb ? at::from_blob(const_cast<T*>(B), {n, k}, {ldb, 1}, opts).t()
                : at::from_blob(const_cast<T*>(B), {k, n}, {ldb, 1}, opts);
  Tensor c = at::from_blob(C, {m, n}, {ldc, 1}, opts);
  c.mul_(beta).add_(at::mm(a, b), alpha);
}

template <typename T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < n; ++j) C[r * ldc + j] = beta == T(0) ? T(0) : beta * C[r * ldc + j];
    return;
  }
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
  const char tA = ta ? 'T' : 'N', tB = tb ? 'T' : 'N';
  const int M = static_cast<int>(n), N = static_cast<int>(m), K = static_cast<int>(k);
  const int LA = static_cast<int>(ldb), LB = static_cast<int>(lda), LC = static_cast<int>(ldc);
  if constexpr (std::is_same_v<T, float>) {
    if (blas().s) return blas().s(&tB, &tA, &M, &N, &K, &alpha, B, &LA, A, &LB, &beta, C, &LC);
  } else {
    if (blas().d) return blas().d(&tB, &tA, &M, &N, &K, &alpha, B, &LA, A, &LB, &beta, C, &LC);
  }
  gemm_fallback<T>(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

// ---------------------------------------------------------------------------------------------
// oneDNN, through torch's own operators: torch links oneDNN in but exports none of its symbols,
// so its packed-weight linear (the one torch.compile's CPU backend calls) is reached through the
// dispatcher. Where MKL takes slow code paths (AMD CPUs) it multiplies up to twice as fast;
// Python measures both libraries on a layer's shapes and passes the faster (products.py).

enum : int64_t { BLAS = 0, ONEDNN = 1 };

struct Dnnl {
  std::optional<c10::OperatorHandle> linear, reorder;
  Dnnl() {
    auto& d = c10::Dispatcher::singleton();
    linear = d.findSchema({"mkldnn::_linear_pointwise", ""});
    reorder = d.findSchema({"mkldnn::_reorder_linear_weight", ""});
  }
  bool ok() const { return linear.has_value() && reorder.has_value(); }
};

const Dnnl& dnnl() {
  static Dnnl d;
  return d;
}

// W (out, in) as oneDNN wants it for products with about `batch` rows
Tensor dnnl_pack(const Tensor& W, int64_t batch) {
  torch::jit::Stack stack{W, c10::IValue(batch)};
  dnnl().reorder->callBoxed(stack);
  return stack[0].toTensor();
}

// A (m, in) @ W^T, W packed by dnnl_pack
Tensor dnnl_linear(const Tensor& A, const Tensor& packed) {
  torch::jit::Stack stack{A,
                          packed,
                          c10::IValue(),
                          c10::IValue(std::string("none")),
                          c10::IValue(c10::List<std::optional<c10::Scalar>>()),
                          c10::IValue()};
  dnnl().linear->callBoxed(stack);
  return stack[0].toTensor();
}

// A weight used as the right operand of every step's product, packed once per call with MKL's
// packed GEMM where torch's MKL offers it (float32): for the small row counts of one step it
// runs about a third faster than a plain gemm. Computes C = A @ op(W) + beta * C with op(W) = W^T
// (W_hh in the forward pass) or W (in the backward pass).

using pack_size_fn = size_t (*)(int, int, int, int);
using pack_fn = void (*)(int, int, int, int, int, int, float, const float*, int, float*);
using compute_fn = void (*)(int, int, int, int, int, int, const float*, int, const float*, int,
                            float, float*, int);

struct PackApi {
  pack_size_fn size = nullptr;
  pack_fn pack = nullptr;
  compute_fn compute = nullptr;
  PackApi() {
    size = reinterpret_cast<pack_size_fn>(dlsym(RTLD_DEFAULT, "cblas_sgemm_pack_get_size"));
    pack = reinterpret_cast<pack_fn>(dlsym(RTLD_DEFAULT, "cblas_sgemm_pack"));
    compute = reinterpret_cast<compute_fn>(dlsym(RTLD_DEFAULT, "cblas_sgemm_compute"));
  }
  bool ok() const { return size && pack && compute; }
};

const PackApi& pack_api() {
  static PackApi api;
  return api;
}

constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112, kPacked = 151, kBMatrix = 162;

// MKL pads a packed matrix to its blocking (about 8 MB even for a small one), so packing pays
// only for weights of this many elements or more, used by enough rows and steps.
constexpr int64_t kPackMinElements = 16384, kPackMinRows = 4, kPackMinSteps = 8;

template <typename T>
class Weight {
 public:
  // W is (rows, cols) row-major; transposed: op(W) = W^T, of shape (cols, rows). max_m is the
  // most rows a product will have, steps how many products there will be.
  Weight(const T* W, int64_t rows, int64_t cols, bool transposed, int64_t max_m, int64_t steps,
         int64_t library = BLAS)
      : W_(W), rows_(rows), cols_(cols), trans_(transposed) {
    if constexpr (std::is_same_v<T, float>) {
      if (library == ONEDNN && dnnl().ok() && max_m > 0 && rows * cols > 0) {
        // linear's weight is (out, in): W itself for op(W) = W^T, else W^T
        Tensor w = at::from_blob(const_cast<float*>(W), {rows, cols}, at::kFloat);
        dnnl_ = dnnl_pack(trans_ ? w : w.t().contiguous(), max_m);
        return;
      }
      const auto& api = pack_api();
      if (api.ok() && max_m >= kPackMinRows && steps >= kPackMinSteps &&
          rows * cols >= kPackMinElements) {
        const int n = static_cast<int>(trans_ ? rows : cols), k = static_cast<int>(trans_ ? cols : rows);
        const size_t bytes = api.size(kBMatrix, static_cast<int>(max_m), n, k);
        buffer_.reset(static_cast<float*>(std::malloc(bytes)));
        if (buffer_) {
          api.pack(kRowMajor, kBMatrix, trans_ ? kTrans : kNoTrans, static_cast<int>(max_m), n, k,
                   1.0f, W, static_cast<int>(cols), buffer_.get());
          packed_ = true;
        }
      }
    }
  }
  // C (m, n) = A (m, k) @ op(W) + beta * C
  void mul(int64_t m, const T* A, int64_t lda, T beta, T* C, int64_t ldc) const {
    const int64_t n = trans_ ? rows_ : cols_, k = trans_ ? cols_ : rows_;
    if (m == 0) return;
    if constexpr (std::is_same_v<T, float>) {
      if (dnnl_.defined()) {
        Tensor a = at::from_blob(const_cast<float*>(A), {m, k}, {lda, 1}, at::kFloat);
        Tensor y = dnnl_linear(a.is_contiguous() ? a : a.contiguous(), dnnl_);
        Tensor c = at::from_blob(C, {m, n}, {ldc, 1}, at::kFloat);
        if (beta == 0.0f)
          c.copy_(y);
        else
          c.mul_(beta).add_(y);
        return;
      }
      if (packed_) {
        pack_api().compute(kRowMajor, kNoTrans, kPacked, static_cast<int>(m), static_cast<int>(n),
                           static_cast<int>(k), A, static_cast<int>(lda), buffer_.get(),
                           static_cast<int>(k), beta, C, static_cast<int>(ldc));
        return;
      }
    }
    gemm<T>(false, trans_, m, n, k, T(1), A, lda, W_, cols_, beta, C, ldc);
  }

 private:
  const T* W_;
  int64_t rows_, cols_;
  bool trans_;
  bool packed_ = false;
  Tensor dnnl_;  // the weight packed for oneDNN, when that library multiplies
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> buffer_;
};

// ---------------------------------------------------------------------------------------------
// Vectorized pointwise helpers on rows of length n.

// exp: in float32 ATen's inline polynomial (about 20 ulp, well inside float32's tolerance of
// the tests and several times faster than a library call); in float64 the accurate one.
template <typename T>
inline Vectorized<T> vexp(Vectorized<T> x) {
  if constexpr (std::is_same_v<T, float>) {
    // the polynomial clamps NaN to a number; keep NaN so that it shows downstream
    return Vectorized<T>::blendv(x.exp_u20(), x, x != x);
  } else {
    return x.exp();
  }
}

// 1 / d: in float32 with AVX the hardware estimate and one Newton step (relative error about
// 1e-7, several times the throughput of a division); otherwise a division.
template <typename T>
inline Vectorized<T> vrecip(Vectorized<T> d) {
  if constexpr (std::is_same_v<T, float>) {
    // d is clamped to the largest float first: the estimate of 1/inf is 0, and the Newton step
    // would then compute inf * 0 = NaN. (min returns its second operand, d, when d is NaN.)
#if defined(CPU_CAPABILITY_AVX512)
    const __m512 v = _mm512_min_ps(_mm512_set1_ps(FLT_MAX), d), r = _mm512_rcp14_ps(v);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(v, r, _mm512_set1_ps(2.0f)));
#elif defined(CPU_CAPABILITY_AVX2)
    const __m256 v = _mm256_min_ps(_mm256_set1_ps(FLT_MAX), d), r = _mm256_rcp_ps(v);
    return _mm256_mul_ps(r, _mm256_fnmadd_ps(v, r, _mm256_set1_ps(2.0f)));
#endif
  }
  return Vectorized<T>(T(1)) / d;
}

template <typename T>
inline Vectorized<T> vsigmoid(Vectorized<T> x) {
  const Vectorized<T> one(T(1));
  return vrecip(one + vexp(x.neg()));
}

template <typename T>
inline Vectorized<T> vtanh(Vectorized<T> x) {
  // 2·σ(2x) - 1: exact at both tails, absolute error ~ machine epsilon near 0
  const Vectorized<T> one(T(1)), two(T(2));
  return two * vrecip(one + vexp((x * two).neg())) - one;
}

template <typename T>
void sigmoid_(T* x, int64_t n) {
  at::vec::map([](Vectorized<T> v) { return vsigmoid(v); }, x, x, n);
}

template <typename T>
void tanh_(T* x, int64_t n) {
  at::vec::map([](Vectorized<T> v) { return vtanh(v); }, x, x, n);
}

template <typename T>
void add_(T* y, const T* a, int64_t n) {  // y += a
  at::vec::map2([](Vectorized<T> u, Vectorized<T> v) { return u + v; }, y, y, a, n);
}

template <typename T>
void add_mul_(T* y, const T* a, const T* b, int64_t n) {  // y += a * b
  at::vec::map3([](Vectorized<T> u, Vectorized<T> v, Vectorized<T> w) { return u + v * w; }, y,
                y, a, b, n);
}

template <typename T>
void mul_(T* y, const T* a, int64_t n) {  // y *= a
  at::vec::map2([](Vectorized<T> u, Vectorized<T> v) { return u * v; }, y, y, a, n);
}

// Batch rows never interact in a recurrence, so the rows are split among the threads once and
// each thread runs the whole sequence for its rows: its own products (single-threaded BLAS) and
// its own pointwise updates, with no synchronisation between steps. A block has at least this
// many rows per unit of work (the width of a step's product), so that small batches stay on one
// thread and keep BLAS's own threads.
template <typename F>
void over_rows(int64_t B, int64_t width, const F& f) {
  const int64_t grain = std::max<int64_t>(1, 2048 / std::max<int64_t>(1, width));
  at::parallel_for(0, B, grain, f);
}

// Rows [lo, lo + n) of step t that belong to the block [lo, hi); n <= 0 when none do.
inline int64_t block_rows(int64_t bs, int64_t lo, int64_t hi) { return std::min(hi, bs) - lo; }

// A sum that several threads add to: one slice per thread, added up at the end.
struct Partial {
  Tensor buf;
  explicit Partial(at::IntArrayRef shape, const at::TensorOptions& opts) {
    std::vector<int64_t> dims{at::get_num_threads()};
    dims.insert(dims.end(), shape.begin(), shape.end());
    buf = at::zeros(dims, opts);
  }
  template <typename T>
  T* mine() const {
    return buf.data_ptr<T>() + at::get_thread_num() * (buf.numel() / buf.size(0));
  }
  Tensor total() const { return buf.sum(0); }
};

struct Steps {
  std::vector<int64_t> bs, off;  // rows and offset of each step
  int64_t T = 0, B = 0, N = 0;
  bool reverse = false;
  int64_t library = BLAS;  // which library multiplies (float32)
  Steps(const Tensor& batch_sizes, bool rev, int64_t lib) : reverse(rev), library(lib) {
    auto acc = batch_sizes.accessor<int64_t, 1>();
    T = acc.size(0);
    bs.resize(T);
    off.resize(T);
    for (int64_t t = 0; t < T; ++t) {
      bs[t] = acc[t];
      off[t] = N;
      N += acc[t];
    }
    B = T ? bs[0] : 0;
  }
  // the step processed s-th, and the one processed just before it (-1 for the first)
  int64_t at(int64_t s) const { return reverse ? T - 1 - s : s; }
  int64_t before(int64_t s) const { return s == 0 ? -1 : at(s - 1); }
};

// Where row b of a state "before step t" lives: the previous step's slot, or the initial state.
template <typename T>
inline const T* prev_row(const Steps& st, int64_t tp, int64_t b, const T* all, const T* init,
                         int64_t width) {
  return (tp >= 0 && b < st.bs[tp]) ? all + (st.off[tp] + b) * width : init + b * width;
}

inline const void* ptr_or_null(const Tensor& t) { return t.defined() && t.numel() ? t.data_ptr() : nullptr; }

// Dropout and zoneout inside the recurrence, with every mask drawn in Python (so a fused run
// draws what a reference run draws): mask (B, P) scales h_{t-1} where it enters the recurrent
// product; keep_h (N, P) and keep_c (N, H) hold, for each row of each step, how much of the
// previous state the new one keeps: h_t = k h_{t-1} + (1 - k) h~_t (0 or 1 in training, the
// zoneout probability in evaluation). Empty tensors turn each off.
template <typename T>
struct Reg {
  const T* mask = nullptr;
  const T* keep_h = nullptr;
  const T* keep_c = nullptr;
  Reg(const Tensor& m, const Tensor& kh, const Tensor& kc)
      : mask(static_cast<const T*>(ptr_or_null(m))),
        keep_h(static_cast<const T*>(ptr_or_null(kh))),
        keep_c(static_cast<const T*>(ptr_or_null(kc))) {}
  bool any() const { return mask || keep_h || keep_c; }
};

// y (rows of width w) = x * mask, row b of the block scaled by mask row b
template <typename T>
void masked_rows(T* y, const T* x, const T* mask, int64_t lo, int64_t n, int64_t w) {
  using V = Vectorized<T>;
  at::vec::map2([](V u, V m) { return u * m; }, y + lo * w, x + lo * w, mask + lo * w, n * w);
}

// y = k * before + (1 - k) * y, elementwise over n rows of width w
template <typename T>
void zoneout_rows(T* y, const T* before, const T* k, int64_t n, int64_t w) {
  using V = Vectorized<T>;
  at::vec::map3([](V after, V b, V kv) { return kv * b + (V(T(1)) - kv) * after; }, y, y, before,
                k, n * w);
}

// ---------------------------------------------------------------------------------------------
// LSTM. Flags say which parts exist; blocks of the gate pre-activations follow torch.nn's order
// i, f, g, o with absent blocks left out (see LSTMConfig.blocks).

enum : int64_t {
  INPUT_GATE = 1,
  FORGET_GATE = 2,
  OUTPUT_GATE = 4,
  COUPLED = 8,
  INPUT_ACT = 16,
  OUTPUT_ACT = 32,
  PEEP_I = 64,
  PEEP_F = 128,
  PEEP_O = 256,
  FGR = 512,
  LAYER_NORM = 1024,
  OUT_INSIDE = 2048,  // h_t = tanh(o_t * C_t) (Grid LSTM's transform), with OUTPUT_ACT off
  PRE_ZONEOUT = 4096,  // with zoneout on h, also return h~_t before it (differentiable)
};

// The depth gate of a Depth-Gated LSTM layer (Yao et al. 2015): with `depth` (N, 2H) holding,
// per row of each step, x_d = W_xd x_t + b_d + w_ld * C_t^{lower} and C_t^{lower},
// d_t = sigmoid(x_d + w_cd * C_{t-1}) and C_t gains d_t * C_t^{lower}. Empty: no depth gate.
template <typename T>
struct Depth {
  const T* in = nullptr;  // (N, 2H)
  const T* w_cd = nullptr;
  Depth(const Tensor& depth, const Tensor& w)
      : in(static_cast<const T*>(ptr_or_null(depth))), w_cd(static_cast<const T*>(ptr_or_null(w))) {}
  bool on() const { return in != nullptr; }
};

// Layer normalisation (Ba, Kiros & Hinton 2016) of a row of n values, in place:
// x = (x - mean) / sqrt(var + eps) * gain + bias. Writes the normalised values x^ to xhat and
// returns 1 / sqrt(var + eps), which the backward pass needs.
constexpr double kLayerNormEps = 1e-5;  // torch.nn.functional.layer_norm's default

template <typename T>
T layer_norm_row(T* x, int64_t n, const T* gain, const T* bias, T* xhat) {
  double sum = 0, sq = 0;
  for (int64_t j = 0; j < n; ++j) sum += x[j];
  const double mean = sum / n;
  for (int64_t j = 0; j < n; ++j) sq += (x[j] - mean) * (x[j] - mean);
  const T rstd = static_cast<T>(1.0 / std::sqrt(sq / n + kLayerNormEps));
  const T m = static_cast<T>(mean);
  for (int64_t j = 0; j < n; ++j) {
    const T h = (x[j] - m) * rstd;
    xhat[j] = h;
    x[j] = h * gain[j] + bias[j];
  }
  return rstd;
}

// The backward of layer_norm_row: given dy (n), the saved x^ and rstd, writes dx and adds
// dy * x^ and dy to the gain's and bias's gradients.
template <typename T>
void layer_norm_row_backward(const T* dy, const T* xhat, T rstd, const T* gain, int64_t n, T* dx,
                             T* dgain, T* dbias) {
  double mean_d = 0, mean_dx = 0;  // means of dx^ and of dx^ * x^
  for (int64_t j = 0; j < n; ++j) {
    const double d = static_cast<double>(dy[j]) * gain[j];
    mean_d += d;
    mean_dx += d * xhat[j];
    dgain[j] += dy[j] * xhat[j];
    dbias[j] += dy[j];
  }
  mean_d /= n;
  mean_dx /= n;
  for (int64_t j = 0; j < n; ++j)
    dx[j] = static_cast<T>(rstd * (static_cast<double>(dy[j]) * gain[j] - mean_d - xhat[j] * mean_dx));
}

// The layer-normalised LSTM's gains and biases: of W_hh·h_{t-1} (G·H) and of C_t (H).
template <typename T>
struct Norms {
  const T *hh_gain = nullptr, *hh_bias = nullptr, *c_gain = nullptr, *c_bias = nullptr;
  Norms(const Tensor& a, const Tensor& b, const Tensor& c, const Tensor& d)
      : hh_gain(static_cast<const T*>(ptr_or_null(a))),
        hh_bias(static_cast<const T*>(ptr_or_null(b))),
        c_gain(static_cast<const T*>(ptr_or_null(c))),
        c_bias(static_cast<const T*>(ptr_or_null(d))) {}
  bool on() const { return hh_gain != nullptr; }
};

struct LSTMShape {
  int64_t H, P, G, k;     // hidden, recurrent (h) width, blocks, fed-back gates
  int64_t oi, of, og, oo;  // column offset of each block in a row of G·H, -1 if absent
  int64_t ri, rf, ro;      // column offset of each fed-back gate in a row of k·H
  bool in_gate, forget, out_gate, coupled, in_act, out_act, fgr, proj, ln, inside;
  LSTMShape(int64_t flags, int64_t H_, int64_t P_, bool has_proj) : H(H_), P(P_) {
    in_gate = flags & INPUT_GATE;
    forget = (flags & FORGET_GATE) && !(flags & COUPLED);
    out_gate = flags & OUTPUT_GATE;
    coupled = flags & COUPLED;
    in_act = flags & INPUT_ACT;
    out_act = flags & OUTPUT_ACT;
    fgr = flags & FGR;
    ln = flags & LAYER_NORM;
    inside = flags & OUT_INSIDE;
    proj = has_proj;
    int64_t j = 0;
    oi = in_gate ? H * j++ : -1;
    of = forget ? H * j++ : -1;
    og = H * j++;
    oo = out_gate ? H * j++ : -1;
    G = j;
    int64_t r = 0;
    ri = in_gate ? H * r++ : -1;
    rf = forget ? H * r++ : -1;
    ro = out_gate ? H * r++ : -1;
    k = r;
  }
};

template <typename T>
std::vector<Tensor> lstm_forward_impl(const Tensor& xp, const Tensor& bx, const Tensor& h0,
                                      const Tensor& c0, const Tensor& a0, const Tensor& W_hh,
                                      const Tensor& w_ci, const Tensor& w_cf, const Tensor& w_co,
                                      const Tensor& W_gg, const Tensor& W_hr, const Reg<T>& reg,
                                      const Norms<T>& ln, const Depth<T>& dep, const Steps& st,
                                      int64_t flags, bool save) {
  const int64_t H = c0.size(1), P = h0.size(1), N = st.N, B = st.B;
  const LSTMShape s(flags, H, P, W_hr.defined() && W_hr.numel());
  const int64_t GH = s.G * H, KH = s.k * H;
  auto opts = xp.options();
  Tensor out = at::empty({N, P}, opts);
  Tensor h = h0.clone(), c = c0.clone();
  Tensor a = s.fgr ? a0.clone() : Tensor();
  // In training the activations and cell states of every step are kept for the backward pass.
  Tensor acts = at::empty({save ? N : B, GH}, opts);
  Tensor C = save ? at::empty({N, H}, opts) : Tensor();
  Tensor m = s.proj ? at::empty({B, H}, opts) : Tensor();
  Tensor r = s.fgr ? at::empty({B, KH}, opts) : Tensor();
  Tensor hin = reg.mask ? at::empty({B, P}, opts) : Tensor();  // h_{t-1} * mask
  // the cell state after zoneout, which the next step reads (C holds the cell's own C_t)
  Tensor S = save && reg.keep_c ? at::empty({N, H}, opts) : Tensor();
  // layer norm: each row's x^ of W_hh·h (G·H) and of C_t (H), then the two 1 / std, per step
  // when saved (else one row per sequence, as scratch); and C_t before zoneout
  const int64_t LW = GH + H + 2;
  Tensor NS = s.ln ? at::empty({save ? N : B, LW}, opts) : Tensor();
  Tensor Cnew = s.ln ? at::empty({B, H}, opts) : Tensor();
  Tensor D = save && dep.on() ? at::empty({N, H}, opts) : Tensor();  // the depth gate d_t
  // h~_t before zoneout, for a reader of the layer's own outputs (a Depth-Gated layer above)
  Tensor Hn = (flags & PRE_ZONEOUT) && reg.keep_h ? at::empty({N, P}, opts) : Tensor();
  const T* x = xp.data_ptr<T>();
  const T* bias = static_cast<const T*>(ptr_or_null(bx));  // b_ih + b_hh, or none
  const T* pi = static_cast<const T*>(ptr_or_null(w_ci));
  const T* pf = static_cast<const T*>(ptr_or_null(w_cf));
  const T* po = static_cast<const T*>(ptr_or_null(w_co));
  T* hp = h.data_ptr<T>();
  T* cp = c.data_ptr<T>();
  T* op = out.data_ptr<T>();
  T* ap = s.fgr ? a.data_ptr<T>() : nullptr;
  T* rp = s.fgr ? r.data_ptr<T>() : nullptr;
  const Weight<T> Whh(W_hh.data_ptr<T>(), GH, P, /*transposed=*/true, B, st.T, st.library);
  const Weight<T> Wgg(s.fgr ? W_gg.data_ptr<T>() : nullptr, KH, KH, /*transposed=*/true,
                      s.fgr ? B : 0, st.T, st.library);
  over_rows(B, GH, [&](int64_t lo, int64_t hi) {
    using V = Vectorized<T>;
    const V one(T(1));
    constexpr int64_t L = V::size();
    for (int64_t step = 0; step < st.T; ++step) {
      const int64_t t = st.at(step), n = block_rows(st.bs[t], lo, hi), o = st.off[t];
      if (n <= 0) continue;
      T* pre = save ? acts.data_ptr<T>() + o * GH : acts.data_ptr<T>();
      const T* h_in = hp;
      if (reg.mask) {  // recurrent dropout: on the product's input only
        masked_rows(hin.data_ptr<T>(), hp, reg.mask, lo, n, P);
        h_in = hin.data_ptr<T>();
      }
      Whh.mul(n, h_in + lo * P, P, T(0), pre + lo * GH, GH);  // W_hh·h_{t-1}
      if (s.ln)  // LN(W_hh·h_{t-1})
        for (int64_t b = lo; b < lo + n; ++b) {
          T* lr = NS.data_ptr<T>() + (save ? o + b : b) * LW;
          lr[GH + H] = layer_norm_row(pre + b * GH, GH, ln.hh_gain, ln.hh_bias, lr);
        }
      if (s.fgr) Wgg.mul(n, ap + lo * KH, KH, T(0), rp + lo * KH, KH);  // R·[i, f, o]_{t-1}
      for (int64_t b = lo; b < lo + n; ++b) {
        T* g = pre + b * GH;
        const T* xb = x + (o + b) * GH;  // W_ih·x_t
        T* cb = cp + b * H;
        const T* rb = s.fgr ? rp + b * KH : nullptr;
        T* ab = s.fgr ? ap + b * KH : nullptr;
        T* mb = s.proj ? m.data_ptr<T>() + b * H : op + (o + b) * P;
        T* ctb = save ? C.data_ptr<T>() + (o + b) * H : nullptr;
        T* stb = S.defined() ? S.data_ptr<T>() + (o + b) * H : nullptr;
        const T* kcb = reg.keep_c ? reg.keep_c + (o + b) * H : nullptr;
        const T* db = dep.on() ? dep.in + (o + b) * 2 * H : nullptr;
        T* Db = D.defined() ? D.data_ptr<T>() + (o + b) * H : nullptr;
        for (int64_t j = 0; j < H; j += L) {
          const int64_t cnt = std::min<int64_t>(L, H - j);
          auto ld = [&](const T* q) { return cnt == L ? V::loadu(q + j) : V::loadu(q + j, cnt); };
          auto stv = [&](const V& v, T* q) { cnt == L ? v.store(q + j) : v.store(q + j, cnt); };
          // a block's pre-activation: W_hh·h_{t-1} + W_ih·x_t + b
          auto pre_act = [&](int64_t at) {
            V v = ld(g + at) + ld(xb + at);
            return bias ? v + ld(bias + at) : v;
          };
          const V c_prev = ld(cb);
          V i_t = one, f_t = one, o_t = one;
          if (s.in_gate) {
            V v = pre_act(s.oi);
            if (rb) v = v + ld(rb + s.ri);  // full gate recurrence
            if (pi) v = v + ld(pi) * c_prev;  // peephole on C_{t-1}
            i_t = vsigmoid(v);
            stv(i_t, g + s.oi);
          }
          if (s.coupled) {
            f_t = one - i_t;
          } else if (s.forget) {
            V v = pre_act(s.of);
            if (rb) v = v + ld(rb + s.rf);
            if (pf) v = v + ld(pf) * c_prev;
            f_t = vsigmoid(v);
            stv(f_t, g + s.of);
          }
          V C_tilde = pre_act(s.og);
          if (s.in_act) C_tilde = vtanh(C_tilde);
          stv(C_tilde, g + s.og);
          V C_t = f_t * c_prev + i_t * C_tilde;
          if (db) {  // the depth gate: C_t += d_t * C_t^{lower}
            const V d = vsigmoid(ld(db) + ld(dep.w_cd) * c_prev);
            C_t = C_t + d * ld(db + H);
            if (Db) stv(d, Db);
          }
          if (kcb) {  // zoneout: the state keeps C_{t-1} where k = 1
            const V k = ld(kcb), state = k * c_prev + (one - k) * C_t;
            stv(state, cb);
            if (stb) stv(state, stb);
          } else {
            stv(C_t, cb);
          }
          if (ctb) stv(C_t, ctb);
          if (s.ln) stv(C_t, Cnew.data_ptr<T>() + b * H);
          if (s.out_gate) {
            V v = pre_act(s.oo);
            if (rb) v = v + ld(rb + s.ro);
            if (po) v = v + ld(po) * C_t;  // peephole on the new C_t
            o_t = vsigmoid(v);
            stv(o_t, g + s.oo);
          }
          if (s.inside)
            stv(vtanh(o_t * C_t), mb);  // h_t = tanh(o_t * C_t)
          else if (!s.ln)
            stv(o_t * (s.out_act ? vtanh(C_t) : C_t), mb);  // h_t = o_t * tanh(C_t)
          if (ab) {
            if (s.in_gate) stv(i_t, ab + s.ri);
            if (s.forget) stv(f_t, ab + s.rf);
            if (s.out_gate) stv(o_t, ab + s.ro);
          }
        }
        if (s.ln) {  // h_t = o_t * tanh(LN(C_t)): the row's statistics first
          T* lr = NS.data_ptr<T>() + (save ? o + b : b) * LW;
          T* cn = Cnew.data_ptr<T>() + b * H;
          lr[GH + H + 1] = layer_norm_row(cn, H, ln.c_gain, ln.c_bias, lr + GH);
          if (s.out_act) tanh_(cn, H);
          if (s.out_gate)
            at::vec::map2([](V u, V v) { return u * v; }, mb, g + s.oo, cn, H);
          else
            std::memcpy(mb, cn, sizeof(T) * H);
        }
      }
      if (s.proj)  // h_t = W_hr·(o_t * tanh(C_t))
        gemm<T>(false, true, n, P, H, T(1), m.data_ptr<T>() + lo * H, H, W_hr.data_ptr<T>(), H,
                T(0), op + (o + lo) * P, P);
      if (Hn.defined())
        std::memcpy(Hn.data_ptr<T>() + (o + lo) * P, op + (o + lo) * P, sizeof(T) * n * P);
      if (reg.keep_h) zoneout_rows(op + (o + lo) * P, hp + lo * P, reg.keep_h + (o + lo) * P, n, P);
      std::memcpy(hp + lo * P, op + (o + lo) * P, sizeof(T) * n * P);
    }
  });
  return {out, h, c, s.fgr ? a : Tensor(), save ? acts : Tensor(), C, S,
          save && s.ln ? NS : Tensor(), D, Hn};
}

template <typename T>
std::vector<Tensor> lstm_backward_impl(const Tensor& dout, const Tensor& dhT, const Tensor& dcT,
                                       const Tensor& daT, const Tensor& out, const Tensor& acts,
                                       const Tensor& C, const Tensor& h0, const Tensor& c0,
                                       const Tensor& a0, const Tensor& W_hh, const Tensor& w_ci,
                                       const Tensor& w_cf, const Tensor& w_co, const Tensor& W_gg,
                                       const Tensor& W_hr, const Tensor& S, const Reg<T>& reg,
                                       const Tensor& NS, const Norms<T>& ln, const Depth<T>& dep,
                                       const Tensor& D, const Tensor& dCseq,
                                       const Tensor& dHseq, const Steps& st, int64_t flags) {
  const int64_t H = c0.size(1), P = h0.size(1), N = st.N, B = st.B;
  const LSTMShape s(flags, H, P, W_hr.defined() && W_hr.numel());
  const int64_t GH = s.G * H, KH = s.k * H;
  auto opts = out.options();
  Tensor dG = at::empty({N, GH}, opts);
  Tensor dh = dhT.clone(), dc = dcT.clone();
  Tensor da = s.fgr ? daT.clone() : Tensor();
  Tensor dm = s.proj ? at::empty({B, H}, opts) : Tensor();
  Tensor mrec = s.proj ? at::empty({B, H}, opts) : Tensor();  // o * tanh(C), recomputed
  Tensor dR = s.fgr ? at::empty({B, KH}, opts) : Tensor();
  Tensor aprev = s.fgr ? at::empty({B, KH}, opts) : Tensor();
  Tensor hprev = at::empty({B, P}, opts);
  Tensor dhn = reg.keep_h ? at::empty({B, P}, opts) : Tensor();  // dL/dh~_t, before zoneout
  Tensor dprod = reg.any() ? at::empty({B, P}, opts) : Tensor();  // dG_t · W_hh
  // layer norm: the gradient of W_hh·h before its normalisation, and per row tanh(LN(C_t)) and
  // the part of dC_t that comes through it
  const int64_t LW = GH + H + 2;
  Tensor dP = s.ln ? at::empty({N, GH}, opts) : Tensor();
  Tensor tcs = s.ln ? at::empty({B, H}, opts) : Tensor();
  Tensor dCh = s.ln ? at::empty({B, H}, opts) : Tensor();
  T* dPall = s.ln ? dP.data_ptr<T>() : dG.data_ptr<T>();  // what multiplies W_hh
  const bool packed = [&] {
    for (int64_t t = 0; t < st.T; ++t)
      if (st.bs[t] != B) return true;
    return false;
  }();
  // sums over rows and steps that every thread adds to
  Partial dpeep({4, H}, opts);  // w_ci, w_cf, w_co, w_cd
  // the depth gate's inputs (N, 2H): x_d and C_t^{lower}
  Tensor ddepth = dep.on() ? at::empty({N, 2 * H}, opts) : Tensor();
  // a gradient that reaches the cells' C_t from outside (a Depth-Gated layer above reads them)
  const T* dCs = static_cast<const T*>(ptr_or_null(dCseq));
  // and one that reaches h~_t, before zoneout (PRE_ZONEOUT)
  const T* dHs = reg.keep_h ? static_cast<const T*>(ptr_or_null(dHseq)) : nullptr;
  Partial dWr(s.proj ? at::IntArrayRef{P, H} : at::IntArrayRef{0}, opts);
  Partial dWg(s.fgr ? at::IntArrayRef{KH, KH} : at::IntArrayRef{0}, opts);
  Partial dWp(packed ? at::IntArrayRef{GH, P} : at::IntArrayRef{0}, opts);
  Partial dnorm(s.ln ? at::IntArrayRef{2 * GH + 2 * H} : at::IntArrayRef{0}, opts);
  const T* pi = static_cast<const T*>(ptr_or_null(w_ci));
  const T* pf = static_cast<const T*>(ptr_or_null(w_cf));
  const T* po = static_cast<const T*>(ptr_or_null(w_co));
  const T* A = acts.data_ptr<T>();
  const T* Call = C.data_ptr<T>();
  const T* Sall = reg.keep_c ? S.data_ptr<T>() : Call;  // the cell state each step hands on
  const T* Hall = out.data_ptr<T>();
  const T* dO = dout.data_ptr<T>();
  T* dhp = dh.data_ptr<T>();
  T* dcp = dc.data_ptr<T>();
  const Weight<T> Whh(W_hh.data_ptr<T>(), GH, P, /*transposed=*/false, B, st.T, st.library);
  const Weight<T> Wgg(s.fgr ? W_gg.data_ptr<T>() : nullptr, KH, KH, /*transposed=*/false,
                      s.fgr ? B : 0, st.T, st.library);
  over_rows(B, GH, [&](int64_t lo, int64_t hi) {
    using V = Vectorized<T>;
    const V one(T(1));
    constexpr int64_t L = V::size();
    T* part = dpeep.mine<T>();
    for (int64_t step = st.T - 1; step >= 0; --step) {
      const int64_t t = st.at(step), n = block_rows(st.bs[t], lo, hi), o = st.off[t];
      const int64_t tp = st.before(step);
      if (n <= 0) continue;
      add_(dhp + lo * P, dO + (o + lo) * P, n * P);  // dL/dh_t: from above and from step t+1
      T* dnew = dhp;  // dL/dh~_t, the cell's own output
      if (reg.keep_h) {  // zoneout: h_t = k h_{t-1} + (1 - k) h~_t
        dnew = dhn.data_ptr<T>();
        const T* k = reg.keep_h + (o + lo) * P;
        at::vec::map2([](Vectorized<T> d, Vectorized<T> kv) { return (Vectorized<T>(T(1)) - kv) * d; },
                      dnew + lo * P, dhp + lo * P, k, n * P);
        mul_(dhp + lo * P, k, n * P);  // what h_{t-1} receives directly
        if (dHs) add_(dnew + lo * P, dHs + (o + lo) * P, n * P);
      }
      if (s.proj)
        gemm<T>(false, false, n, H, P, T(1), dnew + lo * P, P, W_hr.data_ptr<T>(), H, T(0),
                dm.data_ptr<T>() + lo * H, H);
      for (int64_t b = lo; b < lo + n; ++b) {
        const T* g = A + (o + b) * GH;
        const T* ct = Call + (o + b) * H;
        const T* cprev = prev_row(st, tp, b, Sall, c0.data_ptr<T>(), H);
        const T* dmb = s.proj ? dm.data_ptr<T>() + b * H : dnew + b * P;
        const T* kcb = reg.keep_c ? reg.keep_c + (o + b) * H : nullptr;
        T* dg = dG.data_ptr<T>() + (o + b) * GH;
        T* dcb = dcp + b * H;
        const T* dab = s.fgr ? da.data_ptr<T>() + b * KH : nullptr;
        T* dRb = s.fgr ? dR.data_ptr<T>() + b * KH : nullptr;
        T* mr = s.proj ? mrec.data_ptr<T>() + b * H : nullptr;
        const T* lr = s.ln ? NS.data_ptr<T>() + (o + b) * LW : nullptr;
        if (lr) {  // through h_t = o_t * tanh(LN(C_t)): tanh(LN(C_t)) and its part of dC_t
          T* tc = tcs.data_ptr<T>() + b * H;
          T* d = dCh.data_ptr<T>() + b * H;
          T* dn = dnorm.mine<T>();
          for (int64_t j = 0; j < H; ++j) {
            const T c_out = lr[GH + j] * ln.c_gain[j] + ln.c_bias[j];
            tc[j] = s.out_act ? std::tanh(c_out) : c_out;
            const T o = s.out_gate ? g[s.oo + j] : T(1);
            d[j] = dmb[j] * o * (s.out_act ? T(1) - tc[j] * tc[j] : T(1));
          }
          layer_norm_row_backward(d, lr + GH, lr[GH + H + 1], ln.c_gain, H, d, dn + 2 * GH,
                                  dn + 2 * GH + H);
        }
        for (int64_t j = 0; j < H; j += L) {
          const int64_t cnt = std::min<int64_t>(L, H - j);
          auto ld = [&](const T* q) { return cnt == L ? V::loadu(q + j) : V::loadu(q + j, cnt); };
          auto stv = [&](const V& v, T* q) { cnt == L ? v.store(q + j) : v.store(q + j, cnt); };
          const V c_prev = ld(cprev), C_t = ld(ct);
          V dmv = ld(dmb);
          const V i_t = s.in_gate ? ld(g + s.oi) : one;
          const V f_t = s.coupled ? one - i_t : (s.forget ? ld(g + s.of) : one);
          const V C_tilde = ld(g + s.og);
          const V o_t = s.out_gate ? ld(g + s.oo) : one;
          if (s.inside) {  // h_t = tanh(o_t * C_t): then as h_t = o_t * C_t with dh scaled
            const V u = vtanh(o_t * C_t);
            dmv = dmv * (one - u * u);
          }
          const V tc = lr ? ld(tcs.data_ptr<T>() + b * H) : (s.out_act ? vtanh(C_t) : C_t);
          if (mr) stv(o_t * tc, mr);  // o * tanh(C_t), for dW_hr
          // dC_t: from step t+1 (through zoneout's mix), and through h_t = o_t * tanh(C_t)
          const V dstate = ld(dcb), kc = kcb ? ld(kcb) : V(T(0));
          const V dh_part = lr ? ld(dCh.data_ptr<T>() + b * H)
                               : dmv * o_t * (s.out_act ? one - tc * tc : one);
          V dC = (kcb ? (one - kc) * dstate : dstate) + dh_part;
          if (dCs) dC = dC + ld(dCs + (o + b) * H);
          if (s.out_gate) {
            V d = dmv * tc;
            if (dab) d = d + ld(dab + s.ro);
            d = d * o_t * (one - o_t);
            stv(d, dg + s.oo);
            if (dRb) stv(d, dRb + s.ro);
            if (po) {
              dC = dC + d * ld(po);
              stv(ld(part + 2 * H) + d * C_t, part + 2 * H);
            }
          }
          // C_t = f_t * C_{t-1} + i_t * C~_t
          V dg_ = dC * i_t;
          if (s.in_act) dg_ = dg_ * (one - C_tilde * C_tilde);
          stv(dg_, dg + s.og);
          V dc_prev = kcb ? dC * f_t + kc * dstate : dC * f_t;
          if (dep.on()) {  // C_t += d_t * C^{lower}, d_t = sigmoid(x_d + w_cd * C_{t-1})
            const T* dbin = dep.in + (o + b) * 2 * H;
            T* dd = ddepth.data_ptr<T>() + (o + b) * 2 * H;
            const V d = ld(D.data_ptr<T>() + (o + b) * H), lower = ld(dbin + H);
            const V pre = dC * lower * d * (one - d);
            stv(pre, dd);
            stv(dC * d, dd + H);
            dc_prev = dc_prev + pre * ld(dep.w_cd);
            stv(ld(part + 3 * H) + pre * c_prev, part + 3 * H);
          }
          if (s.in_gate) {
            V d = dC * C_tilde;
            if (s.coupled) d = d - dC * c_prev;  // f_t = 1 - i_t
            if (dab) d = d + ld(dab + s.ri);
            d = d * i_t * (one - i_t);
            stv(d, dg + s.oi);
            if (dRb) stv(d, dRb + s.ri);
            if (pi) {
              dc_prev = dc_prev + d * ld(pi);
              stv(ld(part) + d * c_prev, part);
            }
          }
          if (s.forget) {
            V d = dC * c_prev;
            if (dab) d = d + ld(dab + s.rf);
            d = d * f_t * (one - f_t);
            stv(d, dg + s.of);
            if (dRb) stv(d, dRb + s.rf);
            if (pf) {
              dc_prev = dc_prev + d * ld(pf);
              stv(ld(part + H) + d * c_prev, part + H);
            }
          }
          stv(dc_prev, dcb);
        }
        if (lr) {  // the gates saw LN(W_hh·h_{t-1}): back through the normalisation
          T* dn = dnorm.mine<T>();
          layer_norm_row_backward(dg, lr, lr[GH + H], ln.hh_gain, GH, dP.data_ptr<T>() + (o + b) * GH,
                                  dn, dn + GH);
        }
      }
      if (s.proj)  // dW_hr += dh_t^T (o * tanh(C_t))
        gemm<T>(true, false, P, H, n, T(1), dnew + lo * P, P, mrec.data_ptr<T>() + lo * H, H, T(1),
                dWr.mine<T>(), H);
      if (s.fgr) {
        for (int64_t b = lo; b < lo + n; ++b) {  // a_{t-1}: the previous step's gates, or a_0
          T* dst = aprev.data_ptr<T>() + b * KH;
          if (tp >= 0 && b < st.bs[tp]) {
            const T* g = A + (st.off[tp] + b) * GH;
            if (s.in_gate) std::memcpy(dst + s.ri, g + s.oi, sizeof(T) * H);
            if (s.forget) std::memcpy(dst + s.rf, g + s.of, sizeof(T) * H);
            if (s.out_gate) std::memcpy(dst + s.ro, g + s.oo, sizeof(T) * H);
          } else {
            std::memcpy(dst, a0.data_ptr<T>() + b * KH, sizeof(T) * KH);
          }
        }
        gemm<T>(true, false, KH, KH, n, T(1), dR.data_ptr<T>() + lo * KH, KH,
                aprev.data_ptr<T>() + lo * KH, KH, T(1), dWg.mine<T>(), KH);
        // da_{t-1} = dR_t · R
        Wgg.mul(n, dR.data_ptr<T>() + lo * KH, KH, T(0), da.data_ptr<T>() + lo * KH, KH);
      }
      if (packed) {  // dW_hh += dG_t^T h_{t-1}, a step at a time
        for (int64_t b = lo; b < lo + n; ++b)
          std::memcpy(hprev.data_ptr<T>() + b * P,
                      prev_row(st, tp, b, Hall, h0.data_ptr<T>(), P), sizeof(T) * P);
        if (reg.mask) mul_(hprev.data_ptr<T>() + lo * P, reg.mask + lo * P, n * P);
        gemm<T>(true, false, GH, P, n, T(1), dPall + (o + lo) * GH, GH,
                hprev.data_ptr<T>() + lo * P, P, T(1), dWp.mine<T>(), P);
      }
      // dh_{t-1} = dG_t · W_hh (times the dropout mask), plus what zoneout passes on directly
      if (!reg.mask && !reg.keep_h) {
        Whh.mul(n, dPall + (o + lo) * GH, GH, T(0), dhp + lo * P, P);
      } else {
        T* d = dprod.data_ptr<T>() + lo * P;
        Whh.mul(n, dPall + (o + lo) * GH, GH, T(0), d, P);
        if (reg.mask) mul_(d, reg.mask + lo * P, n * P);
        if (reg.keep_h)
          add_(dhp + lo * P, d, n * P);
        else
          std::memcpy(dhp + lo * P, d, sizeof(T) * n * P);
      }
    }
  });
  Tensor dW;
  if (packed) {
    dW = dWp.total();
  } else {
    // dW_hh = sum_t dG_t^T h_{t-1}: h_{t-1} is the previous step's output, or h_0, so two
    // products over all steps do it
    dW = at::zeros_like(W_hh);
    // the product read h_{t-1} * mask: the same mask at every step of an unpacked batch
    Tensor mask = reg.mask ? at::from_blob(const_cast<T*>(reg.mask), {B, P}, opts) : Tensor();
    Tensor h0m = reg.mask ? h0 * mask : h0;
    Tensor Hm = reg.mask ? (out.view({st.T, B, P}) * mask).view({N, P}) : out;
    if (st.T > 0) {
      const int64_t first = st.at(0), rest = N - B;
      const T* dg0 = dPall + st.off[first] * GH;
      gemm<T>(true, false, GH, P, B, T(1), dg0, GH, h0m.data_ptr<T>(), P, T(0), dW.data_ptr<T>(),
              P);
      if (rest > 0) {
        const T* dg_rest = st.reverse ? dPall : dPall + B * GH;
        const T* h_rest = st.reverse ? Hm.data_ptr<T>() + B * P : Hm.data_ptr<T>();
        gemm<T>(true, false, GH, P, rest, T(1), dg_rest, GH, h_rest, P, T(1), dW.data_ptr<T>(),
                P);
      }
    }
  }
  Tensor dp = dpeep.total();
  Tensor dn_total = s.ln ? dnorm.total() : Tensor();
  return {dG,
          dh,
          dc,
          s.fgr ? da : Tensor(),
          dW,
          pi ? dp[0].clone() : Tensor(),  // separate tensors, not views of one
          pf ? dp[1].clone() : Tensor(),
          po ? dp[2].clone() : Tensor(),
          s.fgr ? dWg.total() : Tensor(),
          s.proj ? dWr.total() : Tensor(),
          s.ln ? dn_total.slice(0, 0, GH).clone() : Tensor(),
          s.ln ? dn_total.slice(0, GH, 2 * GH).clone() : Tensor(),
          s.ln ? dn_total.slice(0, 2 * GH, 2 * GH + H).clone() : Tensor(),
          s.ln ? dn_total.slice(0, 2 * GH + H).clone() : Tensor(),
          ddepth,
          dep.on() ? dp[3].clone() : Tensor()};
}

// ---------------------------------------------------------------------------------------------
// GRU, torch.nn's form (reset after the product) or Cho et al.'s (reset before it). Blocks r, z, n.
// The reset-before form can also read tanh(h_{t-1}) in the z rows' product (TANH_Z, MUT3 of
// Jozefowicz et al. 2015) or have no z product at all (NO_Z, MUT1): engine code maps both onto
// this kernel.

enum : int64_t { RESET_AFTER = 1, TANH_Z = 2, NO_Z = 4 };

template <typename T>
std::vector<Tensor> gru_forward_impl(const Tensor& xp, const Tensor& bx, const Tensor& h0,
                                     const Tensor& W_hh, const Tensor& b_hh, const Tensor& ln_w,
                                     const Tensor& ln_b, const Reg<T>& reg, const Steps& st,
                                     int64_t form, bool save) {
  const int64_t H = h0.size(1), N = st.N, B = st.B, H3 = 3 * H;
  const bool reset_after = form & RESET_AFTER, tanh_z = !reset_after && (form & TANH_Z);
  const bool no_z = !reset_after && !tanh_z && (form & NO_Z);
  auto opts = xp.options();
  // layer norm of the recurrent products (over all 3H rows after the reset, else over the r, z
  // rows and over W_hn (r * h)): each row's x^ and 1 / std, per step when saved
  const T* gain = static_cast<const T*>(ptr_or_null(ln_w));
  const T* shift = static_cast<const T*>(ptr_or_null(ln_b));
  Tensor NS = gain ? at::empty({save ? N : B, H3 + 2}, opts) : Tensor();
  Tensor out = at::empty({N, H}, opts);
  Tensor h = h0.clone();
  Tensor acts = save ? xp.clone() : at::empty({B, H3}, opts);  // r, z, n after activation
  Tensor hn_all = save && reset_after ? at::empty({N, H}, opts) : Tensor();  // W_hn h + b_hn
  Tensor hp = at::empty({B, H3}, opts);                        // W_hh h (+ b_hh)
  Tensor rh = at::empty({B, H}, opts);                         // r * h (reset before)
  Tensor hin = reg.mask ? at::empty({B, H}, opts) : Tensor();  // h_{t-1} * mask, for products
  Tensor th = tanh_z ? at::empty({B, H}, opts) : Tensor();      // tanh(h_{t-1}), for z's product
  const T* x = xp.data_ptr<T>();
  const T* w = W_hh.data_ptr<T>();
  const T* bias = static_cast<const T*>(ptr_or_null(b_hh));
  const T* bias_x = static_cast<const T*>(ptr_or_null(bx));  // b_ih, or none
  T* hcur = h.data_ptr<T>();
  T* op = out.data_ptr<T>();
  // reset after: one product with all of W_hh; before: the r, z rows, then W_hn (r * h)
  // (with TANH_Z the r rows alone, and the z rows on tanh(h))
  const Weight<T> Wrz(w, reset_after ? H3 : (tanh_z || no_z ? H : 2 * H), H, /*transposed=*/true,
                      B, st.T, st.library);
  const Weight<T> Wz(w + H * H, H, H, /*transposed=*/true, tanh_z ? B : 0, st.T, st.library);
  const Weight<T> Wn(w + 2 * H * H, H, H, /*transposed=*/true, reset_after ? 0 : B, st.T, st.library);
  over_rows(B, H3, [&](int64_t lo, int64_t hi) {
    using V = Vectorized<T>;
    for (int64_t step = 0; step < st.T; ++step) {
      const int64_t t = st.at(step), n = block_rows(st.bs[t], lo, hi), o = st.off[t];
      if (n <= 0) continue;
      T* g = save ? acts.data_ptr<T>() + o * H3 : acts.data_ptr<T>();
      if (!save) std::memcpy(g + lo * H3, x + (o + lo) * H3, sizeof(T) * n * H3);
      const T* h_in = hcur;  // recurrent dropout: on what the products read only
      if (reg.mask) {
        masked_rows(hin.data_ptr<T>(), hcur, reg.mask, lo, n, H);
        h_in = hin.data_ptr<T>();
      }
      Wrz.mul(n, h_in + lo * H, H, T(0), hp.data_ptr<T>() + lo * H3, H3);
      if (tanh_z) {  // W_hz tanh(h_{t-1})
        T* tb = th.data_ptr<T>() + lo * H;
        at::vec::map([](V v) { return vtanh(v); }, tb, h_in + lo * H, n * H);
        Wz.mul(n, tb, H, T(0), hp.data_ptr<T>() + lo * H3 + H, H3);
      }
      if (no_z)  // z sees x_t alone
        for (int64_t b = lo; b < lo + n; ++b) std::memset(hp.data_ptr<T>() + b * H3 + H, 0, sizeof(T) * H);
      if (gain)
        for (int64_t b = lo; b < lo + n; ++b) {
          T* lr = NS.data_ptr<T>() + (save ? o + b : b) * (H3 + 2);
          lr[H3] = layer_norm_row(hp.data_ptr<T>() + b * H3, reset_after ? H3 : 2 * H, gain,
                                  shift, lr);
        }
      if (!reset_after) {  // the reset gate first, then W_hn (r * h)
        for (int64_t b = lo; b < lo + n; ++b) {
          T* gb = g + b * H3;
          const T* hb = hp.data_ptr<T>() + b * H3;
          add_(gb, hb, 2 * H);
          if (bias) add_(gb, bias, 2 * H);
          if (bias_x) add_(gb, bias_x, 2 * H);
          sigmoid_(gb, 2 * H);
          at::vec::map2([](V r, V hv) { return r * hv; }, rh.data_ptr<T>() + b * H, gb,
                        h_in + b * H, H);
        }
        Wn.mul(n, rh.data_ptr<T>() + lo * H, H, T(0), hp.data_ptr<T>() + lo * H3 + 2 * H, H3);
        if (gain)
          for (int64_t b = lo; b < lo + n; ++b) {
            T* lr = NS.data_ptr<T>() + (save ? o + b : b) * (H3 + 2);
            lr[H3 + 1] = layer_norm_row(hp.data_ptr<T>() + b * H3 + 2 * H, H, gain + 2 * H,
                                        shift + 2 * H, lr + 2 * H);
          }
      }
      for (int64_t b = lo; b < lo + n; ++b) {
        T* gb = g + b * H3;
        T* hb = hp.data_ptr<T>() + b * H3;
        if (bias && reset_after) add_(hb, bias, H3);
        if (bias && !reset_after) add_(hb + 2 * H, bias + 2 * H, H);
        if (bias_x)
          add_(gb + (reset_after ? 0 : 2 * H), bias_x + (reset_after ? 0 : 2 * H),
               reset_after ? H3 : H);
        if (reset_after) {
          add_(gb, hb, 2 * H);
          sigmoid_(gb, 2 * H);
          if (save) std::memcpy(hn_all.data_ptr<T>() + (o + b) * H, hb + 2 * H, sizeof(T) * H);
          add_mul_(gb + 2 * H, gb, hb + 2 * H, H);  // x_n + r * (W_hn h + b_hn)
        } else {
          add_(gb + 2 * H, hb + 2 * H, H);  // x_n + W_hn (r h) + b_hn
        }
        tanh_(gb + 2 * H, H);
        // h_t = (1 - z) n + z h_{t-1}
        at::vec::map3([](V z, V nv, V hv) { return nv + z * (hv - nv); }, op + (o + b) * H,
                      gb + H, gb + 2 * H, hcur + b * H, H);
      }
      if (reg.keep_h) zoneout_rows(op + (o + lo) * H, hcur + lo * H, reg.keep_h + (o + lo) * H, n, H);
      std::memcpy(hcur + lo * H, op + (o + lo) * H, sizeof(T) * n * H);
    }
  });
  return {out, h, save ? acts : Tensor(), hn_all, save && gain ? NS : Tensor()};
}

template <typename T>
std::vector<Tensor> gru_backward_impl(const Tensor& dout, const Tensor& dhT, const Tensor& out,
                                      const Tensor& acts, const Tensor& hn_all, const Tensor& h0,
                                      const Tensor& W_hh, const Tensor& b_hh, const Tensor& NS,
                                      const Tensor& ln_w, const Reg<T>& reg, const Steps& st,
                                      int64_t form) {
  const int64_t H = h0.size(1), N = st.N, B = st.B, H3 = 3 * H;
  const bool reset_after = form & RESET_AFTER, tanh_z = !reset_after && (form & TANH_Z);
  const bool no_z = !reset_after && !tanh_z && (form & NO_Z);
  auto opts = out.options();
  Tensor dX = at::empty({N, H3}, opts);   // gradient of the input projection
  Tensor dHp = at::empty({B, H3}, opts);  // gradient of the recurrent products of a step
  Tensor dh = dhT.clone();
  const T* gain = static_cast<const T*>(ptr_or_null(ln_w));
  Partial dW({H3, H}, opts), db({H3}, opts), dnorm({gain ? 2 * H3 : 0}, opts);
  // layer norm: db takes the gradient after the normalisation; the products, before it
  auto normalised = [&](int64_t o, int64_t b, int64_t from, int64_t width, int64_t stat) {
    T* d = dHp.data_ptr<T>() + b * H3 + from;
    add_(db.mine<T>() + from, d, width);
    if (!gain) return;
    const T* lr = NS.data_ptr<T>() + (o + b) * (H3 + 2);
    T* dn = dnorm.mine<T>();
    layer_norm_row_backward(d, lr + from, lr[H3 + stat], gain + from, width, d, dn + from,
                            dn + H3 + from);
  };
  Tensor drh = at::empty({B, H}, opts), rh = at::empty({B, H}, opts);
  Tensor hprev = at::empty({B, H}, opts);
  Tensor direct = at::empty({B, H}, opts);  // dL/dh_{t-1} through z * h_{t-1} (and r * h)
  const T* A = acts.data_ptr<T>();
  const T* Hall = out.data_ptr<T>();
  const T* dO = dout.data_ptr<T>();
  const T* w = W_hh.data_ptr<T>();
  T* dhp = dh.data_ptr<T>();
  const Weight<T> Wback(w, reset_after ? H3 : (tanh_z || no_z ? H : 2 * H), H,
                        /*transposed=*/false, B, st.T, st.library);
  // TANH_Z: the z rows multiply tanh(h_{t-1}), so their part of dh_{t-1} is (dz W_hz)(1 - tanh^2)
  const Weight<T> Wzb(w + H * H, H, H, /*transposed=*/false, tanh_z ? B : 0, st.T, st.library);
  Tensor th = tanh_z ? at::empty({B, H}, opts) : Tensor(), dzh = tanh_z ? at::empty({B, H}, opts) : Tensor();
  auto add_tanh_z = [&](int64_t lo, int64_t n, const T* dHl, T* d) {
    using V = Vectorized<T>;
    Wzb.mul(n, dHl + H, H3, T(0), dzh.data_ptr<T>() + lo * H, H);
    at::vec::map3([](V u, V g, V tv) { return u + g * (V(T(1)) - tv * tv); }, d, d,
                  dzh.data_ptr<T>() + lo * H, th.data_ptr<T>() + lo * H, n * H);
  };
  Tensor hin = reg.mask ? at::empty({B, H}, opts) : Tensor();     // h_{t-1} * mask
  Tensor dnew = reg.keep_h ? at::empty({B, H}, opts) : Tensor();  // dL/dh~_t, before zoneout
  Tensor dprod = reg.any() ? at::empty({B, H}, opts) : Tensor();  // dHp · W_hh
  const T* Hin = reg.mask ? hin.data_ptr<T>() : hprev.data_ptr<T>();  // what the products read
  over_rows(B, H3, [&](int64_t lo, int64_t hi) {
    using V = Vectorized<T>;
    T* dWmine = dW.mine<T>();
    for (int64_t step = st.T - 1; step >= 0; --step) {
      const int64_t t = st.at(step), n = block_rows(st.bs[t], lo, hi), o = st.off[t];
      const int64_t tp = st.before(step);
      if (n <= 0) continue;
      add_(dhp + lo * H, dO + (o + lo) * H, n * H);
      T* dh_new = dhp;  // dL/dh~_t
      if (reg.keep_h) {  // zoneout: h~_t gets (1 - k) of it, h_{t-1} k directly
        const T* k = reg.keep_h + (o + lo) * H;
        at::vec::map2([](V d, V kv) { return (V(T(1)) - kv) * d; }, dnew.data_ptr<T>() + lo * H,
                      dhp + lo * H, k, n * H);
        mul_(dhp + lo * H, k, n * H);
        dh_new = dnew.data_ptr<T>();
      }
      for (int64_t b = lo; b < lo + n; ++b) {
        std::memcpy(hprev.data_ptr<T>() + b * H, prev_row(st, tp, b, Hall, h0.data_ptr<T>(), H),
                    sizeof(T) * H);
        if (reg.mask)
          at::vec::map2([](V hv, V m) { return hv * m; }, hin.data_ptr<T>() + b * H,
                        hprev.data_ptr<T>() + b * H, reg.mask + b * H, H);
        const T* g = A + (o + b) * H3;  // r, z, n
        const T* hpv = hprev.data_ptr<T>() + b * H;
        const T* dhb = dh_new + b * H;
        T* dx = dX.data_ptr<T>() + (o + b) * H3;
        T* dhh = dHp.data_ptr<T>() + b * H3;
        // dz = dh (h_{t-1} - n) z (1 - z);  dn_pre = dh (1 - z)(1 - n^2)
        at::vec::map4([](V d, V z, V nv, V hv) { return d * (hv - nv) * z * (V(T(1)) - z); },
                      dx + H, dhb, g + H, g + 2 * H, hpv, H);
        at::vec::map3([](V d, V z, V nv) { return d * (V(T(1)) - z) * (V(T(1)) - nv * nv); },
                      dx + 2 * H, dhb, g + H, g + 2 * H, H);
        at::vec::map2([](V d, V z) { return d * z; }, direct.data_ptr<T>() + b * H, dhb, g + H, H);
        std::memcpy(dhh + H, dx + H, sizeof(T) * H);
        if (reset_after) {  // n = tanh(x_n + r * hn): dr = dn_pre * hn, dhn = dn_pre * r
          const T* hn = hn_all.data_ptr<T>() + (o + b) * H;
          at::vec::map3([](V dn, V hv, V r) { return dn * hv * r * (V(T(1)) - r); }, dx,
                        dx + 2 * H, hn, g, H);
          at::vec::map2([](V dn, V r) { return dn * r; }, dhh + 2 * H, dx + 2 * H, g, H);
          std::memcpy(dhh, dx, sizeof(T) * H);
        } else {
          std::memcpy(dhh + 2 * H, dx + 2 * H, sizeof(T) * H);
          at::vec::map2([](V r, V hv) { return r * hv; }, rh.data_ptr<T>() + b * H, g,
                        Hin + b * H, H);
        }
      }
      T* dHl = dHp.data_ptr<T>() + lo * H3;
      if (reset_after) {
        for (int64_t b = lo; b < lo + n; ++b) normalised(o, b, 0, H3, 0);
        gemm<T>(true, false, H3, H, n, T(1), dHl, H3, Hin + lo * H, H, T(1), dWmine, H);
      } else {
        for (int64_t b = lo; b < lo + n; ++b) normalised(o, b, 2 * H, H, 1);
        // through W_hn (r h): d(rh) = dn_pre W_hn, dW_hn += dn_pre^T (r h)
        gemm<T>(false, false, n, H, H, T(1), dHl + 2 * H, H3, w + 2 * H * H, H, T(0),
                drh.data_ptr<T>() + lo * H, H);
        gemm<T>(true, false, H, H, n, T(1), dHl + 2 * H, H3, rh.data_ptr<T>() + lo * H, H, T(1),
                dWmine + 2 * H * H, H);
        for (int64_t b = lo; b < lo + n; ++b) {
          const T* g = A + (o + b) * H3;
          T* dx = dX.data_ptr<T>() + (o + b) * H3;
          const T* d = drh.data_ptr<T>() + b * H;
          // dr = d(rh) h_{t-1} r (1 - r); the direct path gains d(rh) r (times the mask)
          at::vec::map3([](V dv, V hv, V r) { return dv * hv * r * (V(T(1)) - r); }, dx, d,
                        Hin + b * H, g, H);
          if (reg.mask)
            at::vec::map4([](V u, V dv, V r, V m) { return u + dv * r * m; },
                          direct.data_ptr<T>() + b * H, direct.data_ptr<T>() + b * H, d, g,
                          reg.mask + b * H, H);
          else
            add_mul_(direct.data_ptr<T>() + b * H, d, g, H);
          std::memcpy(dHp.data_ptr<T>() + b * H3, dx, sizeof(T) * H);
          normalised(o, b, 0, 2 * H, 0);
        }
        if (!tanh_z) {  // (NO_Z: the r rows only)
          gemm<T>(true, false, no_z ? H : 2 * H, H, n, T(1), dHl, H3, Hin + lo * H, H, T(1),
                  dWmine, H);
        } else {  // dW_hr from h_{t-1}, dW_hz from tanh(h_{t-1})
          T* tb = th.data_ptr<T>() + lo * H;
          at::vec::map([](V v) { return vtanh(v); }, tb, Hin + lo * H, n * H);
          gemm<T>(true, false, H, H, n, T(1), dHl, H3, Hin + lo * H, H, T(1), dWmine, H);
          gemm<T>(true, false, H, H, n, T(1), dHl + H, H3, tb, H, T(1), dWmine + H * H, H);
        }
      }
      // dh_{t-1} = the direct path + dHp · W_hh (the r and z blocks only before the reset)
      if (!reg.any()) {
        std::memcpy(dhp + lo * H, direct.data_ptr<T>() + lo * H, sizeof(T) * n * H);
        Wback.mul(n, dHl, H3, T(1), dhp + lo * H, H);
        if (tanh_z) add_tanh_z(lo, n, dHl, dhp + lo * H);
        continue;
      }
      T* d = dprod.data_ptr<T>() + lo * H;
      Wback.mul(n, dHl, H3, T(0), d, H);
      if (tanh_z) add_tanh_z(lo, n, dHl, d);
      if (reg.mask) mul_(d, reg.mask + lo * H, n * H);  // the products read h_{t-1} * mask
      add_(d, direct.data_ptr<T>() + lo * H, n * H);
      if (reg.keep_h)  // plus what zoneout carried straight through
        add_(dhp + lo * H, d, n * H);
      else
        std::memcpy(dhp + lo * H, d, sizeof(T) * n * H);
    }
  });
  Tensor dn = gain ? dnorm.total() : Tensor();
  return {dX, dh, dW.total(), b_hh.defined() && b_hh.numel() ? db.total() : Tensor(),
          gain ? dn.slice(0, 0, H3).clone() : Tensor(), gain ? dn.slice(0, H3).clone() : Tensor()};
}

// ---------------------------------------------------------------------------------------------
// Vanilla RNN: h_t = act(W_ih x_t + b + W_hh h_{t-1}).
//
// With a clock, the Clockwork RNN (Koutnik et al. 2014): the units form modules, module i owning
// columns [bounds[i], bounds[i+1]) in order of increasing period, and reading only the units of
// modules at least as slow (columns from bounds[i] on: W_hh is block-upper-triangular). active
// (N, g) says, per row of each step, which modules update (1) and which keep h_{t-1} (0). A step
// multiplies only the blocks of modules that update in some row of it, as the paper counts.

template <typename T>
struct Clock {
  std::vector<int64_t> bounds;  // g + 1 column bounds; empty: no clock
  const T* active = nullptr;
  int64_t g = 0;
  Clock(const std::vector<int64_t>& b, const Tensor& a)
      : bounds(b), active(static_cast<const T*>(ptr_or_null(a))),
        g(b.empty() ? 0 : static_cast<int64_t>(b.size()) - 1) {}
  bool on() const { return g > 0; }
  bool is_active(int64_t row, int64_t i) const { return active[row * g + i] != T(0); }
  // whether module i updates in any of the n rows from packed row r
  bool any(int64_t r, int64_t n, int64_t i) const {
    for (int64_t b = r; b < r + n; ++b)
      if (is_active(b, i)) return true;
    return false;
  }
};

template <typename T>
std::vector<Tensor> rnn_forward_impl(const Tensor& xp, const Tensor& bx, const Tensor& h0,
                                     const Tensor& W_hh, const Reg<T>& reg, const Clock<T>& ck,
                                     const Steps& st, bool relu) {
  const int64_t H = h0.size(1);
  Tensor out = xp.clone();
  Tensor h = h0.clone();
  Tensor hin = reg.mask ? at::empty({st.B, H}, xp.options()) : Tensor();  // h_{t-1} * mask
  Tensor Hn = reg.keep_h ? at::empty({st.N, H}, xp.options()) : Tensor();  // h~_t, before zoneout
  T* op = out.data_ptr<T>();
  T* hp = h.data_ptr<T>();
  const T* bias = static_cast<const T*>(ptr_or_null(bx));
  const Weight<T> Whh(W_hh.data_ptr<T>(), H, H, /*transposed=*/true, ck.on() ? 0 : st.B, st.T,
                      st.library);
  over_rows(st.B, H, [&](int64_t lo, int64_t hi) {
    using V = Vectorized<T>;
    for (int64_t step = 0; step < st.T; ++step) {
      const int64_t t = st.at(step), n = block_rows(st.bs[t], lo, hi), o = st.off[t];
      if (n <= 0) continue;
      T* rows = op + (o + lo) * H;
      const T* h_in = hp;
      if (reg.mask) {  // recurrent dropout: on the product's input only
        masked_rows(hin.data_ptr<T>(), hp, reg.mask, lo, n, H);
        h_in = hin.data_ptr<T>();
      }
      if (!ck.on()) Whh.mul(n, h_in + lo * H, H, T(1), rows, H);
      for (int64_t i = 0; i < ck.g; ++i) {  // the modules that update: their block-rows only
        const int64_t c0 = ck.bounds[i], w = ck.bounds[i + 1] - c0;
        if (ck.any(o + lo, n, i))
          gemm<T>(false, true, n, w, H - c0, T(1), h_in + lo * H + c0, H,
                  W_hh.data_ptr<T>() + c0 * H + c0, H, T(1), rows + c0, H);
      }
      for (int64_t b = 0; b < n; ++b) {
        T* r = rows + b * H;
        if (bias) add_(r, bias, H);
        if (relu)
          at::vec::map([](V v) { return at::vec::maximum(v, V(T(0))); }, r, r, H);
        else
          tanh_(r, H);
        for (int64_t i = 0; i < ck.g; ++i)  // the modules that wait keep h_{t-1}
          if (!ck.is_active(o + lo + b, i))
            std::memcpy(r + ck.bounds[i], hp + (lo + b) * H + ck.bounds[i],
                        sizeof(T) * (ck.bounds[i + 1] - ck.bounds[i]));
      }
      if (reg.keep_h) {  // zoneout: h_t = k h_{t-1} + (1 - k) h~_t
        std::memcpy(Hn.data_ptr<T>() + (o + lo) * H, rows, sizeof(T) * n * H);
        zoneout_rows(rows, hp + lo * H, reg.keep_h + (o + lo) * H, n, H);
      }
      std::memcpy(hp + lo * H, rows, sizeof(T) * n * H);
    }
  });
  return {out, h, Hn};
}

template <typename T>
std::vector<Tensor> rnn_backward_impl(const Tensor& dout, const Tensor& dhT, const Tensor& out,
                                      const Tensor& h0, const Tensor& W_hh, const Tensor& Hn,
                                      const Reg<T>& reg, const Clock<T>& ck, const Steps& st,
                                      bool relu) {
  const int64_t H = h0.size(1), N = st.N, B = st.B;
  auto opts = out.options();
  Tensor dX = at::empty({N, H}, opts);
  Tensor dh = dhT.clone();
  Partial dW({H, H}, opts);
  Tensor hprev = at::empty({B, H}, opts);
  const T* Hall = out.data_ptr<T>();
  const T* Hact = reg.keep_h ? Hn.data_ptr<T>() : Hall;  // the activations, before zoneout
  const T* dO = dout.data_ptr<T>();
  T* dhp = dh.data_ptr<T>();
  Tensor dnew = reg.keep_h ? at::empty({B, H}, out.options()) : Tensor();
  Tensor dprod = reg.any() || ck.on() ? at::empty({B, H}, out.options()) : Tensor();
  const T* W = W_hh.data_ptr<T>();
  const Weight<T> Whh(W, H, H, /*transposed=*/false, ck.on() ? 0 : B, st.T, st.library);
  over_rows(B, H, [&](int64_t lo, int64_t hi) {
    using V = Vectorized<T>;
    T* dWmine = dW.mine<T>();
    for (int64_t step = st.T - 1; step >= 0; --step) {
      const int64_t t = st.at(step), n = block_rows(st.bs[t], lo, hi), o = st.off[t];
      const int64_t tp = st.before(step);
      if (n <= 0) continue;
      add_(dhp + lo * H, dO + (o + lo) * H, n * H);
      T* dx = dX.data_ptr<T>() + (o + lo) * H;
      const T* ht = Hact + (o + lo) * H;
      const T* dh_new = dhp + lo * H;  // dL/dh~_t
      if (reg.keep_h) {  // zoneout: h~_t gets (1 - k) of it, h_{t-1} k directly
        const T* k = reg.keep_h + (o + lo) * H;
        at::vec::map2([](V d, V kv) { return (V(T(1)) - kv) * d; }, dnew.data_ptr<T>() + lo * H,
                      dhp + lo * H, k, n * H);
        mul_(dhp + lo * H, k, n * H);
        dh_new = dnew.data_ptr<T>() + lo * H;
      }
      if (relu)
        at::vec::map2([](V d, V y) { return V::blendv(V(T(0)), d, y > V(T(0))); }, dx, dh_new,
                      ht, n * H);
      else
        at::vec::map2([](V d, V y) { return d * (V(T(1)) - y * y); }, dx, dh_new, ht, n * H);
      for (int64_t b = 0; b < n; ++b)  // a module that waited passed h_{t-1} on unchanged
        for (int64_t i = 0; i < ck.g; ++i)
          if (!ck.is_active(o + lo + b, i))
            std::memset(dx + b * H + ck.bounds[i], 0,
                        sizeof(T) * (ck.bounds[i + 1] - ck.bounds[i]));
      for (int64_t b = lo; b < lo + n; ++b)
        std::memcpy(hprev.data_ptr<T>() + b * H, prev_row(st, tp, b, Hall, h0.data_ptr<T>(), H),
                    sizeof(T) * H);
      if (reg.mask) mul_(hprev.data_ptr<T>() + lo * H, reg.mask + lo * H, n * H);
      if (!ck.on())
        gemm<T>(true, false, H, H, n, T(1), dx, H, hprev.data_ptr<T>() + lo * H, H, T(1), dWmine,
                H);
      if (!reg.any() && !ck.on()) {
        Whh.mul(n, dx, H, T(0), dhp + lo * H, H);
        continue;
      }
      T* d = dprod.data_ptr<T>() + lo * H;  // dh_{t-1} = dx W_hh (times the mask) + the carry
      if (!ck.on()) {
        Whh.mul(n, dx, H, T(0), d, H);
      } else {
        std::memset(d, 0, sizeof(T) * n * H);
        for (int64_t i = 0; i < ck.g; ++i) {  // the block-rows of the modules that updated
          const int64_t c0 = ck.bounds[i], w = ck.bounds[i + 1] - c0;
          if (!ck.any(o + lo, n, i)) continue;
          gemm<T>(true, false, w, H - c0, n, T(1), dx + c0, H, hprev.data_ptr<T>() + lo * H + c0,
                  H, T(1), dWmine + c0 * H + c0, H);
          gemm<T>(false, false, n, H - c0, w, T(1), dx + c0, H, W + c0 * H + c0, H, T(1), d + c0,
                  H);
        }
      }
      if (reg.mask) mul_(d, reg.mask + lo * H, n * H);
      for (int64_t b = 0; b < n; ++b)  // the waiting modules' carry
        for (int64_t i = 0; i < ck.g; ++i)
          if (!ck.is_active(o + lo + b, i)) {
            const int64_t c0 = ck.bounds[i];
            add_(d + b * H + c0, dh_new + b * H + c0, ck.bounds[i + 1] - c0);
          }
      if (reg.keep_h)
        add_(dhp + lo * H, d, n * H);
      else
        std::memcpy(dhp + lo * H, d, sizeof(T) * n * H);
    }
  });
  return {dX, dh, dW.total()};
}

// ---------------------------------------------------------------------------------------------
// A Grid LSTM block with priority "time" (Kalchbrenner et al. 2015): each step first runs the
// depth transform on [h^t_{t-1} ; h^d_{k-1}] with the memory from below, then the time
// transform on [h^t_{t-1} ; h^d_k], reading the depth vector just made. Both read h^t_{t-1},
// so one product with their stacked columns W_rec = [W_dh ; W_th] ((G + 4H, H)) serves both;
// the time transform's product with h^d_k (W_tx, (4H, H)) follows the depth transform. xd
// (N, G) is the depth transform's pre-activation from below, W_dx h^d_{k-1} + b_d, computed
// before the call: G = 4H for an LSTM depth transform, H for tanh or relu (no memory). The
// equations are lstmkit/cells/grid.py's (GridLSTMCell.step and lstm_transform).

enum : int64_t { GRID_LSTM = 0, GRID_TANH = 1, GRID_RELU = 2 };

// The LSTM transform of one row from its pre-activations g (4H: i, f, g, o), which it replaces
// with the activations: m = f m_prev + i g; h = tanh(o m) (inside) or o tanh(m). m may be
// m_prev, and h may be any row the step no longer reads.
template <typename T>
void transform_row(T* g, const T* m_prev, T* m, T* h, int64_t H, bool inside) {
  using V = Vectorized<T>;
  constexpr int64_t L = V::size();
  for (int64_t j = 0; j < H; j += L) {
    const int64_t cnt = std::min<int64_t>(L, H - j);
    auto ld = [&](const T* q) { return cnt == L ? V::loadu(q + j) : V::loadu(q + j, cnt); };
    auto stv = [&](const V& v, T* q) { cnt == L ? v.store(q + j) : v.store(q + j, cnt); };
    const V i = vsigmoid(ld(g)), f = vsigmoid(ld(g + H)), c = vtanh(ld(g + 2 * H));
    const V o = vsigmoid(ld(g + 3 * H)), mv = f * ld(m_prev) + i * c;
    stv(i, g);
    stv(f, g + H);
    stv(c, g + 2 * H);
    stv(o, g + 3 * H);
    stv(mv, m);
    stv(inside ? vtanh(o * mv) : o * vtanh(mv), h);
  }
}

// Its backward from the activations g: given dh and dm (what reaches m other than through h),
// the pre-activations' gradient dg (4H) and dm_prev (which may be dm).
template <typename T>
void transform_row_backward(const T* g, const T* m_prev, const T* m, const T* dh, const T* dm,
                            T* dg, T* dm_prev, int64_t H, bool inside) {
  using V = Vectorized<T>;
  constexpr int64_t L = V::size();
  const V one(T(1));
  for (int64_t j = 0; j < H; j += L) {
    const int64_t cnt = std::min<int64_t>(L, H - j);
    auto ld = [&](const T* q) { return cnt == L ? V::loadu(q + j) : V::loadu(q + j, cnt); };
    auto stv = [&](const V& v, T* q) { cnt == L ? v.store(q + j) : v.store(q + j, cnt); };
    const V i = ld(g), f = ld(g + H), c = ld(g + 2 * H), o = ld(g + 3 * H);
    const V mv = ld(m), dhv = ld(dh);
    V dmv = ld(dm), dov;
    if (inside) {  // h = tanh(o m)
      const V u = vtanh(o * mv), d = dhv * (one - u * u);
      dov = d * mv;
      dmv = dmv + d * o;
    } else {  // h = o tanh(m)
      const V u = vtanh(mv);
      dov = dhv * u;
      dmv = dmv + dhv * o * (one - u * u);
    }
    stv(dmv * c * i * (one - i), dg);
    stv(dmv * ld(m_prev) * f * (one - f), dg + H);
    stv(dmv * i * (one - c * c), dg + 2 * H);
    stv(dov * o * (one - o), dg + 3 * H);
    stv(dmv * f, dm_prev);
  }
}

template <typename T>
std::vector<Tensor> grid_time_forward_impl(const Tensor& xd, const Tensor& md, const Tensor& h0,
                                           const Tensor& m0, const Tensor& W_rec,
                                           const Tensor& W_tx, const Tensor& b_t, const Steps& st,
                                           int64_t depth, bool inside, bool save) {
  const int64_t H = h0.size(1), N = st.N, B = st.B, G = depth == GRID_LSTM ? 4 * H : H;
  const int64_t W = G + 4 * H;
  auto opts = xd.options();
  Tensor Hd = at::empty({N, H}, opts);  // h^d_k of every row, and (LSTM) its memory m^d_k
  Tensor Md = depth == GRID_LSTM ? at::empty({N, H}, opts) : Tensor();
  // each row's activations, depth's then time's (per step when saved, else scratch), and the
  // time transform's h and m of every step, for the backward pass
  Tensor acts = at::empty({save ? N : B, W}, opts);
  Tensor Ht = save ? at::empty({N, H}, opts) : Tensor();
  Tensor Mt = save ? at::empty({N, H}, opts) : Tensor();
  Tensor h = h0.clone(), m = m0.clone();
  const T* x = xd.data_ptr<T>();
  const T* bias = static_cast<const T*>(ptr_or_null(b_t));
  T *hp = h.data_ptr<T>(), *mp = m.data_ptr<T>(), *hd = Hd.data_ptr<T>();
  const Weight<T> Wrec(W_rec.data_ptr<T>(), W, H, /*transposed=*/true, B, st.T, st.library);
  const Weight<T> Wtx(W_tx.data_ptr<T>(), 4 * H, H, /*transposed=*/true, B, st.T, st.library);
  over_rows(B, W, [&](int64_t lo, int64_t hi) {
    for (int64_t step = 0; step < st.T; ++step) {
      const int64_t t = st.at(step), n = block_rows(st.bs[t], lo, hi), o = st.off[t];
      if (n <= 0) continue;
      T* pre = acts.data_ptr<T>() + (save ? o : 0) * W;
      Wrec.mul(n, hp + lo * H, H, T(0), pre + lo * W, W);  // [W_dh ; W_th]·h^t_{t-1}
      for (int64_t b = lo; b < lo + n; ++b) {  // the depth transform
        T* g = pre + b * W;
        add_(g, x + (o + b) * G, G);
        T* hb = hd + (o + b) * H;
        if (depth == GRID_LSTM) {
          transform_row(g, md.data_ptr<T>() + (o + b) * H, Md.data_ptr<T>() + (o + b) * H, hb, H,
                        inside);
        } else {
          if (depth == GRID_RELU)
            at::vec::map([](Vectorized<T> v) { return at::vec::maximum(v, Vectorized<T>(T(0))); },
                         g, g, H);
          else
            tanh_(g, H);
          std::memcpy(hb, g, sizeof(T) * H);
        }
      }
      Wtx.mul(n, hd + (o + lo) * H, H, T(1), pre + lo * W + G, W);  // + W_tx·h^d_k
      for (int64_t b = lo; b < lo + n; ++b) {  // the time transform
        T* g = pre + b * W + G;
        if (bias) add_(g, bias, 4 * H);
        transform_row(g, mp + b * H, mp + b * H, hp + b * H, H, inside);
        if (save) {
          std::memcpy(Ht.data_ptr<T>() + (o + b) * H, hp + b * H, sizeof(T) * H);
          std::memcpy(Mt.data_ptr<T>() + (o + b) * H, mp + b * H, sizeof(T) * H);
        }
      }
    }
  });
  return {Hd, Md, h, m, save ? acts : Tensor(), Ht, Mt};
}

template <typename T>
std::vector<Tensor> grid_time_backward_impl(const Tensor& dHd, const Tensor& dMd, const Tensor& dhT,
                                            const Tensor& dmT, const Tensor& acts, const Tensor& Hd,
                                            const Tensor& Md, const Tensor& md, const Tensor& Ht,
                                            const Tensor& Mt, const Tensor& h0, const Tensor& m0,
                                            const Tensor& W_rec, const Tensor& W_tx,
                                            const Steps& st, int64_t depth, bool inside) {
  const int64_t H = h0.size(1), N = st.N, B = st.B, G = depth == GRID_LSTM ? 4 * H : H;
  const int64_t W = G + 4 * H;
  auto opts = acts.options();
  Tensor dG = at::empty({N, W}, opts);  // the pre-activations' gradient, depth's then time's
  Tensor dh = dhT.clone(), dm = dmT.clone();
  Tensor dhd = at::empty({B, H}, opts);  // dL/dh^d_k of the step's rows
  Tensor dmd = depth == GRID_LSTM ? at::empty({N, H}, opts) : Tensor();  // of the memory below
  const T *A = acts.data_ptr<T>(), *Mall = Mt.data_ptr<T>();
  T *dGp = dG.data_ptr<T>(), *dhp = dh.data_ptr<T>(), *dmp = dm.data_ptr<T>();
  const Weight<T> Wrec(W_rec.data_ptr<T>(), W, H, /*transposed=*/false, B, st.T, st.library);
  const Weight<T> Wtx(W_tx.data_ptr<T>(), 4 * H, H, /*transposed=*/false, B, st.T, st.library);
  over_rows(B, W, [&](int64_t lo, int64_t hi) {
    using V = Vectorized<T>;
    for (int64_t step = st.T - 1; step >= 0; --step) {
      const int64_t t = st.at(step), n = block_rows(st.bs[t], lo, hi), o = st.off[t];
      const int64_t tp = st.before(step);
      if (n <= 0) continue;
      for (int64_t b = lo; b < lo + n; ++b) {  // the time transform
        const T* m_prev = prev_row(st, tp, b, Mall, m0.data_ptr<T>(), H);
        transform_row_backward(A + (o + b) * W + G, m_prev, Mall + (o + b) * H, dhp + b * H,
                               dmp + b * H, dGp + (o + b) * W + G, dmp + b * H, H, inside);
      }
      // dh^d_k: through the time transform, and from what read it outside the block
      Wtx.mul(n, dGp + (o + lo) * W + G, W, T(0), dhd.data_ptr<T>() + lo * H, H);
      add_(dhd.data_ptr<T>() + lo * H, dHd.data_ptr<T>() + (o + lo) * H, n * H);
      for (int64_t b = lo; b < lo + n; ++b) {  // the depth transform
        const T* g = A + (o + b) * W;
        const T* d = dhd.data_ptr<T>() + b * H;
        T* dg = dGp + (o + b) * W;
        if (depth == GRID_LSTM) {
          const int64_t r = (o + b) * H;
          transform_row_backward(g, md.data_ptr<T>() + r, Md.data_ptr<T>() + r, d,
                                 dMd.data_ptr<T>() + r, dg, dmd.data_ptr<T>() + r, H, inside);
        } else if (depth == GRID_RELU) {
          at::vec::map2([](V u, V v) { return V::blendv(V(T(0)), u, v > V(T(0))); }, dg, d, g, H);
        } else {
          at::vec::map2([](V u, V v) { return u * (V(T(1)) - v * v); }, dg, d, g, H);
        }
      }
      Wrec.mul(n, dGp + (o + lo) * W, W, T(0), dhp + lo * H, H);  // dh^t_{t-1}
    }
  });
  // the weights' gradients, each one product over all rows: W_rec's reads h^t_{t-1} (the
  // previous step's time vector, or h_0), W_tx's the depth vectors
  Tensor Hprev = at::empty({N, H}, opts);
  for (int64_t step = 0; step < st.T; ++step) {
    const int64_t t = st.at(step), tp = st.before(step);
    for (int64_t b = 0; b < st.bs[t]; ++b)
      std::memcpy(Hprev.data_ptr<T>() + (st.off[t] + b) * H,
                  prev_row(st, tp, b, Ht.data_ptr<T>(), h0.data_ptr<T>(), H), sizeof(T) * H);
  }
  Tensor dWrec = at::zeros({W, H}, opts), dWtx = at::zeros({4 * H, H}, opts);
  gemm<T>(true, false, W, H, N, T(1), dGp, W, Hprev.data_ptr<T>(), H, T(0), dWrec.data_ptr<T>(),
          H);
  gemm<T>(true, false, 4 * H, H, N, T(1), dGp + G, W, Hd.data_ptr<T>(), H, T(0),
          dWtx.data_ptr<T>(), H);
  Tensor dGt = dG.slice(1, G, W);
  return {dG.slice(1, 0, G).contiguous(), dmd, dh, dm, dWrec, dWtx, dGt.sum(0)};
}

// ---------------------------------------------------------------------------------------------
// Entry points: dtype dispatch and argument checks (the Python side validates the rest).

void check(const Tensor& t, const char* name) {
  TORCH_CHECK(!t.defined() || t.numel() == 0 || (t.device().is_cpu() && t.is_contiguous()),
              "lstmkit fused engine: ", name, " must be a contiguous CPU tensor");
}

#define LSTMKIT_DISPATCH(xp, NAME, ...)                                          \
  [&] {                                                                          \
    if ((xp).scalar_type() == at::kFloat) {                                      \
      using scalar_t = float;                                                    \
      return __VA_ARGS__();                                                      \
    }                                                                            \
    TORCH_CHECK((xp).scalar_type() == at::kDouble, "lstmkit fused engine: ",     \
                NAME, " supports float32 and float64, got ", (xp).scalar_type()); \
    using scalar_t = double;                                                     \
    return __VA_ARGS__();                                                        \
  }()

// xp is W_ih x for every step, without bias; bx the bias added to it (or an empty tensor).
// The backward passes end with the bias gradient: the column sums of the input gradient.

std::vector<Tensor> lstm_forward(Tensor xp, Tensor bx, Tensor h0, Tensor c0, Tensor a0,
                                 Tensor W_hh, Tensor w_ci, Tensor w_cf, Tensor w_co, Tensor W_gg,
                                 Tensor W_hr, Tensor mask, Tensor keep_h, Tensor keep_c,
                                 Tensor ln_hh_w, Tensor ln_hh_b, Tensor ln_c_w, Tensor ln_c_b,
                                 Tensor batch_sizes, int64_t flags, bool reverse, bool save,
                                 int64_t library, Tensor depth, Tensor w_cd) {
  for (auto* t : {&xp, &bx, &h0, &c0, &a0, &W_hh, &w_ci, &w_cf, &w_co, &W_gg, &W_hr, &mask,
                  &keep_h, &keep_c, &ln_hh_w, &ln_hh_b, &ln_c_w, &ln_c_b, &depth, &w_cd})
    check(*t, "input");
  Steps st(batch_sizes, reverse, library);
  return LSTMKIT_DISPATCH(xp, "lstm_forward", [&] {
    const Reg<scalar_t> reg(mask, keep_h, keep_c);
    const Norms<scalar_t> ln(ln_hh_w, ln_hh_b, ln_c_w, ln_c_b);
    const Depth<scalar_t> dep(depth, w_cd);
    return lstm_forward_impl<scalar_t>(xp, bx, h0, c0, a0, W_hh, w_ci, w_cf, w_co, W_gg, W_hr,
                                       reg, ln, dep, st, flags, save);
  });
}

Tensor bias_grad(const Tensor& dx, bool has_bias) { return has_bias ? dx.sum(0) : Tensor(); }

std::vector<Tensor> lstm_backward(Tensor dout, Tensor dhT, Tensor dcT, Tensor daT, Tensor out,
                                  Tensor acts, Tensor C, Tensor h0, Tensor c0, Tensor a0,
                                  Tensor W_hh, Tensor w_ci, Tensor w_cf, Tensor w_co, Tensor W_gg,
                                  Tensor W_hr, Tensor S, Tensor mask, Tensor keep_h,
                                  Tensor keep_c, Tensor NS, Tensor ln_hh_w, Tensor ln_hh_b,
                                  Tensor ln_c_w, Tensor ln_c_b, Tensor batch_sizes, int64_t flags,
                                  bool reverse, bool has_bias, int64_t library, Tensor depth,
                                  Tensor w_cd, Tensor D, Tensor dCseq, Tensor dHseq) {
  check(dCseq, "the cells' gradient");
  check(dHseq, "the gradient of h before zoneout");
  Steps st(batch_sizes, reverse, library);
  auto grads = LSTMKIT_DISPATCH(out, "lstm_backward", [&] {
    const Reg<scalar_t> reg(mask, keep_h, keep_c);
    const Norms<scalar_t> ln(ln_hh_w, ln_hh_b, ln_c_w, ln_c_b);
    const Depth<scalar_t> dep(depth, w_cd);
    return lstm_backward_impl<scalar_t>(dout, dhT, dcT, daT, out, acts, C, h0, c0, a0, W_hh, w_ci,
                                        w_cf, w_co, W_gg, W_hr, S, reg, NS, ln, dep, D, dCseq,
                                        dHseq, st, flags);
  });
  grads.push_back(bias_grad(grads[0], has_bias));
  return grads;
}

std::vector<Tensor> gru_forward(Tensor xp, Tensor bx, Tensor h0, Tensor W_hh, Tensor b_hh,
                                Tensor ln_w, Tensor ln_b, Tensor mask, Tensor keep_h,
                                Tensor batch_sizes, int64_t form, bool reverse, bool save,
                                int64_t library) {
  for (auto* t : {&xp, &bx, &h0, &W_hh, &b_hh, &ln_w, &ln_b, &mask, &keep_h}) check(*t, "input");
  Steps st(batch_sizes, reverse, library);
  return LSTMKIT_DISPATCH(xp, "gru_forward", [&] {
    const Reg<scalar_t> reg(mask, keep_h, Tensor());
    return gru_forward_impl<scalar_t>(xp, bx, h0, W_hh, b_hh, ln_w, ln_b, reg, st, form, save);
  });
}

std::vector<Tensor> gru_backward(Tensor dout, Tensor dhT, Tensor out, Tensor acts, Tensor hn_all,
                                 Tensor h0, Tensor W_hh, Tensor b_hh, Tensor NS, Tensor ln_w,
                                 Tensor mask, Tensor keep_h, Tensor batch_sizes, int64_t form,
                                 bool reverse, bool has_bias, int64_t library) {
  Steps st(batch_sizes, reverse, library);
  auto grads = LSTMKIT_DISPATCH(out, "gru_backward", [&] {
    const Reg<scalar_t> reg(mask, keep_h, Tensor());
    return gru_backward_impl<scalar_t>(dout, dhT, out, acts, hn_all, h0, W_hh, b_hh, NS, ln_w,
                                       reg, st, form);
  });
  grads.push_back(bias_grad(grads[0], has_bias));
  return grads;
}

std::vector<Tensor> rnn_forward(Tensor xp, Tensor bx, Tensor h0, Tensor W_hh, Tensor mask,
                                Tensor keep_h, Tensor batch_sizes, bool relu, bool reverse,
                                int64_t library, std::vector<int64_t> bounds, Tensor active) {
  for (auto* t : {&xp, &bx, &h0, &W_hh, &mask, &keep_h, &active}) check(*t, "input");
  Steps st(batch_sizes, reverse, library);
  return LSTMKIT_DISPATCH(xp, "rnn_forward", [&] {
    const Reg<scalar_t> reg(mask, keep_h, Tensor());
    const Clock<scalar_t> ck(bounds, active);
    return rnn_forward_impl<scalar_t>(xp, bx, h0, W_hh, reg, ck, st, relu);
  });
}

std::vector<Tensor> rnn_backward(Tensor dout, Tensor dhT, Tensor out, Tensor h0, Tensor W_hh,
                                 Tensor Hn, Tensor mask, Tensor keep_h, Tensor batch_sizes,
                                 bool relu, bool reverse, bool has_bias, int64_t library,
                                 std::vector<int64_t> bounds, Tensor active) {
  Steps st(batch_sizes, reverse, library);
  auto grads = LSTMKIT_DISPATCH(out, "rnn_backward", [&] {
    const Reg<scalar_t> reg(mask, keep_h, Tensor());
    const Clock<scalar_t> ck(bounds, active);
    return rnn_backward_impl<scalar_t>(dout, dhT, out, h0, W_hh, Hn, reg, ck, st, relu);
  });
  grads.push_back(bias_grad(grads[0], has_bias));
  return grads;
}

std::vector<Tensor> grid_time_forward(Tensor xd, Tensor md, Tensor h0, Tensor m0, Tensor W_rec,
                                      Tensor W_tx, Tensor b_t, Tensor batch_sizes, int64_t depth,
                                      bool inside, bool reverse, bool save, int64_t library) {
  for (auto* t : {&xd, &md, &h0, &m0, &W_rec, &W_tx, &b_t}) check(*t, "input");
  Steps st(batch_sizes, reverse, library);
  return LSTMKIT_DISPATCH(xd, "grid_time_forward", [&] {
    return grid_time_forward_impl<scalar_t>(xd, md, h0, m0, W_rec, W_tx, b_t, st, depth, inside,
                                            save);
  });
}

std::vector<Tensor> grid_time_backward(Tensor dHd, Tensor dMd, Tensor dhT, Tensor dmT,
                                       Tensor acts, Tensor Hd, Tensor Md, Tensor md, Tensor Ht,
                                       Tensor Mt, Tensor h0, Tensor m0, Tensor W_rec, Tensor W_tx,
                                       Tensor batch_sizes, int64_t depth, bool inside,
                                       bool reverse, int64_t library) {
  for (auto* t : {&dHd, &dMd, &dhT, &dmT}) check(*t, "gradient");
  Steps st(batch_sizes, reverse, library);
  return LSTMKIT_DISPATCH(acts, "grid_time_backward", [&] {
    return grid_time_backward_impl<scalar_t>(dHd, dMd, dhT, dmT, acts, Hd, Md, md, Ht, Mt, h0,
                                             m0, W_rec, W_tx, st, depth, inside);
  });
}

bool has_blas() { return blas().s != nullptr && blas().d != nullptr; }

bool has_onednn() { return dnnl().ok(); }

// Seconds for `reps` products A (m, k) @ W^T with W (n, k), float32, as a step of the kernels
// computes them with the given library: what products.py measures to choose one.
double product_seconds(int64_t m, int64_t k, int64_t n, int64_t library, int64_t reps) {
  // not random: measuring must not move the random number generator a user's run depends on
  Tensor W = at::full({n, k}, 0.01f), A = at::full({m, k}, 0.5f), C = at::empty({m, n});
  const Weight<float> w(W.data_ptr<float>(), n, k, /*transposed=*/true, m, reps, library);
  w.mul(m, A.data_ptr<float>(), k, 0.0f, C.data_ptr<float>(), n);  // warm-up
  const auto start = std::chrono::steady_clock::now();
  for (int64_t r = 0; r < reps; ++r) w.mul(m, A.data_ptr<float>(), k, 0.0f, C.data_ptr<float>(), n);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lstm_forward", &lstm_forward);
  m.def("lstm_backward", &lstm_backward);
  m.def("gru_forward", &gru_forward);
  m.def("gru_backward", &gru_backward);
  m.def("rnn_forward", &rnn_forward);
  m.def("rnn_backward", &rnn_backward);
  m.def("grid_time_forward", &grid_time_forward);
  m.def("grid_time_backward", &grid_time_backward);
  m.def("has_blas", &has_blas);
  m.def("has_onednn", &has_onednn);
  m.def("product_seconds", &product_seconds);
}
