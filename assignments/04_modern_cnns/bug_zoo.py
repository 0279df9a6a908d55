"""Bug zoo of chapter 04: mistakes students really make; each must lose exactly its items."""

from __future__ import annotations

from tools.zoo import Bug


def items(check: str, *outputs: str) -> set[str]:
    return {f"{check}: {output}" for output in outputs}


BLOCK_ITEMS = ("y_train", "grad_x", "grad_parameters", "running_stats", "y_eval", "param_count")
VALUES = ("y_train", "grad_x", "grad_parameters", "y_eval")  # the output is wrong, BN inputs not
ALL_BUT_COUNT = (*VALUES, "running_stats")
# a network's training-mode items: a wrong forward costs these; one that raises in training
# mode costs the running statistics as well
TRAIN = ("logits_train", "grad_parameters")
TRAIN_ALL = (*TRAIN, "running_stats")


def residual_forward(body: str, cls: str = "ResidualBlock") -> str:
    """A block whose forward runs `body` (lines using x and self) and returns `out`."""
    lines = "\n".join("        " + line for line in body.strip().splitlines())
    return f"""
class {cls}({cls}):
    def forward(self, x):
{lines}
        return out
"""


BUGS = [
    # ----------------------------------------------------------------------- ResidualBlock
    Bug(
        "residual: relu before the addition",
        items("ResidualBlock", *VALUES),
        residual_forward("""
residual = torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
out = residual + self.shortcut(x)
"""),
    ),
    Bug(
        "residual: projection shortcut without batch norm",
        items("ResidualBlock", *BLOCK_ITEMS),
        """
class ResidualBlock(ResidualBlock):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        if not isinstance(self.shortcut, nn.Identity):
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
""",
    ),
    Bug(
        "residual: projection shortcut ignores the stride",
        items("ResidualBlock", *ALL_BUT_COUNT),
        """
class ResidualBlock(ResidualBlock):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        if not isinstance(self.shortcut, nn.Identity):
            self.shortcut[0] = nn.Conv2d(in_channels, out_channels, 1, bias=False)
""",
        pattern="stride",
    ),
    Bug(
        "residual: identity shortcut when only the channels change",
        items("ResidualBlock", *BLOCK_ITEMS),
        """
class ResidualBlock(ResidualBlock):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        if stride == 1:
            self.shortcut = nn.Identity()
""",
        pattern=None,
    ),
    Bug(
        "residual: convolutions keep their bias",
        items("ResidualBlock", "running_stats", "y_eval", "param_count"),
        """
class ResidualBlock(ResidualBlock):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
""",
    ),
    Bug(
        "residual: bn1 reused after conv2",
        items("ResidualBlock", *ALL_BUT_COUNT),
        residual_forward("""
residual = torch.relu(self.bn1(self.conv1(x)))
out = torch.relu(self.bn1(self.conv2(residual)) + self.shortcut(x))
"""),
    ),
    # ----------------------------------------------------------------- PreActResidualBlock
    Bug(
        "preact: final relu after the addition",
        items("PreActResidualBlock", *VALUES),
        """
class PreActResidualBlock(PreActResidualBlock):
    def forward(self, x):
        return torch.relu(super().forward(x))
""",
    ),
    Bug(
        "preact: projection of the raw input",
        items("PreActResidualBlock", *VALUES),
        residual_forward(
            """
activated = torch.relu(self.bn1(x))
skip = self.shortcut(x) if self.needs_projection else x
out = self.conv2(torch.relu(self.bn2(self.conv1(activated)))) + skip
""",
            cls="PreActResidualBlock",
        ),
    ),
    Bug(
        "preact: convolution before its batch norm",
        items("PreActResidualBlock", *ALL_BUT_COUNT),
        residual_forward(
            """
activated = torch.relu(self.bn1(self.conv1(x)))
skip = self.shortcut(torch.relu(self.bn1(x))) if self.needs_projection else x
out = torch.relu(self.bn2(self.conv2(activated))) + skip
""",
            cls="PreActResidualBlock",
        ),
    ),
    Bug(
        "preact: projection copied from the basic block (with batch norm)",
        items("PreActResidualBlock", *BLOCK_ITEMS),
        """
class PreActResidualBlock(PreActResidualBlock):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        if self.needs_projection:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))
""",
    ),
    # ---------------------------------------------------------------------- InceptionBlock
    Bug(
        "inception: pool branch first",
        items("InceptionBlock", *VALUES),
        """
class InceptionBlock(InceptionBlock):
    def forward(self, x):
        return torch.cat([self.branch4(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)
""",
    ),
    Bug(
        "inception: concatenated along the height",
        items("InceptionBlock", *ALL_BUT_COUNT),
        """
class InceptionBlock(InceptionBlock):
    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=2)
""",
    ),
    Bug(
        "inception: no pool projection",
        items("InceptionBlock", *BLOCK_ITEMS),
        """
class InceptionBlock(InceptionBlock):
    def __init__(self, in_channels, c1x1, c3x3_reduce, c3x3, c5x5_reduce, c5x5, pool_proj):
        super().__init__(in_channels, c1x1, c3x3_reduce, c3x3, c5x5_reduce, c5x5, pool_proj)
        self.branch4 = nn.MaxPool2d(3, stride=1, padding=1)
""",
    ),
    Bug(
        "inception: 5x5 with padding 1",
        items("InceptionBlock", *ALL_BUT_COUNT),
        """
class InceptionBlock(InceptionBlock):
    def __init__(self, in_channels, c1x1, c3x3_reduce, c3x3, c5x5_reduce, c5x5, pool_proj):
        super().__init__(in_channels, c1x1, c3x3_reduce, c3x3, c5x5_reduce, c5x5, pool_proj)
        self.branch3[3] = nn.Conv2d(c5x5_reduce, c5x5, 5, padding=1, bias=False)
""",
    ),
    Bug(
        "inception: no relu inside the branches",
        items("InceptionBlock", *ALL_BUT_COUNT),
        """
class InceptionBlock(InceptionBlock):
    def __init__(self, *args):
        super().__init__(*args)
        for branch in (self.branch1, self.branch2, self.branch3, self.branch4):
            for index, layer in enumerate(branch):
                if isinstance(layer, nn.ReLU):
                    branch[index] = nn.Identity()
""",
    ),
    # -------------------------------------------------------------------------- DenseLayer
    Bug(
        "dense layer: returns only the new features",
        items("DenseLayer", *VALUES),
        """
class DenseLayer(DenseLayer):
    def forward(self, x):
        return super().forward(x)[:, x.shape[1]:]
""",
    ),
    Bug(
        "dense layer: new features first",
        items("DenseLayer", *VALUES),
        """
class DenseLayer(DenseLayer):
    def forward(self, x):
        both = super().forward(x)
        return torch.cat([both[:, x.shape[1]:], x], dim=1)
""",
    ),
    Bug(
        "dense layer: bottleneck of growth_rate channels",
        items("DenseLayer", *BLOCK_ITEMS),
        """
class DenseLayer(DenseLayer):
    def __init__(self, in_channels, growth_rate, bn_size):
        super().__init__(in_channels, growth_rate, 1)
""",
    ),
    Bug(
        "dense layer: skips bn2 and its relu",
        items("DenseLayer", *ALL_BUT_COUNT),
        """
class DenseLayer(DenseLayer):
    def forward(self, x):
        new = self.conv2(self.conv1(torch.relu(self.bn1(x))))
        return torch.cat([x, new], dim=1)
""",
    ),
    # -------------------------------------------------------------------------- DenseBlock
    Bug(
        "dense block: every layer built for in_channels",
        items("DenseBlock", "architecture", "y", "grad_x"),
        """
class DenseBlock(nn.Module):
    def __init__(self, num_layers, in_channels, growth_rate, bn_size):
        super().__init__()
        self.layers = nn.ModuleList(DenseLayer(in_channels, growth_rate, bn_size) for _ in range(num_layers))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
""",
    ),
    Bug(
        "dense block: every layer fed the block input",
        items("DenseBlock", "y", "grad_x"),
        """
class DenseBlock(DenseBlock):
    def forward(self, x):
        features = [x]
        for layer in self.layers:
            features.append(layer(x)[:, x.shape[1]:])
        return torch.cat(features, dim=1)
""",
    ),
    Bug(
        "dense block: one layer too few",
        items("DenseBlock", "architecture", "y", "grad_x"),
        """
class DenseBlock(DenseBlock):
    def __init__(self, num_layers, in_channels, growth_rate, bn_size):
        super().__init__(num_layers - 1, in_channels, growth_rate, bn_size)
""",
    ),
    # --------------------------------------------------------------------- TransitionLayer
    Bug(
        "transition: no pooling",
        items("TransitionLayer", *VALUES),
        """
class TransitionLayer(TransitionLayer):
    def forward(self, x):
        return self.conv(torch.relu(self.bn(x)))
""",
    ),
    Bug(
        "transition: max pooling",
        items("TransitionLayer", *VALUES),
        """
class TransitionLayer(TransitionLayer):
    def forward(self, x):
        return nn.functional.max_pool2d(self.conv(torch.relu(self.bn(x))), 2)
""",
    ),
    Bug(
        "transition: no relu",
        items("TransitionLayer", *VALUES),
        """
class TransitionLayer(TransitionLayer):
    def forward(self, x):
        return self.pool(self.conv(self.bn(x)))
""",
    ),
    Bug(
        "transition: pooling by striding the convolution",
        items("TransitionLayer", *VALUES),
        """
class TransitionLayer(TransitionLayer):
    def forward(self, x):
        return nn.functional.conv2d(torch.relu(self.bn(x)), self.conv.weight, stride=2)
""",
    ),
    # --------------------------------------------------------------------------- networks
    Bug(
        "resnet: flattens instead of global average pooling",
        items("SmallResNet", "output_shape", "logits", *TRAIN_ALL),
        """
class SmallResNet(SmallResNet):
    def forward(self, x):
        x = torch.relu(self.stem_bn(self.stem_conv(x)))
        return self.fc(self.stages(x).flatten(1))
""",
    ),
    Bug(
        "resnet: second stage keeps the resolution",
        items("SmallResNet", "architecture", "logits", *TRAIN),
        """
class SmallResNet(SmallResNet):
    def __init__(self, num_classes=10):
        super().__init__(num_classes)
        self.stages[1] = ResidualBlock(16, 32, 1)
""",
    ),
    Bug(
        "resnet: no relu after the stem",
        items("SmallResNet", "logits", *TRAIN),
        """
class SmallResNet(SmallResNet):
    def forward(self, x):
        return self.fc(global_average_pool(self.stages(self.stem_bn(self.stem_conv(x)))))
""",
    ),
    Bug(
        "resnet: classifier sized for the second stage",
        items("SmallResNet", "param_count", "output_shape", "logits", *TRAIN_ALL),
        """
class SmallResNet(SmallResNet):
    def __init__(self, num_classes=10):
        super().__init__(num_classes)
        self.fc = nn.Linear(32, num_classes)
""",
    ),
    Bug(
        "googlenet: no pooling between the inception blocks",
        items("SmallGoogLeNet", "logits", *TRAIN),
        """
class SmallGoogLeNet(SmallGoogLeNet):
    def forward(self, x):
        x = torch.relu(self.stem_bn(self.stem_conv(x)))
        return self.fc(global_average_pool(self.inception2(self.inception1(x))))
""",
    ),
    Bug(
        "googlenet: second block built for the stem's channels",
        items(
            "SmallGoogLeNet", "architecture", "param_count", "output_shape", "logits", *TRAIN_ALL
        ),
        """
class SmallGoogLeNet(SmallGoogLeNet):
    def __init__(self, num_classes=10):
        super().__init__(num_classes)
        self.inception2 = InceptionBlock(32, 24, 24, 32, 8, 16, 16)
""",
    ),
    Bug(
        "googlenet: pools over channels and height",
        items("SmallGoogLeNet", "output_shape", "logits", *TRAIN_ALL),
        """
class SmallGoogLeNet(SmallGoogLeNet):
    def forward(self, x):
        x = torch.relu(self.stem_bn(self.stem_conv(x)))
        x = nn.functional.max_pool2d(self.inception1(x), 2)
        return self.fc(self.inception2(x).mean(dim=(1, 2)))
""",
    ),
    Bug(
        "googlenet: max-pool with ceil_mode=True (odd sizes keep a fifth row)",
        items("SmallGoogLeNet", "logits", *TRAIN),
        """
class SmallGoogLeNet(SmallGoogLeNet):
    def forward(self, x):
        x = torch.relu(self.stem_bn(self.stem_conv(x)))
        x = nn.functional.max_pool2d(self.inception1(x), 2, ceil_mode=True)
        return self.fc(global_average_pool(self.inception2(x)))
""",
    ),
    Bug(
        "resnet: stem batch norm always on its running statistics",
        items("SmallResNet", *TRAIN_ALL),
        """
class SmallResNet(SmallResNet):
    def forward(self, x):
        bn = self.stem_bn
        x = nn.functional.batch_norm(self.stem_conv(x), bn.running_mean, bn.running_var,
                                     bn.weight, bn.bias, training=False, eps=bn.eps)
        return self.fc(global_average_pool(self.stages(torch.relu(x))))
""",
    ),
    Bug(
        "densenet: stem output detached",
        items("SmallDenseNet", "grad_parameters"),
        """
class SmallDenseNet(SmallDenseNet):
    def forward(self, x):
        x = self.block2(self.transition(self.block1(self.stem_conv(x).detach())))
        return self.fc(global_average_pool(torch.relu(self.final_bn(x))))
""",
    ),
    Bug(
        "densenet: no final relu",
        items("SmallDenseNet", "logits", *TRAIN),
        """
class SmallDenseNet(SmallDenseNet):
    def forward(self, x):
        x = self.block2(self.transition(self.block1(self.stem_conv(x))))
        return self.fc(global_average_pool(self.final_bn(x)))
""",
    ),
    Bug(
        "densenet: no final batch norm",
        items("SmallDenseNet", "param_count", "output_shape", "logits", *TRAIN_ALL),
        """
class SmallDenseNet(SmallDenseNet):
    def __init__(self, num_classes=10):
        super().__init__(num_classes)
        del self.final_bn

    def forward(self, x):
        x = self.block2(self.transition(self.block1(self.stem_conv(x))))
        return self.fc(global_average_pool(torch.relu(x)))
""",
    ),
    Bug(
        "densenet: transition keeps every channel",
        items("SmallDenseNet", "architecture", "param_count", "output_shape", "logits", *TRAIN_ALL),
        """
class SmallDenseNet(SmallDenseNet):
    def __init__(self, num_classes=10):
        super().__init__(num_classes)
        self.transition = TransitionLayer(40, 40)
""",
    ),
    # ------------------------------------------------------------------ counting and costs
    Bug(
        "count: counts buffers too",
        items("count_parameters", "counts"),
        """
def count_parameters(module):
    return sum(t.numel() for t in module.state_dict().values())
""",
    ),
    Bug(
        "count: counts frozen parameters",
        items("count_parameters", "counts"),
        """
def count_parameters(module):
    return sum(p.numel() for p in module.parameters())
""",
    ),
    Bug(
        "count: counts tensors, not scalars",
        items("count_parameters", "counts"),
        """
def count_parameters(module):
    return len([p for p in module.parameters() if p.requires_grad])
""",
    ),
    Bug(
        "receptive field: includes the layer's own stride",
        items("receptive_field", "fields"),
        """
def receptive_field(kernel_sizes, strides):
    field, step = 1, 1
    for kernel, stride in zip(kernel_sizes, strides):
        step *= stride
        field += (kernel - 1) * step
    return field
""",
    ),
    Bug(
        "receptive field: ignores the strides",
        items("receptive_field", "fields"),
        """
def receptive_field(kernel_sizes, strides):
    return 1 + sum(k - 1 for k in kernel_sizes)
""",
    ),
    Bug(
        "receptive field: sums the kernel sizes",
        items("receptive_field", "fields"),
        """
def receptive_field(kernel_sizes, strides):
    return sum(kernel_sizes)
""",
    ),
    Bug(
        "multiply-adds: forgets the input channels",
        items("conv_multiply_adds", "multiply_adds"),
        """
def conv_multiply_adds(in_channels, out_channels, kernel_size, height, width):
    return kernel_size * kernel_size * out_channels * height * width
""",
    ),
    Bug(
        "multiply-adds: one kernel dimension",
        items("conv_multiply_adds", "multiply_adds"),
        """
def conv_multiply_adds(in_channels, out_channels, kernel_size, height, width):
    return in_channels * kernel_size * out_channels * height * width
""",
    ),
    Bug(
        "multiply-adds: a float from math.pow",
        items("conv_multiply_adds", "multiply_adds"),
        """
def conv_multiply_adds(in_channels, out_channels, kernel_size, height, width):
    return in_channels * math.pow(kernel_size, 2) * out_channels * height * width
""",
    ),
]
