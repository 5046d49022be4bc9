"""Model families that ship with gin-trainer; importing registers them with gin."""

from gin_trainer.models.npz_images import npz_images
from gin_trainer.models.regression import RegressionModel
from gin_trainer.models.regression_data import synthetic_regression
from gin_trainer.models.shapes_data import procedural_shapes
from gin_trainer.models.vae import VAE, VAETrainer

__all__ = ['RegressionModel', 'VAE', 'VAETrainer', 'npz_images', 'procedural_shapes',
           'synthetic_regression']
