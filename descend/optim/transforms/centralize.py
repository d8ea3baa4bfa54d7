"""Gradient centralization: each output channel's gradient made zero-mean."""

from __future__ import annotations

from torch import Tensor

from descend._validation import BOOL
from descend.optim.transform import Hyper, State, Transform, picklable, stateless


@picklable
def centralize_gradient() -> Transform:
    r"""Subtract from the gradient of every weight with more than one dimension its mean
    over all dimensions but the first (Yong et al., 2020).

    For a weight :math:`W` of shape :math:`(C_{out}, \dots)` (a linear layer's
    :math:`(C_{out}, C_{in})`, a convolution's :math:`(C_{out}, C_{in}, k_h, k_w)`):

    .. math::
        g_{i,\cdot} \leftarrow g_{i,\cdot} - \frac{1}{M}\sum_{j} g_{i,j}
        \qquad (M = \text{the number of elements in } g_{i,\cdot})

    so the update to each output channel's weight vector has zero mean (it lies in the
    hyperplane orthogonal to :math:`\mathbf{1}`, which the paper shows both regularizes
    the weight space and the output feature space). Tensors with one dimension (biases,
    norms' scales) are left as they are. Hyperparameter ``gc_conv_only`` (default False):
    when True, only tensors with more than three dimensions (convolutions) are centralized.

    Put it first in a chain, on the raw gradient, as the paper puts it inside SGD and Adam
    (before momentum and weight decay): ``chain(centralize_gradient(), scale_by_adam(),
    scale_by_lr())``. It needs each tensor's shape, so it is not elementwise. Not for
    complex parameters: the optimizer hands them over as real pairs (a trailing dimension
    of 2, as torch.optim does), whose mean would mix real and imaginary parts.

    .. note:: Conventions: the paper's code (``GC_SGD``, ``GCC_SGD``) centralizes both
       convolutional and fully connected weights by default, with a "conv only" variant;
       pytorch-optimizer's ``centralize_gradient(grad, gc_conv_only=False)`` is the same
       rule (``gc_conv_only=True`` there means ``ndim > 3``, as here). Both are followed.

    Example:
        >>> import torch, descend
        >>> from descend.optim import centralize_gradient, chain, scale_by_lr
        >>> w = torch.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
        >>> opt = descend.Optimizer([w], chain(centralize_gradient(), scale_by_lr()), lr=0.1)
        >>> for _ in range(200):
        ...     opt.zero_grad(); (w ** 2).sum().backward(); opt.step()
        >>> [round(v, 4) for v in w.sum(dim=1).tolist()]  # each row's sum is kept
        [-1.0, 3.5]

    References:
        Yong, Huang, Hua & Zhang, "Gradient Centralization: A New Optimization Technique for
        Deep Neural Networks", ECCV 2020. https://arxiv.org/abs/2004.01461
    """

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        lowest = 4 if hp["gc_conv_only"] else 2
        return [
            g - g.mean(dim=tuple(range(1, g.dim())), keepdim=True) if g.dim() >= lowest else g
            for g in grads
        ]

    return stateless(
        update,
        name="centralize_gradient",
        defaults={"gc_conv_only": False},
        constraints={"gc_conv_only": BOOL},
    )
