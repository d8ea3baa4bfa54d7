"""torch.compile backends for tests of the fast path, without C++ compilation."""

from __future__ import annotations

from typing import Any

import torch
import torch._dynamo.testing

from descend.optim import backend


class Prepared(torch._dynamo.testing.CompileCounter):
    """Counts compilations and splits each graph as the Inductor backend does (the 0-d
    prologue hoisted), then runs the main graph eagerly through an entry that takes one
    list of arguments, as Inductor's does: steady steps run on the prepared plan
    (:mod:`descend.optim.plan`)."""

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
        self.frame_count += 1
        out = backend.hoist(gm, example_inputs, lambda g, _: g)
        if not isinstance(out, backend.Hoisted):
            return out
        main = out.main

        def entry(args: list[Any]) -> None:
            assert all(not isinstance(a, torch.Tensor) or a.dim() < 2 for a in args)
            main(*args)
            args.clear()

        return backend.Hoisted(out.prologue, main, out.per_step, entry)
