"""ladlit: layer-wise adversarial defense (LAD, LAD-SM) with PyTorch Lightning + Hydra.

Where things live:
    attacks/      evaluation attacks (FGSM, PGD, CW-inf, AutoAttack) and the shared PGD core
    defenses/     training defenses: natural, PGD-AT, TRADES, and the layer-wise LAD / LAD-SM
    models/       residual backbones that expose their blocks in forward order
    data/         in-memory LightningDataModules (digits, CIFAR, SVHN, JPEG tarball, image folder)
    module.py     the LightningModule that trains a net with a defense
    train.py, eval.py   command-line entry points (Hydra)
"""

__version__ = "0.1.0"
