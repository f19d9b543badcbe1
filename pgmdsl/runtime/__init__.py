"""Runtime: compiled models, parameter initialisation, the GPU array-module seam."""
