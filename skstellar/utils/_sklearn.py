"""The one place that imports scikit-learn's parameter-validation machinery.

These helpers are private in scikit-learn; keeping every import here means a future
scikit-learn change is mended in one file (or by switching to ``sklearn-compat``).
"""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["HasMethods", "Interval", "Options", "StrOptions", "_fit_context", "check_is_fitted", "validate_data"]
