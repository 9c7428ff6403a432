/* A host harness for the exported model: reads samples (ADZE_INPUT_SIZE float32 each, native byte order) from
 * standard input until it ends and writes each output (ADZE_OUTPUT_SIZE float32) to standard output.
 * Build: cc -std=c99 -O2 -o model adze_host_main.c adze_mcu.c -lm */
#include <stdio.h>

#include "adze_mcu.h"
#include "model.h"

static float input[ADZE_INPUT_SIZE];
static float buf_a[ADZE_BUFFER_FLOATS], buf_b[ADZE_BUFFER_FLOATS];
static uint8_t qbuf[ADZE_QBUFFER_BYTES];

int main(void) {
  while (fread(input, sizeof(float), ADZE_INPUT_SIZE, stdin) == ADZE_INPUT_SIZE) {
    const float *out = adze_run(adze_model_layers, ADZE_MODEL_LAYERS, input, ADZE_INPUT_SIZE, buf_a, buf_b, qbuf);
    if (!out || fwrite(out, sizeof(float), ADZE_OUTPUT_SIZE, stdout) != ADZE_OUTPUT_SIZE) return 1;
  }
  return 0;
}
