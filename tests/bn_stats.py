"""Non-trivial BatchNorm state for tests that compare a net's eval-mode outputs with another's.

Fresh BN layers have mean 0, variance 1 and zero bias, so a buffer copied to the wrong layer, or
not copied at all, gives the same outputs; after this it does not.
"""
import torch


def randomize_bn_stats(net: torch.nn.Module, biases: bool = False) -> torch.nn.Module:
    """Random running means (N(0, 0.1)) and variances (U(0.5, 1.5)); with ``biases`` also the BN
    biases (N(0, 0.1)), so a mis-mapped affine parameter shows too. Uses torch's global RNG."""
    with torch.no_grad():
        for name, b in net.named_buffers():
            if name.endswith('running_mean'):
                b.normal_(0, 0.1)
            elif name.endswith('running_var'):
                b.uniform_(0.5, 1.5)
        if biases:
            for name, p in net.named_parameters():
                if '.bn' in name and name.endswith('bias'):
                    p.normal_(0, 0.1)
    return net
