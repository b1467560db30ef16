"""hs-gateway drivers: the field side, one package per protocol behind one small interface."""
