// Fused coordinatewise LSTM step (no autograd): preprocessing, two LSTM cells and the output layer for
// every coordinate in one pass, so each coordinate's 80 floats of state are read once and written once
// and the gates never leave the registers/L1 cache. Coordinates are independent; blocks of them run in
// parallel. Built once per machine and cached; see l2o/kernels/__init__.py.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

namespace {

constexpr int H = 20;       // hidden units per layer (the kernel is specialised for the paper's size)
constexpr int G = 4 * H;    // gates per layer, PyTorch order: i, f, g, o
constexpr int R = 8;        // coordinates per register block
constexpr int V = 16;       // gates per accumulator vector

// The vectorised expf/tanhf that -ffast-math selects assume finite results: an exp that overflows or a
// tanh far out gives NaN. Clamping their arguments where the float result no longer changes (e^88 is
// finite, tanh(±20) is ±1 in float) keeps every value inside that range bit for bit and saturates outside.
inline float sigmoidf(float x) { return 1.0f / (1.0f + std::exp(std::min(std::max(-x, -88.0f), 88.0f))); }
inline float tanhf_sat(float x) { return std::tanh(std::min(std::max(x, -20.0f), 20.0f)); }

// gates (R x G) = b + in (R x K) · W (K x G), blocked so that R accumulators of V gates stay in registers
// and every row of W is loaded once per block of R coordinates.
template <int K>
inline void gates(const float (&in)[R][K], const float* __restrict W, const float* __restrict b,
                  float (&g)[R][G]) {
  for (int jb = 0; jb < G; jb += V) {
    float acc[R][V];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma omp simd
      for (int l = 0; l < V; ++l) acc[r][l] = b[jb + l];
    for (int k = 0; k < K; ++k) {
      const float* w = W + k * G + jb;
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const float v = in[r][k];
#pragma omp simd
        for (int l = 0; l < V; ++l) acc[r][l] += v * w[l];
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma omp simd
      for (int l = 0; l < V; ++l) g[r][jb + l] = acc[r][l];
  }
}

// Gate pre-activations (R x G, PyTorch order i, f, g, o) as four gate-major arrays of R·H units.
inline void gate_major(const float (&g)[R][G], float* gi, float* gf, float* gg, float* go) {
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < H; ++j) {
      gi[r * H + j] = g[r][j];
      gf[r * H + j] = g[r][H + j];
      gg[r * H + j] = g[r][2 * H + j];
      go[r * H + j] = g[r][3 * H + j];
    }
}

// The cells' elementwise part for R coordinates at once, c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c'),
// on gate-major copies so that all R·H units form one vectorised loop with no scalar remainder.
inline void cell_update(const float (&g)[R][G], const float (&c_old)[R][H], float (&h_new)[R][H],
                        float (&c_new)[R][H]) {
  float gi[R * H], gf[R * H], gg[R * H], go[R * H];
  gate_major(g, gi, gf, gg, go);
  const float* co = &c_old[0][0];
  float* cn = &c_new[0][0];
  float* hn = &h_new[0][0];
#pragma omp simd
  for (int e = 0; e < R * H; ++e) {
    const float c = sigmoidf(gf[e]) * co[e] + sigmoidf(gi[e]) * tanhf_sat(gg[e]);
    cn[e] = c;
    hn[e] = sigmoidf(go[e]) * tanhf_sat(c);
  }
}

// Activations of one cell for R coordinates, gate-major, kept by the backward pass's recomputation.
struct Acts {
  float i[R * H], f[R * H], t[R * H], o[R * H], tc[R * H];
};

// As cell_update, keeping the activations for the backward pass.
inline void cell_forward(const float (&g)[R][G], const float (&c_old)[R][H], float (&h_new)[R][H],
                         float (&c_new)[R][H], Acts& a) {
  float gi[R * H], gf[R * H], gg[R * H], go[R * H];
  gate_major(g, gi, gf, gg, go);
  const float* co = &c_old[0][0];
  float* cn = &c_new[0][0];
  float* hn = &h_new[0][0];
#pragma omp simd
  for (int e = 0; e < R * H; ++e) {
    const float i = sigmoidf(gi[e]), f = sigmoidf(gf[e]), t = tanhf_sat(gg[e]), o = sigmoidf(go[e]);
    const float c = f * co[e] + i * t;
    const float tc = tanhf_sat(c);
    a.i[e] = i; a.f[e] = f; a.t[e] = t; a.o[e] = o; a.tc[e] = tc;
    cn[e] = c;
    hn[e] = o * tc;
  }
}

constexpr int IMAX = 10;    // the most first-layer inputs besides h: 2 of the gradient and up to 8 features

struct Params {
  const float *W1, *b1, *W2, *b2, *wout;
  float bout, thr, inv_p, ep, input_scale, output_scale;
  int base;            // inputs from the gradient: 2 (log/sign), 1 (scaled) or 0 (none)
  const float* extra;  // per coordinate, E further inputs (N, E) appended after them (e.g. moment features)
  int E;
};

// The first layer's inputs for one coordinate, written into in[0 .. base + E): with base 2 the log/sign
// preprocessing of the gradient x (Andrychowicz et al. 2016, App. A: log(max(|x|, e^-p)) / p, and sgn(x) if
// |x| >= e^-p else e^p x), with base 1 the raw gradient times input_scale, with base 0 nothing; then the
// coordinate's E extra inputs ex[0 .. E). The one definition the forward pass and the backward pass's
// recomputation share.
inline void first_inputs(const Params& P, float x, const float* ex, float* in) {
  if (P.base == 2) {
    const float a = std::fabs(x);
    in[0] = std::log(std::max(a, P.thr)) * P.inv_p;
    in[1] = a >= P.thr ? (x > 0 ? 1.0f : (x < 0 ? -1.0f : 0.0f)) : x * P.ep;
  } else if (P.base == 1) {
    in[0] = x * P.input_scale;
  }
  for (int e = 0; e < P.E; ++e) in[P.base + e] = ex[e];
}

// R coordinates: gradients g[R], extra inputs ex (R, E); states st[4] = h1, c1, h2, c2 as (R, H) blocks (rows R
// apart by H); writes update[R] and out[4]. Everything is read before anything is written, so out may alias st.
// I = base + E, the first layer's inputs besides h.
template <int I>
inline void block(const Params& P, const float* g, const float* ex, const float* const st[4], float* update,
                  float* const out[4]) {
  constexpr int K1 = I + H;
  float in1[R][K1], in2[R][2 * H], c1[R][H], c2[R][H];
  for (int r = 0; r < R; ++r) {
    first_inputs(P, g[r], ex + r * P.E, in1[r]);
    for (int j = 0; j < H; ++j) {
      in1[r][I + j] = st[0][r * H + j];
      c1[r][j] = st[1][r * H + j];
      in2[r][H + j] = st[2][r * H + j];
      c2[r][j] = st[3][r * H + j];
    }
  }
  float gt[R][G];
  gates<K1>(in1, P.W1, P.b1, gt);
  float h1n[R][H], c1n[R][H], h2n[R][H], c2n[R][H];
  cell_update(gt, c1, h1n, c1n);
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < H; ++j) in2[r][j] = h1n[r][j];
  gates<2 * H>(in2, P.W2, P.b2, gt);
  cell_update(gt, c2, h2n, c2n);
  for (int r = 0; r < R; ++r) {
    float acc = P.bout;
    for (int j = 0; j < H; ++j) acc += P.wout[j] * h2n[r][j];
    update[r] = acc * P.output_scale;
    for (int j = 0; j < H; ++j) {
      out[0][r * H + j] = h1n[r][j]; out[1][r * H + j] = c1n[r][j];
      out[2][r * H + j] = h2n[r][j]; out[3][r * H + j] = c2n[r][j];
    }
  }
}

// Calls F<I>(args...) for the runtime I in [1, IMAX].
#define L2O_DISPATCH_I(I, CALL)                                                                        \
  switch (I) {                                                                                         \
    case 1: CALL(1); break; case 2: CALL(2); break; case 3: CALL(3); break; case 4: CALL(4); break;    \
    case 5: CALL(5); break; case 6: CALL(6); break; case 7: CALL(7); break; case 8: CALL(8); break;    \
    case 9: CALL(9); break; case 10: CALL(10); break;                                                  \
    default: TORCH_CHECK(false, "the kernel takes 1 to ", IMAX, " first-layer inputs, got ", I);      \
  }

Params make_params(torch::Tensor W1, torch::Tensor b1, torch::Tensor W2, torch::Tensor b2, torch::Tensor wout,
                   double bout, int64_t base, double p, double input_scale, double output_scale,
                   const torch::Tensor& grad, const torch::Tensor& extra) {
  const int64_t N = grad.size(0);
  TORCH_CHECK(base >= 0 && base <= 2, "base must be 0, 1 or 2");
  TORCH_CHECK(extra.is_contiguous() && extra.dim() == 2 && extra.size(0) == N, "extra must be (N, E)");
  const int E = (int)extra.size(1), I = (int)base + E;
  TORCH_CHECK(I >= 1 && I <= IMAX, "the kernel takes 1 to ", IMAX, " first-layer inputs, got ", I);
  TORCH_CHECK(W1.size(0) == I + H, "W1 must have ", I + H, " rows for ", I, " inputs");
  return Params{W1.data_ptr<float>(), b1.data_ptr<float>(), W2.data_ptr<float>(), b2.data_ptr<float>(),
                wout.data_ptr<float>(), (float)bout, std::exp(-(float)p), 1.0f / (float)p, std::exp((float)p),
                (float)input_scale, (float)output_scale, (int)base, E ? extra.data_ptr<float>() : nullptr, E};
}


// grad (N), extra (N, E); h1, c1, h2, c2 (N, H) read; outputs written to update (N) and h1o, c1o, h2o, c2o
// (N, H), which may alias the inputs (in-place step). W1 (I+H, G), b1 (G), W2 (2H, G), b2 (G), wout (H), bout,
// with I = base + E first-layer inputs: base from the gradient (2: log/sign with p, 1: the raw gradient times
// input_scale, 0: none), then the E extra ones.
template <int I>
void forward_all(const Params& P, const float* gp, const float* const in_s[4], float* const out_s[4], float* up,
                 int64_t N) {
  const int E = P.E;
  static float none[1] = {0.0f};
  const float* xp = E ? P.extra : none;
  const int64_t full = N / R;
  at::parallel_for(0, full, 64, [&](int64_t begin, int64_t end) {
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t n0 = blk * R;
      const float* st[4];
      float* out[4];
      for (int s = 0; s < 4; ++s) { st[s] = in_s[s] + n0 * H; out[s] = out_s[s] + n0 * H; }
      block<I>(P, gp + n0, xp + n0 * E, st, up + n0, out);
    }
  });
  const int64_t n0 = full * R, rest = N - n0;
  if (rest > 0) {  // the last partial block works on zero-padded copies
    float g[R] = {}, u[R], ex[R * IMAX] = {}, buf[8][R * H] = {};
    const float* st[4];
    float* out[4];
    for (int64_t r = 0; r < rest; ++r) g[r] = gp[n0 + r];
    for (int64_t i = 0; i < rest * E; ++i) ex[i] = xp[n0 * E + i];
    for (int s = 0; s < 4; ++s) {
      for (int64_t i = 0; i < rest * H; ++i) buf[s][i] = in_s[s][n0 * H + i];
      st[s] = buf[s];
      out[s] = buf[4 + s];
    }
    block<I>(P, g, ex, st, u, out);
    for (int64_t r = 0; r < rest; ++r) up[n0 + r] = u[r];
    for (int s = 0; s < 4; ++s)
      for (int64_t i = 0; i < rest * H; ++i) out_s[s][n0 * H + i] = buf[4 + s][i];
  }
}

}  // namespace

void lstm_step(torch::Tensor grad, torch::Tensor extra, torch::Tensor h1, torch::Tensor c1, torch::Tensor h2,
               torch::Tensor c2, torch::Tensor W1, torch::Tensor b1, torch::Tensor W2, torch::Tensor b2,
               torch::Tensor wout, double bout, int64_t base, double p, double input_scale, double output_scale,
               torch::Tensor update, torch::Tensor h1o, torch::Tensor c1o, torch::Tensor h2o, torch::Tensor c2o) {
  const int64_t N = grad.size(0);
  for (const auto& t : {h1, c1, h2, c2, h1o, c1o, h2o, c2o})
    TORCH_CHECK(t.is_contiguous() && t.dim() == 2 && t.size(0) == N && t.size(1) == H, "state must be (N, 20)");
  const Params P = make_params(W1, b1, W2, b2, wout, bout, base, p, input_scale, output_scale, grad, extra);
  const float* gp = grad.data_ptr<float>();
  const float* in_s[4] = {h1.data_ptr<float>(), c1.data_ptr<float>(), h2.data_ptr<float>(), c2.data_ptr<float>()};
  float* out_s[4] = {h1o.data_ptr<float>(), c1o.data_ptr<float>(), h2o.data_ptr<float>(), c2o.data_ptr<float>()};
  float* up = update.data_ptr<float>();
#define L2O_FORWARD(K) forward_all<K>(P, gp, in_s, out_s, up, N)
  L2O_DISPATCH_I(P.base + P.E, L2O_FORWARD)
#undef L2O_FORWARD
}


namespace {

// Backward of one cell for R coordinates, from the activations the recomputation kept and the gradients
// reaching h' and c' (dh, dc_ext): dG (R x G), the gradients of the pre-activations, and dc_old.
inline void cell_backward(const Acts& a, const float (&c_old)[R][H], const float* dh, const float* dc_ext,
                          float (&dG)[R][G], float* dc_old) {
  const float* co = &c_old[0][0];
  float di[R * H], df[R * H], dg[R * H], d_o[R * H];
#pragma omp simd
  for (int e = 0; e < R * H; ++e) {
    const float i = a.i[e], f = a.f[e], t = a.t[e], o = a.o[e], tc = a.tc[e];
    const float dcc = dc_ext[e] + dh[e] * o * (1.0f - tc * tc);
    d_o[e] = dh[e] * tc * o * (1.0f - o);
    di[e] = dcc * t * i * (1.0f - i);
    dg[e] = dcc * i * (1.0f - t * t);
    df[e] = dcc * co[e] * f * (1.0f - f);
    dc_old[e] = dcc * f;
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < H; ++j) {
      dG[r][j] = di[r * H + j];
      dG[r][H + j] = df[r * H + j];
      dG[r][2 * H + j] = dg[r * H + j];
      dG[r][3 * H + j] = d_o[r * H + j];
    }
}

template <int K>
constexpr int padded() { return (K + 15) / 16 * 16; }

// dW (K x G) += in^T dG; db += Σ_r dG; din (R x K) = dG W^T, with WT = W^T padded to (G x padded<K>()).
// Each row of dW is loaded and stored once per block; din keeps R·padded<K>() accumulators in registers
// and loads every row of WT once per block (the same order of summation per element as row by row).
template <int K>
inline void linear_backward(const float (&in)[R][K], const float (&dG)[R][G], const float* __restrict WT,
                            float* __restrict dW, float* __restrict db, float (&din)[R][K]) {
  constexpr int KP = padded<K>();
#pragma omp simd
  for (int j = 0; j < G; ++j) {
    float a = db[j];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) a += dG[r][j];
    db[j] = a;
  }
  for (int k = 0; k < K; ++k) {
    float* dw = dW + k * G;
#pragma omp simd
    for (int j = 0; j < G; ++j) {
      float a = dw[j];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) a += in[r][k] * dG[r][j];
      dw[j] = a;
    }
  }
  float acc[R][KP] = {};
  for (int j = 0; j < G; ++j) {
    const float* w = WT + j * KP;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const float v = dG[r][j];
#pragma omp simd
      for (int k = 0; k < KP; ++k) acc[r][k] += v * w[k];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < K; ++k) din[r][k] = acc[r][k];
}

struct Grads {
  float dW1[(IMAX + H) * G], db1[G], dW2[2 * H * G], db2[G], dwout[H], dbout;
};

// R coordinates (gradients x, extra inputs ex): recompute the forward pass from the old state (keeping the activations), then
// back-propagate du (R) and the gradients reaching the new state (dnew[4], (R, H) blocks) into the old
// state (dold[4]) and into the weights (acc).
template <int I>
inline void block_backward(const Params& P, const float* WT1, const float* WT2, const float* x, const float* ex,
                           const float* const st[4], const float* du, const float* const dnew[4],
                           float* const dold[4], Grads& acc) {
  constexpr int K1 = I + H;
  float in1[R][K1], in2[R][2 * H], c1[R][H], c2[R][H];
  for (int r = 0; r < R; ++r) {
    first_inputs(P, x[r], ex + r * P.E, in1[r]);
    for (int j = 0; j < H; ++j) {
      in1[r][I + j] = st[0][r * H + j];
      c1[r][j] = st[1][r * H + j];
      in2[r][H + j] = st[2][r * H + j];
      c2[r][j] = st[3][r * H + j];
    }
  }
  float g[R][G], h1n[R][H], c1n[R][H], h2n[R][H], c2n[R][H];
  Acts a1, a2;
  gates<K1>(in1, P.W1, P.b1, g);
  cell_forward(g, c1, h1n, c1n, a1);
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < H; ++j) in2[r][j] = h1n[r][j];
  gates<2 * H>(in2, P.W2, P.b2, g);
  cell_forward(g, c2, h2n, c2n, a2);
  // output layer
  float dh2[R * H];
  for (int r = 0; r < R; ++r) {
    const float d = du[r] * P.output_scale;
    acc.dbout += d;
    for (int j = 0; j < H; ++j) {
      acc.dwout[j] += d * h2n[r][j];
      dh2[r * H + j] = dnew[2][r * H + j] + d * P.wout[j];
    }
  }
  float dG[R][G], din2[R][2 * H];
  cell_backward(a2, c2, dh2, dnew[3], dG, dold[3]);
  linear_backward<2 * H>(in2, dG, WT2, acc.dW2, acc.db2, din2);
  float dh1[R * H];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < H; ++j) {
      dh1[r * H + j] = dnew[0][r * H + j] + din2[r][j];
      dold[2][r * H + j] = din2[r][H + j];
    }
  float din1[R][K1];
  cell_backward(a1, c1, dh1, dnew[1], dG, dold[1]);
  linear_backward<K1>(in1, dG, WT1, acc.dW1, acc.db1, din1);
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < H; ++j) dold[0][r * H + j] = din1[r][I + j];
}

// The backward pass over all N coordinates, for I first-layer inputs; weight gradients into total.
template <int I>
void backward_all(const Params& P, const float* WT1, const float* WT2, const float* gp, const float* dup,
                  const float* const st_s[4], const float* const dn_s[4], float* const do_s[4], int64_t N,
                  Grads& total) {
  const int E = P.E;
  static float none[1] = {0.0f};
  const float* xp = E ? P.extra : none;
  // weight gradients: one partial sum per fixed chunk of blocks, added up in chunk order, so that the
  // result does not depend on the number of threads or their scheduling
  const int64_t blocks = (N + R - 1) / R;
  constexpr int64_t CHUNK = 256;
  const int64_t chunks = (blocks + CHUNK - 1) / CHUNK;
  std::vector<Grads> partial(chunks);
  std::memset(partial.data(), 0, chunks * sizeof(Grads));
  at::parallel_for(0, chunks, 1, [&](int64_t cbegin, int64_t cend) {
    for (int64_t ch = cbegin; ch < cend; ++ch) {
      Grads& acc = partial[ch];
      for (int64_t blk = ch * CHUNK; blk < std::min(blocks, (ch + 1) * CHUNK); ++blk) {
        const int64_t n0 = blk * R;
        const int64_t rest = std::min<int64_t>(R, N - n0);
        float xg[R] = {}, dug[R] = {}, ex[R * IMAX] = {};
        const float* st[4];
        const float* dn[4];
        float* dout[4];
        const bool full = rest == R;
        float buf[12][R * H];
        for (int64_t r = 0; r < rest; ++r) { xg[r] = gp[n0 + r]; dug[r] = dup[n0 + r]; }
        for (int64_t i = 0; i < rest * E; ++i) ex[i] = xp[n0 * E + i];
        if (full) {
          for (int s = 0; s < 4; ++s) { st[s] = st_s[s] + n0 * H; dn[s] = dn_s[s] + n0 * H; dout[s] = do_s[s] + n0 * H; }
        } else {  // the last partial block works on zero-padded copies
          std::memset(buf, 0, sizeof(buf));
          for (int s = 0; s < 4; ++s) {
            for (int64_t i = 0; i < rest * H; ++i) { buf[s][i] = st_s[s][n0 * H + i]; buf[4 + s][i] = dn_s[s][n0 * H + i]; }
            st[s] = buf[s]; dn[s] = buf[4 + s]; dout[s] = buf[8 + s];
          }
        }
        block_backward<I>(P, WT1, WT2, xg, ex, st, dug, dn, dout, acc);
        if (!full)
          for (int s = 0; s < 4; ++s)
            for (int64_t i = 0; i < rest * H; ++i) do_s[s][n0 * H + i] = buf[8 + s][i];
      }
    }
  });
  float* t = reinterpret_cast<float*>(&total);
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const float* a = reinterpret_cast<const float*>(&partial[ch]);
    for (size_t i = 0; i < sizeof(Grads) / sizeof(float); ++i) t[i] += a[i];
  }
}

}  // namespace

// Backward of lstm_step with respect to the old state and the weights (the gradient and the extra inputs are
// constants). du (N), dh1n, dc1n, dh2n, dc2n (N, H): gradients reaching the outputs. Writes dh1, dc1, dh2, dc2
// (N, H) and returns {dW1, db1, dW2, db2, dwout, dbout}.
std::vector<torch::Tensor> lstm_step_backward(
    torch::Tensor grad, torch::Tensor extra, torch::Tensor h1, torch::Tensor c1, torch::Tensor h2, torch::Tensor c2,
    torch::Tensor W1, torch::Tensor b1, torch::Tensor W2, torch::Tensor b2, torch::Tensor wout, double bout,
    int64_t base, double p, double input_scale, double output_scale, torch::Tensor du, torch::Tensor dh1n,
    torch::Tensor dc1n, torch::Tensor dh2n, torch::Tensor dc2n, torch::Tensor dh1, torch::Tensor dc1,
    torch::Tensor dh2, torch::Tensor dc2) {
  const int64_t N = grad.size(0);
  for (const auto& t : {h1, c1, h2, c2, dh1n, dc1n, dh2n, dc2n, dh1, dc1, dh2, dc2})
    TORCH_CHECK(t.is_contiguous() && t.dim() == 2 && t.size(0) == N && t.size(1) == H, "state must be (N, 20)");
  const Params P = make_params(W1, b1, W2, b2, wout, bout, base, p, input_scale, output_scale, grad, extra);
  const float* gp = grad.data_ptr<float>();
  const float* dup = du.data_ptr<float>();
  const float* st_s[4] = {h1.data_ptr<float>(), c1.data_ptr<float>(), h2.data_ptr<float>(), c2.data_ptr<float>()};
  const float* dn_s[4] = {dh1n.data_ptr<float>(), dc1n.data_ptr<float>(), dh2n.data_ptr<float>(), dc2n.data_ptr<float>()};
  float* do_s[4] = {dh1.data_ptr<float>(), dc1.data_ptr<float>(), dh2.data_ptr<float>(), dc2.data_ptr<float>()};
  // W^T, padded, for din = dG W^T
  const int I = P.base + P.E, K1 = I + H;
  const int KP1 = (K1 + 15) / 16 * 16, KP2 = padded<2 * H>();
  std::vector<float> WT1(G * KP1, 0.0f), WT2(G * KP2, 0.0f);
  for (int k = 0; k < K1; ++k) for (int j = 0; j < G; ++j) WT1[j * KP1 + k] = P.W1[k * G + j];
  for (int k = 0; k < 2 * H; ++k) for (int j = 0; j < G; ++j) WT2[j * KP2 + k] = P.W2[k * G + j];
  auto total = std::make_unique<Grads>();
  std::memset(total.get(), 0, sizeof(Grads));
#define L2O_BACKWARD(K) backward_all<K>(P, WT1.data(), WT2.data(), gp, dup, st_s, dn_s, do_s, N, *total)
  L2O_DISPATCH_I(I, L2O_BACKWARD)
#undef L2O_BACKWARD
  auto opts = torch::TensorOptions().dtype(torch::kFloat32);
  auto dW1 = torch::from_blob(total->dW1, {K1, G}, opts).clone();
  auto db1 = torch::from_blob(total->db1, {G}, opts).clone();
  auto dW2 = torch::from_blob(total->dW2, {2 * H, G}, opts).clone();
  auto db2 = torch::from_blob(total->db2, {G}, opts).clone();
  auto dwout = torch::from_blob(total->dwout, {H}, opts).clone();
  auto dbout = torch::full({1}, total->dbout, opts);
  return {dW1, db1, dW2, db2, dwout, dbout};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lstm_step", &lstm_step, "fused coordinatewise LSTM step");
  m.def("lstm_step_backward", &lstm_step_backward, "backward of the fused LSTM step");
}
