"""HFP8 training on the bit-accurate datapath (issue 13): parameters, scaling recipes, the training ops that
run every GEMM of every pass through the datapath, and layers with forward and backward passes."""
