"""Rewrite a PyTorch program's imports to edugrad, and nothing else.

    import torch                          ->  import edugrad as torch
    import torch.nn as nn                 ->  import edugrad.nn as nn
    import torch.nn                       ->  import edugrad as torch  (torch.nn.X still resolves)
    from torch import nn, optim           ->  from edugrad import nn, optim
    from torch.utils.data import X        ->  from edugrad.utils.data import X
"""

from __future__ import annotations

import re

_IMPORT = re.compile(r"^(\s*)import torch((?:\.\w+)*)(\s+as\s+\w+)?\s*(#.*)?$")
_FROM = re.compile(r"^(\s*)from torch((?:\.\w+)*) import ")


def to_edugrad(source: str) -> str:
    lines = []
    for line in source.splitlines():
        match = _IMPORT.match(line)
        if match:
            indent, path, alias, _ = match.groups()
            if alias:
                line = f"{indent}import edugrad{path}{alias}"
            else:  # `import torch` or `import torch.nn`: both bind the name torch
                line = f"{indent}import edugrad as torch"
        else:
            line = _FROM.sub(lambda m: f"{m.group(1)}from edugrad{m.group(2)} import ", line)
        lines.append(line)
    return "\n".join(lines) + "\n"
