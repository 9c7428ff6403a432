/* adze_mcu: the reference integer interpreter (see adze_mcu.h). */
#include "adze_mcu.h"

#include <math.h>
#include <string.h>

static int code_at(const adze_layer *l, long i) {
  if (l->weight_bits > 4) return l->weight[i];
  {
    const unsigned byte = (unsigned)(uint8_t)l->weight[i >> 1];
    const int v = (int)((i & 1) ? byte >> 4 : byte & 15u);
    return v >= 8 ? v - 16 : v;
  }
}

static float scale_of(const adze_layer *l, int c) { return l->per_channel ? l->weight_scale[c] : l->weight_scale[0]; }

/* As torch.fake_quantize_per_tensor_affine: clamp(round_half_even(x * (1 / s)) + z, 0, 255). */
static void quantize(const float *x, long n, float scale, int zero_point, uint8_t *q) {
  const float inv = 1.0f / scale;
  long i;
  for (i = 0; i < n; ++i) {
    float v = nearbyintf(x[i] * inv) + (float)zero_point;
    q[i] = (uint8_t)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
  }
}

/* Convolution and linear (a 1x1 convolution of a 1x1 image). */
static void conv(const adze_layer *l, const float *x, uint8_t *q, float *y) {
  const int in_per_group = l->in_c / l->groups, out_per_group = l->out_c / l->groups;
  const int quantized = l->act_bits == 8;
  int oc, oh, ow, ic, kh, kw;
  if (quantized) quantize(x, (long)l->in_c * l->in_h * l->in_w, l->act_scale, l->act_zero_point, q);
  for (oc = 0; oc < l->out_c; ++oc) {
    const int g = oc / out_per_group;
    const float scale = scale_of(l, oc) * (quantized ? l->act_scale : 1.0f);
    const float bias = l->bias ? l->bias[oc] : 0.0f;
    for (oh = 0; oh < l->out_h; ++oh)
      for (ow = 0; ow < l->out_w; ++ow) {
        int32_t acc = 0;
        float facc = 0.0f;
        for (ic = 0; ic < in_per_group; ++ic) {
          const long plane = (long)(g * in_per_group + ic) * l->in_h * l->in_w;
          const long wbase = ((long)oc * in_per_group + ic) * l->kernel_h * l->kernel_w;
          for (kh = 0; kh < l->kernel_h; ++kh) {
            const int ih = oh * l->stride_h - l->pad_h + kh * l->dilation_h;
            if (ih < 0 || ih >= l->in_h) continue;
            for (kw = 0; kw < l->kernel_w; ++kw) {
              const int iw = ow * l->stride_w - l->pad_w + kw * l->dilation_w;
              const int w = code_at(l, wbase + (long)kh * l->kernel_w + kw);
              if (iw < 0 || iw >= l->in_w) continue;
              if (quantized)
                acc += ((int32_t)q[plane + (long)ih * l->in_w + iw] - l->act_zero_point) * w;
              else
                facc += x[plane + (long)ih * l->in_w + iw] * (float)w;
            }
          }
        }
        y[((long)oc * l->out_h + oh) * l->out_w + ow] = (quantized ? (float)acc : facc) * scale + bias;
      }
  }
}

static void maxpool(const adze_layer *l, const float *x, float *y) {
  int c, oh, ow, kh, kw;
  for (c = 0; c < l->out_c; ++c)
    for (oh = 0; oh < l->out_h; ++oh)
      for (ow = 0; ow < l->out_w; ++ow) {
        float best = -INFINITY;
        for (kh = 0; kh < l->kernel_h; ++kh)
          for (kw = 0; kw < l->kernel_w; ++kw) {
            const int ih = oh * l->stride_h - l->pad_h + kh * l->dilation_h;
            const int iw = ow * l->stride_w - l->pad_w + kw * l->dilation_w;
            if (ih < 0 || ih >= l->in_h || iw < 0 || iw >= l->in_w) continue;
            if (x[((long)c * l->in_h + ih) * l->in_w + iw] > best) best = x[((long)c * l->in_h + ih) * l->in_w + iw];
          }
        y[((long)c * l->out_h + oh) * l->out_w + ow] = best;
      }
}

float *adze_run(const adze_layer *layers, int count, const float *input, int input_size, float *buf_a, float *buf_b,
                uint8_t *qbuf) {
  float *x = buf_a, *y = buf_b, *t;
  int i;
  long j, n;
  memcpy(x, input, (size_t)input_size * sizeof(float));
  for (i = 0; i < count; ++i) {
    const adze_layer *l = &layers[i];
    n = (long)l->out_c * l->out_h * l->out_w;
    switch (l->op) {
      case ADZE_CONV2D:
      case ADZE_LINEAR:
        conv(l, x, qbuf, y);
        break;
      case ADZE_MAXPOOL2D:
        maxpool(l, x, y);
        break;
      case ADZE_GLOBAL_AVGPOOL: {
        const long hw = (long)l->in_h * l->in_w;
        int c;
        for (c = 0; c < l->in_c; ++c) {
          float sum = 0.0f;
          for (j = 0; j < hw; ++j) sum += x[c * hw + j];
          y[c] = sum / (float)hw;
        }
        break;
      }
      case ADZE_BIAS:
        for (j = 0; j < n; ++j) x[j] += l->bias[j / ((long)l->out_h * l->out_w)];
        continue;
      case ADZE_RELU:
        for (j = 0; j < n; ++j) x[j] = x[j] > 0.0f ? x[j] : 0.0f;
        continue;
      case ADZE_FAKE_QUANT: {
        const float inv = 1.0f / l->act_scale, z = (float)l->act_zero_point;
        for (j = 0; j < n; ++j) {
          float v = nearbyintf(x[j] * inv) + z;
          v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
          x[j] = (v - z) * l->act_scale;
        }
        continue;
      }
      default:
        return 0;
    }
    t = x;
    x = y;
    y = t;
  }
  return x;
}
