/* mx_model_count_flops against totals worked out by hand from the
 * architectures (python/mixreg/torch.py's modules): 2 FLOPs per multiply-add
 * of each convolution (out_channels x in_channels x kh x kw per output pixel)
 * and dense layer (in x out); a training step adds backward weights and
 * backward data, each the forward's cost, except backward data of the layer
 * reading the image. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "mixreg/model.h"

static mx_model *make(const char *arch, size_t c, size_t h, size_t w, size_t classes, mx_backend backend)
{
    mx_model_spec spec = {.in_channels = c, .in_height = h, .in_width = w, .num_classes = classes,
                          .backend = backend};
    snprintf(spec.arch, sizeof spec.arch, "%s", arch);
    if (!strcmp(arch, "mlp")) {
        spec.num_hidden = 2;
        spec.hidden[0] = spec.hidden[1] = 512;
    }
    mx_model *m = NULL;
    CHECK_OK(mx_model_create(&spec, 1, &m));
    return m;
}

static void expect(const char *arch, size_t c, size_t h, size_t w, size_t classes, double forward_macs,
                   double first_layer_macs)
{
    const mx_backend backends[] = {MX_BACKEND_REF, MX_BACKEND_CPU};
    for (size_t b = 0; b < 2; b++) {
        mx_model *m = make(arch, c, h, w, classes, backends[b]);
        if (!m) continue;
        const mx_model_flops f = mx_model_count_flops(m);
        printf("  %-8s %zux%zux%zu %s: forward %.0f, training step %.0f FLOPs a sample\n", arch, c, h, w,
               mx_backend_name(backends[b]), f.forward, f.train_step);
        CHECK(f.forward == 2 * forward_macs);
        CHECK(f.train_step == 2 * (3 * forward_macs - first_layer_macs));
        CHECK(f.forward == mx_model_forward_flops(m));
        mx_model_free(m);
    }
}

int main(void)
{
    /* 784-512-512-10; the first layer's backward data is skipped. */
    expect("mlp", 1, 28, 28, 10, 784 * 512 + 512 * 512 + 512 * 10, 784 * 512);
    /* logreg: one dense layer, which reads the image: forward + backward weights. */
    expect("logreg", 1, 28, 28, 10, 784 * 10, 784 * 10);

    /* lenet5 on 1x28x28: conv 6x1x5x5 (pad 2) on a 28x28 output, 2x2 pool,
     * conv 16x6x5x5 on a 10x10 output, pool, 400-120-84-10:
     * 117,600 + 240,000 + 48,000 + 10,080 + 840 = 416,520 multiply-adds. */
    expect("lenet5", 1, 28, 28, 10, 416520, 150 * 784);

    /* resnet20 on 3x32x32: the stem 16x3x3x3 on 32x32 (442,368); stage 1:
     * 6 convs 16x16x3x3 on 32x32 (6 x 2,359,296); stage 2: 32x16x3x3 stride 2
     * on 16x16 (1,179,648), the 1x1 shortcut 32x16 on 16x16 (131,072), 5 convs
     * 32x32x3x3 on 16x16 (5 x 2,359,296); stage 3 likewise 1,179,648 + 131,072
     * + 5 x 2,359,296 on 8x8; the classifier 64x10 (640): 40,813,184. */
    const double stem = 16.0 * 27 * 1024;
    const double resnet20 = stem + 6 * 2359296.0 + 1179648 + 131072 + 5 * 2359296.0 + 1179648 + 131072 +
                            5 * 2359296.0 + 640;
    CHECK(resnet20 == 40813184);
    expect("resnet20", 3, 32, 32, 10, resnet20, stem);
    CHECK_DONE();
}
