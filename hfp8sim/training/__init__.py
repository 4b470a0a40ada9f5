"""HFP8 training on the bit-accurate datapath: layers, scaling, loss scaling, optimizers, data, parallelism."""
