"""Model families that ship with gin-trainer; importing registers them with gin."""

from models.npz_images import npz_images
from models.regression import RegressionModel
from models.regression_data import synthetic_regression
from models.shapes_data import procedural_shapes
from models.vae import VAE, VAETrainer

__all__ = ['RegressionModel', 'VAE', 'VAETrainer', 'npz_images', 'procedural_shapes',
           'synthetic_regression']
