/* adze_mcu: a reference integer interpreter for microcontroller-class targets (C99, no allocation).
 *
 * A model is an array of layer descriptors run in order on one activation, batch 1, NCHW float32 between
 * layers. Convolutions and linear layers multiply integer weight codes: with act_bits 8 their input is first
 * quantized to uint8 (per tensor, act_scale / act_zero_point) and the products accumulate in int32, then
 * acc * act_scale * weight_scale[c] + bias[c] gives the float output; without, the float input is multiplied
 * by the codes and scaled the same way. model.h (written by `adze export --format c-header`) holds the
 * descriptors, the weights and the buffer sizes. */
#ifndef ADZE_MCU_H
#define ADZE_MCU_H

#include <stdint.h>

enum adze_op {
  ADZE_CONV2D = 1,    /* weight [out_c][in_c / groups][kernel_h][kernel_w] */
  ADZE_LINEAR = 2,    /* weight [out_c][in_c]; in_h = in_w = out_h = out_w = 1 */
  ADZE_BIAS = 3,      /* in place: x[c][h][w] += bias[c] */
  ADZE_RELU = 4,      /* in place */
  ADZE_MAXPOOL2D = 5, /* kernel, stride, pad (padding never wins), dilation */
  ADZE_GLOBAL_AVGPOOL = 6,
  ADZE_FAKE_QUANT = 7 /* in place: x quantized to act_scale / act_zero_point (uint8) and back, as ATen does */
};

typedef struct {
  int op;
  int in_c, in_h, in_w, out_c, out_h, out_w;
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups;
  int weight_bits;           /* 8: one int8 code per byte; 4 (and 2, 3): two codes per byte, low nibble first */
  const int8_t *weight;      /* codes in the weight's own layout */
  const float *weight_scale; /* per output channel, or one for the whole tensor */
  int per_channel;
  const float *bias; /* out_c values, or 0 */
  int act_bits;      /* 8: quantize the input first; 0: float input */
  float act_scale;
  int act_zero_point;
} adze_layer;

/* Runs `count` layers on `input` (input_size floats). buf_a and buf_b each hold the largest activation
 * (ADZE_BUFFER_FLOATS), qbuf the largest quantized input (ADZE_QBUFFER_BYTES). Returns the buffer that holds
 * the output. */
float *adze_run(const adze_layer *layers, int count, const float *input, int input_size, float *buf_a, float *buf_b,
                uint8_t *qbuf);

#endif
