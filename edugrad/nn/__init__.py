"""edugrad.nn: layers, losses and the Module that holds them, with PyTorch's names.

Layer: nn (top). Imports the Tensor layer (tensor, math, factories, autograd) and
edugrad.function; never NumPy.

    module.py, parameter.py, containers.py   Module, Parameter, Sequential, ModuleList
    layers.py, conv.py, normalization.py     Linear, Conv2d, MaxPool2d, BatchNorm2d, ...
    activation.py, loss.py                   ReLU, GELU, ..., CrossEntropyLoss, ...
    functional.py (+ functional_conv.py, functional_loss.py)   F: every layer as a function
    attention.py, transformer.py             MultiheadAttention, Transformer and its layers
    rnn.py                                   RNN, LSTM, GRU, RNNCell, LSTMCell, GRUCell
    init.py, utils/                          nn.init, nn.utils (gradient clipping, utils.rnn)
"""

from edugrad.nn import functional, init, utils
from edugrad.nn.attention import MultiheadAttention
from edugrad.nn.activation import (
    ELU, GELU, LeakyReLU, LogSoftmax, ReLU, SiLU, Sigmoid, Softmax, Tanh,
)
from edugrad.nn.containers import ModuleList, Sequential
from edugrad.nn.conv import AvgPool2d, Conv2d, MaxPool2d
from edugrad.nn.layers import Dropout, Embedding, Flatten, Identity, Linear, Unflatten
from edugrad.nn.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from edugrad.nn.module import Module
from edugrad.nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
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
]
