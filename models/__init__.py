"""Model families that ship with gin-trainer; importing registers them with gin."""

from models.regression import RegressionModel
from models.regression_data import synthetic_regression

__all__ = ['RegressionModel', 'synthetic_regression']
