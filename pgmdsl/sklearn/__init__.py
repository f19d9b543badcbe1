"""scikit-learn estimators for pgmdsl models (the optional `sklearn` extra).

`RBMClassifier` is the classification RBM (Larochelle and Bengio 2008) as a
classifier: `fit(X, y)`, `predict_proba` from the exact p(y | x) (every
class enumerated, the hidden layer summed out), generative, discriminative
or hybrid training.

`DBNClassifier` is a deep belief network as a classifier (Hinton, Osindero
and Teh 2006; Hinton and Salakhutdinov 2006): binary RBMs pretrained
greedily, one per hidden layer, then unrolled into a sigmoid network with a
softmax output and fine-tuned on the labels by backpropagation
(`pgmdsl.runtime.recipes.backprop`).

`RBM` is a drop-in for `sklearn.neural_network.BernoulliRBM`: the same
parameter names and defaults, the same learned attributes (`components_`,
`intercept_hidden_`, `intercept_visible_`), and `fit`, `partial_fit`,
`transform`, `score_samples` and `gibbs`, so it goes in a Pipeline wherever
BernoulliRBM does::

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from pgmdsl.sklearn import RBM

    model = Pipeline([("rbm", RBM(n_components=100, learning_rate=0.06, random_state=0)),
                      ("logistic", LogisticRegression(C=6000))])

Training is what `Compiled.fit` runs (`pgmdsl.runtime.train`: for the RBM
the packed update of `runtime.fused`; PCD-1 by default like BernoulliRBM),
so any `.dgm` model with one observed layer can stand in for the RBM
(`model="path/to/my.dgm"`).

Where it differs from BernoulliRBM, on purpose:

- *Visible biases* start at 0 as BernoulliRBM's unless `data_init=True`,
  which applies the model's data-dependent initialisers (for the standard
  `rbm`: `logit_mean(v)`, the log odds of each unit's mean, as Hinton's
  practical guide advises and as `Compiled.fit` always does). On
  scikit-learn's digits example the zero start gave the classifier better
  features (bench/README.md). `partial_fit` never applies them: one
  minibatch is a poor estimate of the unit means.
- *Minibatches* are drawn from a fresh permutation of the rows every epoch
  (BernoulliRBM visits them in the same order every epoch). The persistent
  chains keep `batch_size` rows of hidden units, as BernoulliRBM's, drawn
  at the start given random training rows (BernoulliRBM's start at 0).
- *dtype* follows the data, as BernoulliRBM: float32 rows train in float32.
- `score_samples` is the exact pseudo-log-likelihood, summed over *every*
  visible unit (deterministic); BernoulliRBM returns an unbiased but noisy
  estimate of the same sum from one randomly flipped unit per row.
- `gibbs` returns floats of the model's dtype (0.0 / 1.0), not booleans.
- Sparse input is accepted and densified (the generated kernels are dense).
"""

from .classifier import RBMClassifier
from .dbn import DBNClassifier
from .transformer import RBM

__all__ = ["DBNClassifier", "RBM", "RBMClassifier"]
