"""Bad input raises InvalidParameterError naming the parameter, the allowed values and the value."""

from __future__ import annotations

import pytest
import torch

import descend
from descend._validation import InvalidParameterError


def p() -> list[torch.Tensor]:
    return [torch.zeros(2, requires_grad=True)]


@pytest.mark.parametrize(
    "make,message",
    [
        (
            lambda: descend.SGD(p(), lr=-1),
            "The 'lr' parameter of SGD must be a float >= 0 or a 1-element tensor holding one or a schedule (a callable step -> lr). Got -1 instead. (torch.optim: Invalid learning rate: -1)",
        ),
        (
            lambda: descend.Adam(p(), betas=(1.0, 0.999)),
            "The 'betas' parameter of Adam must be a pair of floats (or 1-element tensors), each in [0, 1). Got (1.0, 0.999) instead. (torch.optim: Invalid beta parameter at index 0: 1.0)",
        ),
        (
            lambda: descend.AdamW(p(), betas=(0.9, -0.1)),
            "The 'betas' parameter of AdamW must be a pair of floats (or 1-element tensors), each in [0, 1). Got (0.9, -0.1) instead. (torch.optim: Invalid beta parameter at index 1: -0.1)",
        ),
        (
            lambda: descend.RMSprop(p(), alpha=1.0),
            "The 'alpha' parameter of RMSprop must be a float in the range [0, 1). Got 1.0 instead. (torch.optim: Invalid alpha value: 1.0)",
        ),
        (
            lambda: descend.SGD(p(), lr=0.1, nesterov=True),
            (
                "The 'nesterov' parameter of SGD must be False unless momentum > 0 and dampening = 0 "
                "(Nesterov momentum needs a momentum and no dampening). Got nesterov=True with momentum=0 and dampening=0 instead."
            ),
        ),
        (
            lambda: descend.SGD(p(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
            (
                "The 'nesterov' parameter of SGD must be False unless momentum > 0 and dampening = 0 "
                "(Nesterov momentum needs a momentum and no dampening). Got nesterov=True with momentum=0.9 and dampening=0.1 instead."
            ),
        ),
        (
            lambda: descend.Adam([]),
            "The 'params' argument of Adam must be a non-empty iterable of tensors or of param-group dicts. Got an empty list instead. (torch.optim: optimizer got an empty parameter list)",
        ),
        (
            lambda: descend.Adagrad(p(), eps=-1e-10),
            "The 'eps' parameter of Adagrad must be a float >= 0. Got -1e-10 instead. (torch.optim: Invalid epsilon value: -1e-10)",
        ),
        (
            lambda: descend.SGD(p(), lr=float("nan")),
            "The 'lr' parameter of SGD must be a float >= 0 or a 1-element tensor holding one or a schedule (a callable step -> lr). Got nan instead. (torch.optim: Invalid learning rate: nan)",
        ),
    ],
)
def test_bad_hyperparameters(make, message: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        make()
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)  # callers catching torch's ValueError still do


def test_parameter_in_two_groups() -> None:
    x = torch.zeros(3, requires_grad=True)
    with pytest.raises(
        InvalidParameterError,
        match=r"The 'params' of param group 1 of Adam must not contain "
        r"a parameter of another group. Got a parameter of shape \(3,\) that is already in group 0",
    ):
        descend.Adam([{"params": [x]}, {"params": [x]}])


def test_unknown_hyperparameter_name_in_group() -> None:
    with pytest.raises(
        InvalidParameterError, match=r"Adam has no parameter 'betass'. Did you mean 'betas'\?"
    ):
        descend.Adam([{"params": p(), "betass": (0.9, 0.99)}])


def test_unknown_hyperparameter_of_a_chain() -> None:
    from descend.optim import chain, scale_by_adam, scale_by_lr

    with pytest.raises(InvalidParameterError, match=r"has no parameter 'momentum'"):
        descend.Optimizer(p(), chain(scale_by_adam(), scale_by_lr()), lr=0.1, momentum=0.9)


def test_group_override_is_validated() -> None:
    with pytest.raises(InvalidParameterError, match=r"The 'lr' parameter of SGD must be"):
        descend.SGD([{"params": p(), "lr": -0.5}], lr=0.1)


def test_unknown_registry_name_lists_the_names() -> None:
    with pytest.raises(
        InvalidParameterError,
        match=r"Unknown optimizer 'adan'\. Did you mean 'adam'\? Available: (\w+, )*adam, (\w+, )*sgd(, \w+)*\.",
    ):
        descend.make_optimizer("adan", p())


def test_fused_and_foreach_together_are_refused_in_torchs_words() -> None:
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
        descend.Adam(p(), fused=True, foreach=True)
    with pytest.raises(RuntimeError, match="`fused` does not support `differentiable`"):
        descend.SGD(p(), fused=True, differentiable=True)
    from descend.optim import chain, scale_by_adam, scale_by_lr

    with pytest.raises(RuntimeError, match=r"has no fused kernel.*compile=True"):
        descend.Optimizer(p(), chain(scale_by_adam(), scale_by_lr()), fused=True)


def test_a_tensor_lr_must_hold_one_value() -> None:
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        descend.SGD(p(), lr=torch.tensor([0.1, 0.2]))
