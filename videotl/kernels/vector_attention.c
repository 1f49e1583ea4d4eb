/*
 * Vector attention (Ryoo et al. 2021, eq. 2) on the CPU, one channel at a time.
 *
 * For every channel c the attention logits are the outer product q_i * k_j of two vectors, so
 * the row maximum is q_i * max_j k_j or q_i * min_j k_j and a stable softmax needs no extra pass
 * over the N x M logits. Each pass evaluates exp once per logit and keeps everything in
 * registers: nothing of size N x M is ever stored.
 *
 * Layout: channel-major and contiguous. q, y, lognorm, g, dq: [channels, n]; k, v, dk, dv:
 * [channels, m]. All float32.
 *
 *   forward:  y_i = sum_j p_ij v_j,  p_ij = exp(q_i k_j - top_i - lognorm_i),
 *             top_i = max_j q_i k_j,  lognorm_i = log sum_j exp(q_i k_j - top_i)
 *   backward: dv_j = sum_i p_ij g_i
 *             ds_ij = p_ij g_i (v_j - y_i),  dq_i = sum_j ds_ij k_j,  dk_j = sum_i ds_ij q_i
 *
 * Built at first use by videotl/kernels/build.py with the machine's C compiler; the vector types
 * are GCC/Clang extensions, so no instruction-set intrinsics are needed.
 */

#include <math.h>
#include <pthread.h>
#include <string.h>

#define LANES 8
typedef float vf __attribute__((vector_size(4 * LANES)));
typedef int vi __attribute__((vector_size(4 * LANES)));

#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693145751953125f
#define LN2_LO 1.42860682030941723212e-6f
#define ROUNDER 12582912.0f /* 1.5 * 2^23: t = x + ROUNDER holds round(x) in its low bits */
#define LOWEST (-87.0f)     /* exp(-87) is the smallest power this code builds from bits */
#define MAX_THREADS 256

static inline vf splat(float x) { return (vf){x, x, x, x, x, x, x, x}; }

static inline vf load(const float *p) {
    vf x;
    memcpy(&x, p, sizeof x);
    return x;
}

static inline void store(float *p, vf x) { memcpy(p, &x, sizeof x); }

static inline float lane_sum(vf x) {
    float total = 0.0f;
    for (int lane = 0; lane < LANES; ++lane) total += x[lane];
    return total;
}

/* exp(x) for LOWEST <= x <= 0 (relative error about 1e-7): x = n ln2 + r with |r| <= ln2 / 2,
 * exp(r) by its degree-6 Taylor polynomial, 2^n written into the exponent bits. */
static inline vf exp_in_range(vf x) {
    vf t = x * LOG2E + ROUNDER;
    vf n = t - ROUNDER;
    vf r = (x - n * LN2_HI) - n * LN2_LO;
    vf p = splat(1.0f / 720.0f);
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    vi scale = ((vi)t - ((vi)splat(ROUNDER) - 127)) << 23;
    return p * (vf)scale;
}

/* exp(x) for x <= 0; arguments below LOWEST give exp(LOWEST), which is below float32's
 * resolution next to the row's largest term, exp(0) = 1. */
static inline vf exp_clamped(vf x) {
    vi low = x < LOWEST;
    x = (vf)(((vi)x & ~low) | ((vi)splat(LOWEST) & low));
    return exp_in_range(x);
}

static inline float exp_scalar(float x) { return exp_clamped(splat(x))[0]; }

/* Whether every argument q * k_j - shift of a row stays within [LOWEST, 0] up to rounding. */
static inline int in_range(float q, float kmax, float kmin, float extra) {
    return fabsf(q) * (kmax - kmin) + extra < -LOWEST - 1.0f;
}

/* The largest logit of a row, q * kmax or q * kmin. */
static inline float row_top(float q, float kmax, float kmin) {
    return q >= 0.0f ? q * kmax : q * kmin;
}

static void forward_channel(const float *q, const float *k, const float *v, float *y,
                            float *lognorm, long n, long m) {
    float kmax = k[0], kmin = k[0];
    for (long j = 1; j < m; ++j) {
        kmax = k[j] > kmax ? k[j] : kmax;
        kmin = k[j] < kmin ? k[j] : kmin;
    }
    const long body = m - m % LANES;
    for (long i = 0; i < n; ++i) {
        const float qi = q[i];
        const float top = row_top(qi, kmax, kmin);
        vf total = splat(0.0f), weighted = splat(0.0f);
        if (in_range(qi, kmax, kmin, 0.0f)) {
            for (long j = 0; j < body; j += LANES) {
                vf e = exp_in_range(qi * load(k + j) - top);
                total += e;
                weighted += e * load(v + j);
            }
        } else {
            for (long j = 0; j < body; j += LANES) {
                vf e = exp_clamped(qi * load(k + j) - top);
                total += e;
                weighted += e * load(v + j);
            }
        }
        float row_total = lane_sum(total), row_weighted = lane_sum(weighted);
        for (long j = body; j < m; ++j) {
            float e = exp_scalar(qi * k[j] - top);
            row_total += e;
            row_weighted += e * v[j];
        }
        y[i] = row_weighted / row_total;
        lognorm[i] = logf(row_total);
    }
}

/* One query row's contribution to dq_i, dk and dv; EXP is exp_in_range or exp_clamped. */
#define BACKWARD_ROW(EXP)                                                   \
    for (long j = 0; j < body; j += LANES) {                                \
        vf kj = load(k + j);                                                \
        vf pg = EXP((qi * kj - top) - li) * gi;                             \
        vf ds = pg * (load(v + j) - yi);                                    \
        dq_lanes += ds * kj;                                                \
        store(dk + j, load(dk + j) + ds * qi);                              \
        store(dv + j, load(dv + j) + pg);                                   \
    }

static void backward_channel(const float *q, const float *k, const float *v, const float *y,
                             const float *lognorm, const float *g, float *dq, float *dk,
                             float *dv, long n, long m) {
    float kmax = k[0], kmin = k[0];
    for (long j = 0; j < m; ++j) {
        kmax = k[j] > kmax ? k[j] : kmax;
        kmin = k[j] < kmin ? k[j] : kmin;
        dk[j] = 0.0f;
        dv[j] = 0.0f;
    }
    const float log_m = logf((float)m);
    const long body = m - m % LANES;
    for (long i = 0; i < n; ++i) {
        const float qi = q[i], li = lognorm[i], gi = g[i], yi = y[i];
        const float top = row_top(qi, kmax, kmin);
        vf dq_lanes = splat(0.0f);
        /* 0 <= lognorm_i <= log(m). */
        if (in_range(qi, kmax, kmin, log_m)) {
            BACKWARD_ROW(exp_in_range)
        } else {
            BACKWARD_ROW(exp_clamped)
        }
        float dqi = lane_sum(dq_lanes);
        for (long j = body; j < m; ++j) {
            float pg = exp_scalar((qi * k[j] - top) - li) * gi;
            float ds = pg * (v[j] - yi);
            dqi += ds * k[j];
            dk[j] += ds * qi;
            dv[j] += pg;
        }
        dq[i] = dqi;
    }
}

typedef struct {
    const float *q, *k, *v, *y, *lognorm, *g;
    float *out_y, *out_lognorm, *dq, *dk, *dv;
    long n, m, first, last;
} Work;

static void *forward_work(void *arg) {
    Work *w = (Work *)arg;
    for (long c = w->first; c < w->last; ++c)
        forward_channel(w->q + c * w->n, w->k + c * w->m, w->v + c * w->m, w->out_y + c * w->n,
                        w->out_lognorm + c * w->n, w->n, w->m);
    return NULL;
}

static void *backward_work(void *arg) {
    Work *w = (Work *)arg;
    for (long c = w->first; c < w->last; ++c)
        backward_channel(w->q + c * w->n, w->k + c * w->m, w->v + c * w->m, w->y + c * w->n,
                         w->lognorm + c * w->n, w->g + c * w->n, w->dq + c * w->n,
                         w->dk + c * w->m, w->dv + c * w->m, w->n, w->m);
    return NULL;
}

/* Splits the channels into `threads` contiguous ranges, one thread each (the caller's included);
 * a range whose thread cannot be started runs on the caller. */
static void run_parallel(void *(*work)(void *), Work base, long channels, int threads) {
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    Work parts[MAX_THREADS];
    threads = threads < 1 ? 1 : (threads > MAX_THREADS ? MAX_THREADS : threads);
    if (threads > channels) threads = channels > 0 ? (int)channels : 1;
    for (int t = 0; t < threads; ++t) {
        parts[t] = base;
        parts[t].first = channels * t / threads;
        parts[t].last = channels * (t + 1) / threads;
    }
    for (int t = 1; t < threads; ++t) {
        started[t] = pthread_create(&ids[t], NULL, work, &parts[t]) == 0;
        if (!started[t]) work(&parts[t]);
    }
    work(&parts[0]);
    for (int t = 1; t < threads; ++t)
        if (started[t]) pthread_join(ids[t], NULL);
}

void videotl_vector_attention_forward(const float *q, const float *k, const float *v, float *y,
                                      float *lognorm, long channels, long n, long m,
                                      int threads) {
    Work w = {0};
    w.q = q, w.k = k, w.v = v, w.out_y = y, w.out_lognorm = lognorm, w.n = n, w.m = m;
    run_parallel(forward_work, w, channels, threads);
}

void videotl_vector_attention_backward(const float *q, const float *k, const float *v,
                                       const float *y, const float *lognorm, const float *g,
                                       float *dq, float *dk, float *dv, long channels, long n,
                                       long m, int threads) {
    Work w = {0};
    w.q = q, w.k = k, w.v = v, w.y = y, w.lognorm = lognorm, w.g = g;
    w.dq = dq, w.dk = dk, w.dv = dv, w.n = n, w.m = m;
    run_parallel(backward_work, w, channels, threads);
}
