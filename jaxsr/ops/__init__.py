"""Array operations shared by models, data and metrics (MATLAB bicubic, colour, tiling)."""
