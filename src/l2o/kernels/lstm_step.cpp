// Fused coordinatewise LSTM step (no autograd): preprocessing, two LSTM cells and the output layer for
// every coordinate in one pass, so each coordinate's 80 floats of state are read once and written once
// and the gates never leave the registers/L1 cache. Coordinates are independent; blocks of them run in
// parallel. Built on first use (torch.utils.cpp_extension) and cached; see l2o/kernels/__init__.py.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>

namespace {

constexpr int H = 20;       // hidden units per layer (the kernel is specialised for the paper's size)
constexpr int G = 4 * H;    // gates per layer, PyTorch order: i, f, g, o
constexpr int R = 8;        // coordinates per register block
constexpr int V = 16;       // gates per accumulator vector

inline float sigmoidf(float x) { return 1.0f / (1.0f + std::exp(-x)); }

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

// The cells' elementwise part for R coordinates at once, c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c'),
// on gate-major copies so that all R·H units form one vectorised loop with no scalar remainder.
inline void cell_update(const float (&g)[R][G], const float (&c_old)[R][H], float (&h_new)[R][H],
                        float (&c_new)[R][H]) {
  float gi[R * H], gf[R * H], gg[R * H], go[R * H];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < H; ++j) {
      gi[r * H + j] = g[r][j];
      gf[r * H + j] = g[r][H + j];
      gg[r * H + j] = g[r][2 * H + j];
      go[r * H + j] = g[r][3 * H + j];
    }
  const float* co = &c_old[0][0];
  float* cn = &c_new[0][0];
  float* hn = &h_new[0][0];
#pragma omp simd
  for (int e = 0; e < R * H; ++e) {
    const float c = sigmoidf(gf[e]) * co[e] + sigmoidf(gi[e]) * std::tanh(gg[e]);
    cn[e] = c;
    hn[e] = sigmoidf(go[e]) * std::tanh(c);
  }
}

struct Params {
  const float *W1, *b1, *W2, *b2, *wout;
  float bout, thr, inv_p, ep, input_scale, output_scale;
  bool preprocess;
};

// R coordinates: gradients g[R]; states st[4] = h1, c1, h2, c2 as (R, H) blocks (rows R apart by H);
// writes update[R] and out[4]. Everything is read before anything is written, so out may alias st.
inline void block(const Params& P, const float* g, const float* const st[4], float* update, float* const out[4]) {
  float in1p[R][2 + H], in1r[R][1 + H], in2[R][2 * H], c1[R][H], c2[R][H];
  for (int r = 0; r < R; ++r) {
    const float x = g[r];
    if (P.preprocess) {
      const float a = std::fabs(x);
      in1p[r][0] = std::log(std::max(a, P.thr)) * P.inv_p;
      in1p[r][1] = a >= P.thr ? (x > 0 ? 1.0f : (x < 0 ? -1.0f : 0.0f)) : x * P.ep;
      for (int j = 0; j < H; ++j) in1p[r][2 + j] = st[0][r * H + j];
    } else {
      in1r[r][0] = x * P.input_scale;
      for (int j = 0; j < H; ++j) in1r[r][1 + j] = st[0][r * H + j];
    }
    for (int j = 0; j < H; ++j) {
      c1[r][j] = st[1][r * H + j];
      in2[r][H + j] = st[2][r * H + j];
      c2[r][j] = st[3][r * H + j];
    }
  }
  float gt[R][G];
  if (P.preprocess) gates<2 + H>(in1p, P.W1, P.b1, gt); else gates<1 + H>(in1r, P.W1, P.b1, gt);
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

}  // namespace

// grad (N); h1, c1, h2, c2 (N, H) read; outputs written to update (N) and h1o, c1o, h2o, c2o (N, H),
// which may alias the inputs (in-place step). W1 (I+H, G), b1 (G), W2 (2H, G), b2 (G), wout (H), bout.
// preprocess: log/sign with p (I = 2) or the raw gradient times input_scale (I = 1).
void lstm_step(torch::Tensor grad, torch::Tensor h1, torch::Tensor c1, torch::Tensor h2, torch::Tensor c2,
               torch::Tensor W1, torch::Tensor b1, torch::Tensor W2, torch::Tensor b2, torch::Tensor wout,
               double bout, bool preprocess, double p, double input_scale, double output_scale,
               torch::Tensor update, torch::Tensor h1o, torch::Tensor c1o, torch::Tensor h2o, torch::Tensor c2o) {
  const int64_t N = grad.size(0);
  for (const auto& t : {h1, c1, h2, c2, h1o, c1o, h2o, c2o})
    TORCH_CHECK(t.is_contiguous() && t.dim() == 2 && t.size(0) == N && t.size(1) == H, "state must be (N, 20)");
  Params P{W1.data_ptr<float>(), b1.data_ptr<float>(), W2.data_ptr<float>(), b2.data_ptr<float>(),
           wout.data_ptr<float>(), (float)bout, std::exp(-(float)p), 1.0f / (float)p, std::exp((float)p),
           (float)input_scale, (float)output_scale, preprocess};
  const float* gp = grad.data_ptr<float>();
  const float* in_s[4] = {h1.data_ptr<float>(), c1.data_ptr<float>(), h2.data_ptr<float>(), c2.data_ptr<float>()};
  float* out_s[4] = {h1o.data_ptr<float>(), c1o.data_ptr<float>(), h2o.data_ptr<float>(), c2o.data_ptr<float>()};
  float* up = update.data_ptr<float>();
  const int64_t full = N / R;
  at::parallel_for(0, full, 64, [&](int64_t begin, int64_t end) {
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t n0 = blk * R;
      const float* st[4];
      float* out[4];
      for (int s = 0; s < 4; ++s) { st[s] = in_s[s] + n0 * H; out[s] = out_s[s] + n0 * H; }
      block(P, gp + n0, st, up + n0, out);
    }
  });
  const int64_t n0 = full * R, rest = N - n0;
  if (rest > 0) {  // the last partial block works on zero-padded copies
    float g[R] = {}, u[R], buf[8][R * H] = {};
    const float* st[4];
    float* out[4];
    for (int64_t r = 0; r < rest; ++r) g[r] = gp[n0 + r];
    for (int s = 0; s < 4; ++s) {
      for (int64_t i = 0; i < rest * H; ++i) buf[s][i] = in_s[s][n0 * H + i];
      st[s] = buf[s];
      out[s] = buf[4 + s];
    }
    block(P, g, st, u, out);
    for (int64_t r = 0; r < rest; ++r) up[n0 + r] = u[r];
    for (int s = 0; s < 4; ++s)
      for (int64_t i = 0; i < rest * H; ++i) out_s[s][n0 * H + i] = buf[4 + s][i];
  }
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("lstm_step", &lstm_step, "fused coordinatewise LSTM step"); }
