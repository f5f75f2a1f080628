"""edugrad.nn: layers, losses and the Module that holds them, with PyTorch's names.

Layer: nn (top). Imports the Tensor layer (tensor, math, factories, autograd) and
edugrad.function; never NumPy.

    module.py, parameter.py, containers.py   Module, Parameter, Sequential, ModuleList, ModuleDict,
                                             ParameterList, ParameterDict
    layers.py, conv.py, normalization.py     Linear, Conv2d, MaxPool2d, BatchNorm2d, ...
    activation.py, loss.py                   ReLU, GELU, ..., CrossEntropyLoss, ...
    functional.py (+ functional_conv.py, functional_loss.py, functional_extra.py,
        functional_resample.py)              F: every layer as a function
    attention.py, transformer.py             MultiheadAttention, Transformer and its layers
    rnn.py                                   RNN, LSTM, GRU, RNNCell, LSTMCell, GRUCell
    init.py, utils/                          nn.init, nn.utils (gradient clipping, utils.rnn)
"""

from edugrad.nn import functional, init, utils
from edugrad.nn.attention import MultiheadAttention
from edugrad.nn.activation import (
    ELU, GELU, Hardtanh, LeakyReLU, LogSoftmax, Mish, PReLU, ReLU, ReLU6, SiLU, Sigmoid, Softmax,
    Softmax2d, Softplus, Tanh,
)
from edugrad.nn.containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from edugrad.nn.conv import (
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d, AvgPool1d,
    AvgPool2d, Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, LPPool1d, LPPool2d, MaxPool1d,
    MaxPool2d, MaxUnpool1d, MaxUnpool2d,
)
from edugrad.nn.layers import (
    CosineSimilarity, Dropout, Dropout1d, Dropout2d, Embedding, Flatten, Identity, Linear,
    PairwiseDistance, PixelShuffle, PixelUnshuffle, Unflatten, Upsample, UpsamplingBilinear2d,
    UpsamplingNearest2d,
)
from edugrad.nn.loss import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MarginRankingLoss,
    MSELoss, NLLLoss, SmoothL1Loss, TripletMarginLoss,
)
from edugrad.nn.module import Module
from edugrad.nn.normalization import (
    BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm1d, InstanceNorm2d, LayerNorm,
)
from edugrad.nn.parameter import Parameter
from edugrad.nn.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from edugrad.nn.transformer import (
    Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleList",
    "Identity", "Linear", "Flatten", "Unflatten", "Dropout", "Embedding",
    "Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "LayerNorm",
    "ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
    "MSELoss", "L1Loss", "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss",
    "MultiheadAttention", "Transformer", "TransformerEncoder", "TransformerEncoderLayer",
    "TransformerDecoder", "TransformerDecoderLayer",
    "functional", "init", "utils",
    "RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell",
    "ModuleDict", "ParameterList", "ParameterDict", "Conv1d", "ConvTranspose2d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
    "GroupNorm", "InstanceNorm2d", "Dropout2d", "Upsample", "CosineSimilarity",
    "PairwiseDistance", "PReLU", "Softplus", "Mish", "Hardtanh", "ReLU6", "Softmax2d",
    "SmoothL1Loss", "HuberLoss", "KLDivLoss", "MarginRankingLoss", "TripletMarginLoss",
    "ConvTranspose1d", "MaxPool1d", "AvgPool1d", "InstanceNorm1d", "Dropout1d",
    "UpsamplingNearest2d", "UpsamplingBilinear2d", "MaxUnpool1d", "MaxUnpool2d", "LPPool1d",
    "LPPool2d", "PixelShuffle", "PixelUnshuffle",
]
