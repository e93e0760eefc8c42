/* The convolutional architectures, as graphs of reference layers. Parameter
 * and buffer names are the PyTorch state_dict names of the modules in
 * python/mixreg/torch.py (lenet5, resnet20 generalised to resnet<6n+2>,
 * preact18; WideResNet named like preact18) and of torchvision's resnet50, so
 * a model.safetensors loads into those modules with load_state_dict(strict=True)
 * once the "mixreg." entries are dropped. tests/make_cnn_fixtures.py writes
 * tests/fixtures/cnn_state_dicts.txt, their tables, from those modules. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cnn_internal.h"

typedef enum { ARCH_LENET5, ARCH_RESNET_CIFAR, ARCH_PREACT18, ARCH_WRN, ARCH_RESNET50 } arch_kind;

typedef struct {
    arch_kind kind;
    size_t depth, width;  /* resnet<depth>, wrn-<depth>-<width> */
    float dropout;        /* wrn-<depth>-<width>-<dropout> */
} arch_info;

/* A decimal number without sign, spaces or leading zeros, at most 4 digits. */
static int parse_number(const char **p, size_t *out)
{
    const char *s = *p;
    size_t v = 0, digits = 0;
    if (*s == '0') return 0;
    while (isdigit((unsigned char)*s) && digits < 5) v = 10 * v + (size_t)(*s++ - '0'), digits++;
    if (!digits || digits > 4) return 0;
    *out = v;
    *p = s;
    return 1;
}

/* "0." and 1 to 3 digits, not all zero: a dropout probability in (0, 1). */
static int parse_probability(const char *s, float *out)
{
    if (strncmp(s, "0.", 2)) return 0;
    size_t digits = strspn(s + 2, "0123456789");
    if (digits < 1 || digits > 3 || s[2 + digits] || strspn(s + 2, "0") == digits) return 0;
    *out = (float)strtod(s, NULL);
    return 1;
}

static int parse_arch(const char *arch, arch_info *info)
{
    memset(info, 0, sizeof *info);
    if (!strcmp(arch, "lenet5")) {
        info->kind = ARCH_LENET5;
        return 1;
    }
    if (!strcmp(arch, "preact18")) {
        info->kind = ARCH_PREACT18;
        return 1;
    }
    if (!strcmp(arch, "resnet50")) {
        info->kind = ARCH_RESNET50;
        return 1;
    }
    const char *p;
    if (!strncmp(arch, "resnet", 6)) {
        /* He et al.'s CIFAR family: 6n + 2 layers (resnet50 is the ImageNet bottleneck net above). */
        p = arch + 6;
        info->kind = ARCH_RESNET_CIFAR;
        return parse_number(&p, &info->depth) && !*p && info->depth >= 8 && (info->depth - 2) % 6 == 0;
    }
    if (!strncmp(arch, "wrn-", 4)) {
        p = arch + 4;
        info->kind = ARCH_WRN;
        if (!parse_number(&p, &info->depth) || *p++ != '-' || !parse_number(&p, &info->width)) return 0;
        if (*p && (*p++ != '-' || !parse_probability(p, &info->dropout))) return 0;
        return info->depth >= 10 && (info->depth - 4) % 6 == 0 && info->width <= 64;
    }
    return 0;
}

int mx_cnn_arch_known(const char *arch)
{
    arch_info info;
    return parse_arch(arch, &info);
}

/* "L.<idx>.<what>", the block naming of python/mixreg/torch.py's nn.Sequential L. */
static const char *name_of(char *buf, size_t cap, const char *fmt, size_t idx, const char *what)
{
    snprintf(buf, cap, fmt, idx, what);
    return buf;
}

static const char *join(char *buf, size_t cap, const char *prefix, const char *what)
{
    snprintf(buf, cap, "%s.%s", prefix, what);
    return buf;
}

/* lenet5: conv5x5(6, pad 2)-relu-maxpool2-conv5x5(16)-relu-maxpool2-fc120-relu-fc84-relu-fc,
 * nn.Sequential indices as names; the first fc reads however many features the input leaves. */
static int build_lenet5(cnn_graph *g, size_t classes)
{
    int x = cnn_conv(g, 0, "0", 6, 5, 1, 2, 1, 1);
    x = cnn_maxpool(g, x, 2, 2, 0);
    x = cnn_conv(g, x, "3", 16, 5, 1, 0, 1, 1);
    x = cnn_maxpool(g, x, 2, 2, 0);
    x = cnn_linear(g, x, "7", 120, 1);
    x = cnn_linear(g, x, "9", 84, 1);
    return cnn_linear(g, x, "11", classes, 0);
}

/* He et al. 2016's CIFAR ResNet (python/mixreg/torch.py's ResNetCifar and its Basic block):
 * conv3x3(16)-BN-ReLU, three stages of n basic blocks (widths 16, 32, 64,
 * strides 1, 2, 2; a 1x1 conv + BN projection where the shape changes),
 * global average pool, fc. */
static int build_resnet_cifar(cnn_graph *g, size_t n, size_t classes)
{
    char a[64], b[64];
    int x = cnn_conv(g, 0, "c", 16, 3, 1, 1, 0, 0);
    x = cnn_bn(g, x, "b", 1);
    size_t in = 16, idx = 0;
    for (size_t stage = 0; stage < 3; stage++) {
        size_t out = (size_t)16 << stage;
        for (size_t j = 0; j < n; j++, idx++) {
            size_t stride = j == 0 && stage > 0 ? 2 : 1;
            int h = cnn_conv(g, x, name_of(a, sizeof a, "L.%zu.%s", idx, "c1"), out, 3, stride, 1, 0, 0);
            h = cnn_bn(g, h, name_of(a, sizeof a, "L.%zu.%s", idx, "b1"), 1);
            h = cnn_conv(g, h, name_of(a, sizeof a, "L.%zu.%s", idx, "c2"), out, 3, 1, 1, 0, 0);
            h = cnn_bn(g, h, name_of(a, sizeof a, "L.%zu.%s", idx, "b2"), 0);
            int sc = x;
            if (stride != 1 || in != out) {
                sc = cnn_conv(g, x, name_of(a, sizeof a, "L.%zu.%s", idx, "sh.0"), out, 1, stride, 0, 0, 0);
                sc = cnn_bn(g, sc, name_of(b, sizeof b, "L.%zu.%s", idx, "sh.1"), 0);
            }
            x = cnn_add(g, h, sc, 1);
            in = out;
        }
    }
    x = cnn_gap(g, x);
    return cnn_linear(g, x, "fc", classes, 0);
}

/* python/mixreg/torch.py's PreAct block: o = relu(b1(x)); shortcut x, or sh(o) (a bare
 * 1x1 conv) where the shape changes; c2(relu(b2(c1(o)))) + shortcut, with
 * WideResNet's dropout before c2 when p > 0. Nodes in the order PyTorch
 * registers the parameters (b1, c1, b2, c2, sh). */
static int preact_block(cnn_graph *g, int x, size_t idx, size_t in, size_t out, size_t stride, float p)
{
    char a[64];
    int o = cnn_bn(g, x, name_of(a, sizeof a, "L.%zu.%s", idx, "b1"), 1);
    int h = cnn_conv(g, o, name_of(a, sizeof a, "L.%zu.%s", idx, "c1"), out, 3, stride, 1, 0, 0);
    h = cnn_bn(g, h, name_of(a, sizeof a, "L.%zu.%s", idx, "b2"), 1);
    if (p > 0) h = cnn_dropout(g, h, p);
    h = cnn_conv(g, h, name_of(a, sizeof a, "L.%zu.%s", idx, "c2"), out, 3, 1, 1, 0, 0);
    int sc = x;
    if (stride != 1 || in != out) sc = cnn_conv(g, o, name_of(a, sizeof a, "L.%zu.%s", idx, "sh"), out, 1, stride, 0, 0, 0);
    return cnn_add(g, h, sc, 0);
}

/* PreAct ResNet-18 (widths 64..512, two blocks per stage, no final BN, as the
 * mixup reference code and python/mixreg/torch.py), or WideResNet-D-K[-P]: stem conv 16,
 * three stages of (D - 4) / 6 pre-activation blocks of widths 16K, 32K, 64K,
 * final BN-ReLU ("b"), dropout P between each block's convolutions (default 0;
 * its generator state is the buffer "mixreg.rng.dropout", which a PyTorch
 * load drops with the other "mixreg." entries). */
static int build_preact(cnn_graph *g, const size_t *widths, size_t stages, size_t blocks, size_t stem, int final_bn,
                        float dropout, size_t classes)
{
    int x = cnn_conv(g, 0, "c", stem, 3, 1, 1, 0, 0);
    size_t in = stem, idx = 0;
    for (size_t s = 0; s < stages; s++)
        for (size_t j = 0; j < blocks; j++, idx++) {
            x = preact_block(g, x, idx, in, widths[s], j == 0 && s > 0 ? 2 : 1, dropout);
            in = widths[s];
        }
    if (final_bn) x = cnn_bn(g, x, "b", 1);
    x = cnn_gap(g, x);
    return cnn_linear(g, x, "fc", classes, 0);
}

/* torchvision's resnet50 (v1.5: the stride on the 3x3 conv), names included:
 * conv7x7/2(64)-BN-ReLU-maxpool3x3/2, bottleneck stages [3, 4, 6, 3] of
 * widths 64..512 (x4 out), downsample = 1x1 conv + BN, average pool, fc. */
static int build_resnet50(cnn_graph *g, size_t classes)
{
    static const size_t blocks[4] = {3, 4, 6, 3};
    char a[64];
    int x = cnn_conv(g, 0, "conv1", 64, 7, 2, 3, 0, 0);
    x = cnn_bn(g, x, "bn1", 1);
    x = cnn_maxpool(g, x, 3, 2, 1);
    size_t in = 64;
    for (size_t s = 0; s < 4; s++) {
        size_t planes = (size_t)64 << s;
        for (size_t j = 0; j < blocks[s]; j++) {
            size_t stride = j == 0 && s > 0 ? 2 : 1;
            char p[32];
            snprintf(p, sizeof p, "layer%zu.%zu", s + 1, j);
            int h = cnn_conv(g, x, join(a, sizeof a, p, "conv1"), planes, 1, 1, 0, 0, 0);
            h = cnn_bn(g, h, join(a, sizeof a, p, "bn1"), 1);
            h = cnn_conv(g, h, join(a, sizeof a, p, "conv2"), planes, 3, stride, 1, 0, 0);
            h = cnn_bn(g, h, join(a, sizeof a, p, "bn2"), 1);
            h = cnn_conv(g, h, join(a, sizeof a, p, "conv3"), 4 * planes, 1, 1, 0, 0, 0);
            h = cnn_bn(g, h, join(a, sizeof a, p, "bn3"), 0);
            int sc = x;
            if (stride != 1 || in != 4 * planes) {
                sc = cnn_conv(g, x, join(a, sizeof a, p, "downsample.0"), 4 * planes, 1, stride, 0, 0, 0);
                sc = cnn_bn(g, sc, join(a, sizeof a, p, "downsample.1"), 0);
            }
            x = cnn_add(g, h, sc, 1);
            in = 4 * planes;
        }
    }
    x = cnn_gap(g, x);
    return cnn_linear(g, x, "fc", classes, 0);
}

mx_status cnn_build_arch(cnn_graph *g, const mx_model_spec *spec)
{
    arch_info info;
    if (!parse_arch(spec->arch, &info))
        return mx_error_set(MX_ERR_ARG, "unknown model '%s' (available: %s)", spec->arch, mx_model_arch_names());
    const size_t classes = spec->num_classes;
    if (info.kind == ARCH_LENET5 && (spec->in_height < 10 || spec->in_width < 10))
        return mx_error_set(MX_ERR_ARG,
                            "model 'lenet5' needs images of at least 10x10 (two 5x5 convolutions and two 2x2 "
                            "pools), not %zux%zu",
                            spec->in_height, spec->in_width);
    switch (info.kind) {
    case ARCH_LENET5:
        build_lenet5(g, classes);
        break;
    case ARCH_RESNET_CIFAR:
        build_resnet_cifar(g, (info.depth - 2) / 6, classes);
        break;
    case ARCH_PREACT18: {
        static const size_t widths[4] = {64, 128, 256, 512};
        build_preact(g, widths, 4, 2, 64, 0, 0.0f, classes);
        break;
    }
    case ARCH_WRN: {
        const size_t widths[3] = {16 * info.width, 32 * info.width, 64 * info.width};
        build_preact(g, widths, 3, (info.depth - 4) / 6, 16, 1, info.dropout, classes);
        break;
    }
    case ARCH_RESNET50:
        build_resnet50(g, classes);
        break;
    }
    if (g->status != MX_OK && g->status != MX_ERR_NOMEM)
        return mx_error_wrap(g->status, "model '%s' does not fit %zux%zux%zu inputs", spec->arch, spec->in_channels,
                             spec->in_height, spec->in_width);
    return g->status;
}
