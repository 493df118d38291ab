"""An ordinary script that uses scipy, scikit-learn and pandas, with no genlab in it.

Run it as is (``python examples/accel_demo.py``) and with genlab's kernels behind those calls
(``python -m genlab.accel examples/accel_demo.py``; add ``GENLAB_ACCEL_PROFILE=1`` to see where
each call ran): it prints the same numbers both ways.
"""

import numpy as np
import pandas as pd
from scipy.stats import gaussian_kde, kendalltau
from sklearn.neighbors import KernelDensity

rng = np.random.default_rng(0)
x = rng.normal(size=5000)
y = x + rng.normal(size=5000)

tau, p = kendalltau(x, y)
print(f"kendalltau: tau {tau:.12f} p {p:.3e}")

points = rng.normal(size=(3, 4000))
kde = gaussian_kde(points)
print("gaussian_kde:", np.array2string(kde(points[:, :3]), precision=10))

kd = KernelDensity(bandwidth=0.5).fit(points.T)
print("KernelDensity:", np.array2string(kd.score_samples(points.T[:3]), precision=10))

frame = pd.DataFrame(rng.normal(size=(2000, 4)), columns=list("abcd"))
frame.iloc[::7, 1] = np.nan
print("DataFrame.corr(kendall):")
print(frame.corr(method="kendall").round(10))
